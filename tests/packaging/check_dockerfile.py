#!/usr/bin/env python3
"""Check the Dockerfile without a container engine (none runs in CI).

Parses the Dockerfile into stages and instructions and checks:
  - every external base image is pinned by an immutable sha256 digest;
  - the builder's Rust is at least Cargo.toml's rust-version;
  - a build stage runs exactly the Makefile's `release` command (`cargo build --release --locked`);
  - the final stage: a non-root USER, a HEALTHCHECK in exec form through `lightsout healthcheck`
    (no shell in the image), the `--version` smoke RUN in exec form, OCI labels, an exec-form
    ENTRYPOINT, the state directory as a VOLUME (read-only root filesystem);
  - COPY --from names an earlier stage; no ADD of remote URLs;
  - every workspace member (Cargo.toml `[workspace] members`) is COPYed into the build stage.

Usage: check_dockerfile.py [DOCKERFILE] [MAKEFILE] [CARGO_TOML]; exit 1 with one line per problem.
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BINARY = "/usr/local/bin/lightsout"
STATE_DIR = "/var/lib/lightsout"
DIGEST = re.compile(r"@sha256:[0-9a-f]{64}$")


@dataclass
class Instruction:
    line: int
    keyword: str
    args: str


@dataclass
class Stage:
    line: int
    image: str
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)


def instructions(text: str) -> list[Instruction]:
    """Logical instructions: comments dropped, backslash continuations joined."""
    out: list[Instruction] = []
    buf = ""
    start = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if not buf and (not stripped or stripped.startswith("#")):
            continue
        if buf and stripped.startswith("#"):
            continue  # comment lines inside a continuation are ignored by Docker too
        if not buf:
            start = number
        if stripped.endswith("\\"):
            buf += stripped[:-1] + " "
            continue
        buf += stripped
        keyword, _, args = buf.partition(" ")
        out.append(Instruction(start, keyword.upper(), args.strip()))
        buf = ""
    if buf:
        keyword, _, args = buf.partition(" ")
        out.append(Instruction(start, keyword.upper(), args.strip()))
    return out


def stages(text: str) -> list[Stage]:
    result: list[Stage] = []
    for ins in instructions(text):
        if ins.keyword == "FROM":
            words = [w for w in ins.args.split() if not w.startswith("--")]
            name = words[2] if len(words) >= 3 and words[1].upper() == "AS" else None
            result.append(Stage(ins.line, words[0], name))
        elif result:
            result[-1].instructions.append(ins)
    return result


def exec_form(args: str) -> list[str] | None:
    """The JSON array of an exec-form instruction, or None for shell form."""
    try:
        value = json.loads(args)
    except json.JSONDecodeError:
        return None
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return value
    return None


def release_command(makefile: str) -> str:
    """The recipe of the Makefile's `release` target, with $(CARGO) as cargo."""
    lines = makefile.splitlines()
    for i, line in enumerate(lines):
        if re.match(r"^release\s*:", line):
            recipe = lines[i + 1].strip()
            return recipe.replace("$(CARGO)", "cargo")
    raise SystemExit("Makefile has no `release` target")


def version_tuple(text: str) -> tuple[int, ...]:
    return tuple(int(x) for x in re.findall(r"\d+", text)[:2])


