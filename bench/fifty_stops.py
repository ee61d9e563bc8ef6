#!/usr/bin/env python3
"""What fifty simultaneous stops cost the next passes (issue 12).

Real ARM answers an accepted stop with a signed `Azure-AsyncOperation` URL and no
`Retry-After`, and a stop takes about 45 s (tests/fixtures/azure/recorded). Without a hint the
daemon follows each operation every `[daemon] operation_poll_interval`. This bench runs the
daemon against the emulator's real-shaped answers (one subscription, 10 workspaces x 50
running instances, ARM's documented throttling, stop 45 s): at a window boundary 50 of them
(5 per workspace) are due for a stop at once. It reports, per cadence:

- status polls sent while the stops run, and the busiest second of ARM reads;
- the duration of the passes after the boundary (from `lightsout_reconcile_duration_seconds`
  on /metrics) against the passes before it;
- 429s seen (the emulator throttles like ARM).

Usage: python3 bench/fifty_stops.py [--cadences 15s,2s] [--json OUT]
"""

import argparse
import collections
import datetime as dt
import json
import pathlib
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import benchlib as B  # noqa: E402

WORKSPACES, PER_WS, DUE_PER_WS = 10, 50, 5
POLL = 20  # seconds between full passes


def metrics(port):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        text = r.read().decode()
    out = {}
    for line in text.splitlines():
        if line.startswith("lightsout_reconcile_duration_seconds_sum"):
            out["sum"] = float(line.split()[-1])
        elif line.startswith("lightsout_reconcile_duration_seconds_count"):
            out["count"] = int(float(line.split()[-1]))
    return out


def run(cadence, workdir):
    fleet = workdir / "fleet.toml"
    fleet.write_text(B.fleet_text(WORKSPACES, PER_WS, 1, limits="real", timing="45s",
                                  state_mix={"Running": 1.0}))
    emu = B.Emulator(fleet, workdir)
    # The boundary: the next whole minute at least 70 s away (two quiet passes before it).
    start = dt.datetime.now(dt.timezone.utc)
    boundary = (start + dt.timedelta(seconds=130)).replace(second=0, microsecond=0)
    opened = boundary - dt.timedelta(hours=1)
    globs = ", ".join(f'"ci-{w:03d}-000[0-{DUE_PER_WS - 1}]"' for w in range(WORKSPACES))
    policy = (
        f'[[policy]]\nname = "closing"\ninstances = [{globs}]\n'
        f'uptime = ["daily {opened:%H:%M}-{boundary:%H:%M}"]\n\n'
        '[[policy]]\nname = "rest"\n[policy.idle]\ntimeout = "12h"\nsignals = ["arm"]\n'
    )
    port = B.free_port()
    cfg = workdir / "lightsout.toml"
    cfg.write_text(B.config_text(
        emu.ready, B.workspaces_of(WORKSPACES, 1), workdir / "state",
        listen=f"127.0.0.1:{port}", poll=f"{POLL}s", policy=policy,
        daemon_extra=f'operation_poll_interval = "{cadence}"'))
    daemon = B.start_daemon(cfg, workdir)
    passes = []  # (wall time seen, duration)
    last = {"sum": 0.0, "count": 0}
    end = boundary + dt.timedelta(seconds=100)
    try:
        while dt.datetime.now(dt.timezone.utc) < end:
            time.sleep(0.25)
            try:
                m = metrics(port)
            except OSError:
                continue
            if m.get("count", 0) > last["count"]:
                passes.append((dt.datetime.now(dt.timezone.utc),
                               (m["sum"] - last["sum"]) / (m["count"] - last["count"])))
                last = m
        calls = emu.calls()
    finally:
        B.kill(daemon)
        emu.close()
    arm = B.arm_calls(calls)
    polls = [c for c in arm if "/computeOperationsStatus/" in c["path"]]
    stops = [c for c in arm if c["method"] == "POST" and c["path"].endswith("/stop")
             and c["status"] == 202]
    throttled = [c for c in arm if c["status"] == 429]
    per_second = collections.Counter(c["time"][:19] for c in arm if c["method"] == "GET")
    before = [d for t, d in passes if t < boundary]
    after = [d for t, d in passes if t >= boundary]
    return {
        "cadence": cadence,
        "instances": WORKSPACES * PER_WS,
        "stops_accepted": len(stops),
        "status_polls": len(polls),
        "polls_per_stop": round(len(polls) / max(len(stops), 1), 2),
        "busiest_second_reads": max(per_second.values()) if per_second else 0,
        "throttled_429": len(throttled),
        "pass_seconds_before": [round(d, 3) for d in before],
        "pass_seconds_after": [round(d, 3) for d in after],
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cadences", default="15s,2s")
    ap.add_argument("--json")
    args = ap.parse_args()
    results = []
    for cadence in args.cadences.split(","):
        with tempfile.TemporaryDirectory() as d:
            r = run(cadence, pathlib.Path(d))
        print(json.dumps(r))
        results.append(r)
    out = {"machine_load": B.loadavg(), "date": dt.date.today().isoformat(), "runs": results}
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
