#!/usr/bin/env python3
"""Generate the WINDOWS_ZONES table of src/engine/native/windows_zones.rs from Unicode CLDR.

CLDR's windowsZones (common/supplemental/windowsZones.xml) ships, as JSON, in the npm package
cldr-core (supplemental/windowsZones.json). Run from the repository root:

    npm pack cldr-core@47 && tar xzf cldr-core-47.0.0.tgz        # unpacks into ./package
    tools/windows_zones.py package/supplemental/windowsZones.json --check   # differences only
    tools/windows_zones.py package/supplemental/windowsZones.json && cargo fmt

Each Windows zone gets its IANA zones: the territory 001 default first, then every other
territory's zones in CLDR's order (the ZZ Etc/GMT+-N entries included). Windows zones keep
the order the table already has (CLDR's XML order, by UTC offset; the JSON is sorted by
name), and a zone new to CLDR is added at the end. Only WINDOWS_ZONES is written: LINKS and
UNMAPPED are derived from jiff's bundled tz database (see their comments) and must be checked
again by hand (the module's tests) when the table changes. Standard library only.
"""

import json
import re
import sys
from collections import OrderedDict

RUST = "src/engine/native/windows_zones.rs"
START = "pub static WINDOWS_ZONES: &[(&str, &[&str])] = &[\n"
END = "\n];\n"


def from_cldr(path):
    """Windows zone -> IANA zones, from cldr-core's windowsZones.json."""
    with open(path, encoding="utf-8") as f:
        entries = json.load(f)["supplemental"]["windowsZones"]["mapTimezones"]
    zones = OrderedDict()
    for entry in entries:
        m = entry["mapZone"]
        listed = zones.setdefault(m["_other"], [])
        names = m["_type"].split()
        if m["_territory"] == "001":
            listed[:0] = [n for n in names if n not in listed]
        else:
            listed.extend(n for n in names if n not in listed)
    return zones


def from_rust(text):
    """Windows zone -> IANA zones, as the Rust table has them now."""
    block = text[text.index(START) : text.index(END, text.index(START))]
    return OrderedDict(
        (m.group(1), re.findall(r'"([^"]+)"', m.group(2)))
        for m in re.finditer(r'\(\s*"([^"]+)",\s*&\[(.*?)\]\s*,?\s*\)', block, re.S)
    )


def main():
    if len(sys.argv) not in (2, 3) or sys.argv[2:] not in ([], ["--check"]):
        sys.exit(__doc__)
    cldr = from_cldr(sys.argv[1])
    with open(RUST, encoding="utf-8") as f:
        text = f.read()
    current = from_rust(text)
    order = [w for w in current if w in cldr] + [w for w in cldr if w not in current]
    changes = [f"- {w}: {current[w]}" for w in current if w not in cldr]
    changes += [f"+ {w}: {cldr[w]}" for w in cldr if w not in current]
    changes += [
        f"~ {w}: {current[w]} -> {cldr[w]}"
        for w in current
        if w in cldr and current[w] != cldr[w]
    ]
    if sys.argv[2:] == ["--check"]:
        print("\n".join(changes) or "WINDOWS_ZONES matches CLDR")
        sys.exit(1 if changes else 0)
    rows = "".join(
        "    ({}, &[{}]),\n".format(json.dumps(w), ", ".join(json.dumps(z) for z in cldr[w]))
        for w in order
    )
    head = text[: text.index(START) + len(START)]
    tail = text[text.index(END, text.index(START)) + 1 :]
    with open(RUST, "w", encoding="utf-8") as f:
        f.write(head + rows + tail)
    print(f"wrote {len(order)} Windows zones to {RUST}; now run cargo fmt")
    for c in changes:
        print(c)


if __name__ == "__main__":
    main()