def check(dockerfile: str, makefile: str, cargo_toml: str) -> list[str]:
    problems: list[str] = []
    all_stages = stages(dockerfile)
    if len(all_stages) < 2:
        problems.append("not a multi-stage build (need a build stage and a runtime stage)")
    names: set[str] = set()
    for st in all_stages:
        if st.image not in names:
            if not DIGEST.search(st.image):
                problems.append(f"line {st.line}: base image {st.image} is not pinned by sha256 digest")
        if st.name:
            names.add(st.name)
        for ins in st.instructions:
            if ins.keyword == "ADD" and re.search(r"https?://", ins.args):
                problems.append(f"line {ins.line}: ADD of a remote URL (unpinned download)")
            if ins.keyword == "COPY":
                m = re.search(r"--from=(\S+)", ins.args)
                if m and m.group(1) not in names:
                    problems.append(f"line {ins.line}: COPY --from={m.group(1)} names no earlier stage")

    # The builder's toolchain is new enough for the crate.
    rust_version = re.search(r'^rust-version\s*=\s*"([^"]+)"', cargo_toml, re.M)
    for st in all_stages:
        m = re.search(r"(?:^|/)rust:(\d+\.\d+)", st.image)
        if m and rust_version and version_tuple(m.group(1)) < version_tuple(rust_version.group(1)):
            problems.append(
                f"line {st.line}: rust {m.group(1)} is older than Cargo.toml's rust-version {rust_version.group(1)}"
            )

    # The same build command as CI (`make release`).
    wanted = release_command(makefile)
    builds = [
        ins
        for st in all_stages[:-1]
        for ins in st.instructions
        if ins.keyword == "RUN" and "cargo build" in ins.args
    ]
    if not builds:
        problems.append("no build stage runs `cargo build`")
    for ins in builds:
        commands = [c.strip() for c in re.split(r"&&|;", ins.args)]
        if wanted not in commands:
            problems.append(f"line {ins.line}: build command is not the Makefile's `{wanted}`")

    # Every workspace member's source is in the build stage (`crates/azure-ml-emulator`).
    members = re.search(r"^members\s*=\s*\[([^\]]*)\]", cargo_toml, re.M)
    copied = {
        ins.args.split()[0].rstrip("/")
        for st in all_stages[:-1]
        for ins in st.instructions
        if ins.keyword == "COPY" and "--from" not in ins.args
    }
    for member in re.findall(r'"([^"]+)"', members.group(1)) if members else []:
        top = member.split("/")[0]
        if top != "." and top not in copied:
            problems.append(f"the build stage does not COPY {top}/ (workspace member {member})")

    if not all_stages:
        return problems
    final = all_stages[-1]
    by_kw: dict[str, list[Instruction]] = {}
    for ins in final.instructions:
        by_kw.setdefault(ins.keyword, []).append(ins)

    users = by_kw.get("USER", [])
    if not users:
        problems.append("final stage has no USER (would run as root)")
    else:
        user = users[-1].args.split(":")[0]
        if user in ("root", "0", ""):
            problems.append(f"line {users[-1].line}: final USER is root")
        elif not user.isdigit():
            problems.append(
                f"line {users[-1].line}: USER {user} is not numeric (Kubernetes runAsNonRoot cannot verify names)"
            )

    health = by_kw.get("HEALTHCHECK", [])
    if not health:
        problems.append("final stage has no HEALTHCHECK")
    else:
        args = health[-1].args
        cmd = args.split("CMD", 1)[1].strip() if "CMD" in args else ""
        form = exec_form(cmd)
        if form is None:
            problems.append(f"line {health[-1].line}: HEALTHCHECK CMD is not exec form (no shell in the image)")
        elif form[:2] != [BINARY, "healthcheck"]:
            problems.append(f"line {health[-1].line}: HEALTHCHECK does not run `{BINARY} healthcheck`")

    runs = [exec_form(i.args) for i in by_kw.get("RUN", [])]
    if [BINARY, "--version"] not in runs:
        problems.append(f'final stage lacks the smoke step RUN ["{BINARY}", "--version"]')
    if any(r is None for r in runs):
        problems.append("final stage has a shell-form RUN (the image has no shell)")

    entry = by_kw.get("ENTRYPOINT", [])
    if not entry or exec_form(entry[-1].args) is None or exec_form(entry[-1].args)[0] != BINARY:
        problems.append(f'final stage lacks ENTRYPOINT ["{BINARY}"] in exec form')

    labels = " ".join(i.args for i in by_kw.get("LABEL", []))
    for label in ("org.opencontainers.image.title", "org.opencontainers.image.licenses"):
        if label not in labels:
            problems.append(f"final stage lacks label {label}")

    volumes = " ".join(i.args for i in by_kw.get("VOLUME", []))
    if STATE_DIR not in volumes:
        problems.append(f"final stage does not declare VOLUME {STATE_DIR} (read-only root filesystem)")
    return problems


def main(argv: list[str]) -> int:
    dockerfile = Path(argv[1]) if len(argv) > 1 else ROOT / "Dockerfile"
    makefile = Path(argv[2]) if len(argv) > 2 else ROOT / "Makefile"
    cargo_toml = Path(argv[3]) if len(argv) > 3 else ROOT / "Cargo.toml"
    problems = check(dockerfile.read_text(), makefile.read_text(), cargo_toml.read_text())
    for p in problems:
        print(f"{dockerfile}: {p}")
    if problems:
        return 1
    print(f"{dockerfile}: ok ({len(stages(dockerfile.read_text()))} stages)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
