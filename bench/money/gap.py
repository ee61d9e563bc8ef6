#!/usr/bin/env python3
"""Why `lightsout_idle` spends more than the oracle: the gap, step by step.

The oracle (`run.py`) stops each instance the instant its idle time reaches the timeout.
`lightsout simulate` differs from it in a few known ways; this script adds them to the
oracle one at a time, analytically, from the same scripted month (`meta.json`):

1. **first sighting**: the daemon's idle clock never starts before it first saw the
   instance (`memory.rs` `first_seen`, taken in `decide.rs` `idle_since`). The daemon starts
   with the month, so an instance left running idle is stopped at 00:30, not at 00:00.
2. **poll interval**: a stop is sent at the first pass at or after the instant the timeout
   is reached (passes every `poll_interval` from the start); a window opening in between
   keeps the instance running (no stop, no restart).
3. **pass accounting**: the accountant (`cost.rs`, left-point integration) bills each
   interval between passes at the state seen at the pass before it, so an owner's start
   counts from the first pass that sees it.

With all three, the result is the simulation's `spent` (to the cent for seed 8: the
simulation's own stops and owner starts follow the same rules). `--native` also plays the
emulator's native idle shutdown (each instance's `idle_time_before_shutdown` in the fleet
file), which only changes who sends the stop.

Usage: python3 bench/money/gap.py [--out DIR] [--sim SIM_JSON] [--native] [--per-instance N]
"""

import argparse
import collections
import json
import math
import pathlib
import sys

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import run as R  # noqa: E402

STEPS = [
    ("oracle (run.py)", dict()),
    ("+ first sighting (idle clock from the daemon's start)", dict(first_seen=True)),
    ("+ poll interval (stop at the next pass)", dict(first_seen=True, poll=True)),
    ("+ pass accounting (left-point integration)", dict(first_seen=True, poll=True, leftpoint=True)),
]


def play(meta, inst, timeout_s, poll_s=60, first_seen=False, poll=False, leftpoint=False,
         native=False):
    """One instance's month under the oracle's rules plus the chosen differences.
    Returns {"spent", "run_s", "stops": [(at, "lightsout"|"native")]}; with no option, the
    oracle of run.py exactly."""
    t0, t1 = R.ts(meta["from"]), R.ts(meta["to"])
    start, stop = meta["timing"]["start"], meta["timing"]["stop"]
    disk = sum(meta["stopped_hourly"].values())
    price = meta["prices"][inst["vm_size"]]
    native_s = int(inst["native_idle"].rstrip("m")) * 60
    running = inst["running_at_start"]
    run_from, last_end, stop_done = t0, t0 - 3600, t0
    intervals, stops = [], []

    def at_pass(t):
        return t0 + math.ceil((t - t0) / poll_s) * poll_s if poll else t

    def first_stop(limit):
        """The stop ending the current run before `limit`, if any."""
        idle_from = max(last_end, t0) if first_seen else last_end
        cands = []
        due = at_pass(max(idle_from + timeout_s, run_from))
        if due < limit:
            cands.append((due, "lightsout"))
        if native:
            # The emulator: idle counts from no earlier than the setting (the month's start).
            due = max(max(last_end, t0) + native_s, run_from)
            if due < limit:
                cands.append((due, "native"))
        # At the same instant the emulator's own shutdown comes first (it fires as the
        # clock advances, before the pass).
        return min(cands, key=lambda c: (c[0], c[1] != "native")) if cands else None

    def do_stop(at, who):
        nonlocal running, stop_done
        stop_done = min(at + stop, t1)
        intervals.append((run_from, stop_done))
        stops.append((at, who))
        running = False

    for _kind, a, b in inst["windows"]:
        a, b = R.ts(a), R.ts(b)
        if running:
            s = first_stop(a)
            if s:
                do_stop(*s)
        if not running:
            begin = max(a, stop_done)
            if begin >= t1:
                continue
            running, run_from, last_end = True, begin, begin + start
        last_end = max(last_end, b)
    if running:
        s = first_stop(t1)
        if s:
            do_stop(*s)
        else:
            intervals.append((run_from, t1))
    if leftpoint:
        # Billed running from the first pass at or after the start to the first pass at or
        # after the stop ends.
        def k(t):
            return math.ceil((t - t0) / poll_s)
        run_s = sum(max(0, k(b) - k(a)) for a, b in intervals) * poll_s
    else:
        run_s = sum(b - a for a, b in intervals)
    spent = run_s / 3600 * (price + disk) + (t1 - t0 - run_s) / 3600 * disk
    return {"spent": spent, "run_s": run_s, "stops": stops}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=str(HERE / "out"), help="folder with meta.json")
    ap.add_argument("--sim", help="a `simulate --json` output of lightsout_idle.toml")
    ap.add_argument("--native", action="store_true",
                    help="also play the emulator's native idle shutdown of each instance")
    ap.add_argument("--per-instance", type=int, default=0,
                    help="list the N instances with the largest oracle-to-simulation step")
    a = ap.parse_args()
    meta = json.loads((pathlib.Path(a.out) / "meta.json").read_text())
    timeout = int(meta["lightsout_idle"].rstrip("m")) * 60
    steps = list(STEPS)
    if a.native:
        steps.append(("+ the emulator's native idle shutdown",
                      dict(first_seen=True, poll=True, leftpoint=True, native=True)))
    per = collections.defaultdict(dict)
    prev = None
    print(f"{'step':58} {'spent':>10} {'change':>9}  stops")
    for name, kw in steps:
        spent, stops = 0.0, collections.Counter()
        for key, inst in meta["instances"].items():
            r = play(meta, inst, timeout, **kw)
            per[key][name] = r["spent"]
            spent += r["spent"]
            stops.update(w for _, w in r["stops"])
        change = "" if prev is None else f"{spent - prev:+9.2f}"
        print(f"{name:58} {spent:10.2f} {change:>9}  {dict(stops)}")
        prev = spent
    if a.sim:
        sim = json.loads(pathlib.Path(a.sim).read_text())
        n = sum(1 for x in sim["actions"] if x["action"] == "stop")
        print(f"{'simulation (lightsout simulate --json)':58} {sim['cost']['spent']:10.2f} "
              f"{sim['cost']['spent'] - prev:+9.2f}  {{'lightsout': {n}}}")
    if a.per_instance:
        first, last = steps[0][0], steps[-1][0]
        rows = sorted(per.items(), key=lambda kv: kv[1][first] - kv[1][last])
        print(f"\nlargest differences, {last!r} minus oracle:")
        for key, v in rows[: a.per_instance]:
            inst = meta["instances"][key]
            print(f"  {key:28} {inst['profile']:10} {inst['vm_size']:17} "
                  f"running at start {str(inst['running_at_start']):5} {v[last] - v[first]:+8.2f}")


if __name__ == "__main__":
    main()
