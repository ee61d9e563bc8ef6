#!/usr/bin/env python3
"""Fault soak (issue 8, part 3): the daemon against a faulty 1,000-instance emulator.

1,000 instances in 20 workspaces over 2 subscriptions, ARM's documented throttling, answers
in real Azure's recorded shapes (a signed 3.2 KB `Azure-AsyncOperation` URL, no `Location`,
no `Retry-After`) and operations of real duration (stop 45 s, start 120 s; the daemon
follows them every 15 s), scaled by --half/300 for shorter half-periods so they keep their
proportion to the schedule (the CI run's --half 60: stop 9 s, start 24 s, follow every 3 s). One policy flips the desired state every --half seconds (uptime
windows of `--half` up then `--half` down, `start = "window"`), so each boundary makes an
action due on every instance. Faults (POST /_emulator/faults): 5% errors (500/503), 5%
throttling, 2% connection resets, 5% failing operations, and a latency spike of 1.5 s on
every request for 20 s in each 3 minutes.

Reports (and checks):
- actions due: per boundary, the instances not in the new desired state just before it;
- done: those in the desired state just before the next boundary;
- duplicated (must be 0): accepted POSTs (202) beyond the first for one instance, action
  and intent period, less those following a failed attempt in the audit log (a POST
  belongs to the latest audit row for its instance and action written before it; the
  intent period is that row's half-period);
- lost audit records (must be 0): accepted POSTs with no audit row written before them for
  that instance, action and intent period;
- requests per minute per subscription (reads, writes) against ARM's sustained limits
  (reads 25/s = 1,500/min, writes 10/s = 600/min, plus the bucket);
- the daemon's RSS after its first minute and at the end.

Usage: python3 bench/soak.py [--minutes 20] [--half 300] [--json OUT]
Short check: python3 bench/soak.py --minutes 3 --half 60
"""

import argparse
import bisect
import collections
import datetime as dt
import json
import pathlib
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import benchlib as B  # noqa: E402

FAULTS = {"error_rate": 0.05, "statuses": [500, 503], "throttle_rate": 0.05,
          "reset_rate": 0.02, "lro_fail_rate": 0.05, "latency_ms": 0}
SPIKE_MS = 1500


def windows(begin, half, until):
    """`daily HH:MM-HH:MM` windows: up until `begin`, then down/up alternately every `half`."""
    out = []
    up_from = begin - dt.timedelta(hours=1)
    t = begin
    while t < until + dt.timedelta(seconds=2 * half):
        out.append((up_from, t))
        up_from = t + dt.timedelta(seconds=half)
        t = up_from + dt.timedelta(seconds=half)
    return [f"daily {a:%H:%M}-{b:%H:%M}" for a, b in out]


def policy_text(begin, half, until):
    ws = windows(begin, half, until)
    return ('[[policy]]\nname = "flip"\ntimezone = "UTC"\nstart = "window"\n'
            "catch_up = \"30m\"\n"
            "uptime = [" + ", ".join(f'"{w}"' for w in ws) + "]\n")


class CallLog:
    """Collects /_emulator/calls by sequence number (the emulator keeps the last 100,000)."""

    def __init__(self, em):
        self.em, self.by_seq = em, {}

    def poll(self):
        for c in self.em.calls():
            self.by_seq[c["seq"]] = c

    def all(self):
        return [self.by_seq[k] for k in sorted(self.by_seq)]


def instance_states(em):
    st = em.state()
    return {(w["name"], i["name"]): i["state"] for w in st["workspaces"] for i in w["instances"]}


def post_action(path):
    """(workspace, instance, action) of a POST .../computes/X/{start,stop,restart}."""
    parts = path.strip("/").split("/")
    low = [p.lower() for p in parts]
    if len(parts) >= 11 and low[-1] in ("start", "stop", "restart") and low[-3] == "computes":
        return parts[7], parts[-2], low[-1]
    return None


def parse_time(text):
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def match_posts_to_intents(calls, audit, ws_alias, period):
    """Count accepted POSTs and audit rows per (workspace, instance, action, intent period).

    An audit row's period is that of its `at` (the pass's decision instant, written before
    the request). An accepted POST (202) belongs to the latest audit row for the same
    instance and action written at or before it, so a pass that is still sending when the
    next half-period begins is not mistaken for a POST with no audit row. A POST with no
    earlier row gets period None, which no row has: it counts as unrecorded.
    Returns (accepted, recorded, failed) Counters over the same keys.
    """
    intents = collections.defaultdict(list)
    recorded = collections.Counter()
    failed = collections.Counter()
    for rec in audit:
        if rec["outcome"] in ("missed", "dry_run"):
            continue
        at = parse_time(rec["at"])
        key = (rec["workspace"], rec["instance"], rec["action"])
        intents[key].append(at)
        recorded[(*key, period(at))] += 1
        if rec["outcome"] in ("failed", "refused"):
            failed[(*key, period(at))] += 1
    for times in intents.values():
        times.sort()
    accepted = collections.Counter()
    for c in calls:
        pa = post_action(c["path"]) if c["method"] == "POST" else None
        if not pa or c["status"] != 202:
            continue
        key = (ws_alias.get(pa[0], pa[0]), pa[1], pa[2])
        times = intents.get(key, [])
        i = bisect.bisect_right(times, parse_time(c["time"]))
        accepted[(*key, period(times[i - 1]) if i else None)] += 1
    return accepted, recorded, failed


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=float, default=20)
    ap.add_argument("--half", type=int, default=300, help="seconds up, then seconds down (multiple of 60)")
    ap.add_argument("--workspaces", type=int, default=20)
    ap.add_argument("--instances", type=int, default=50, help="per workspace")
    ap.add_argument("--subscriptions", type=int, default=2)
    ap.add_argument("--json")
    a = ap.parse_args()
    assert a.half % 60 == 0, "--half must be whole minutes"

    work = pathlib.Path(tempfile.mkdtemp(prefix="lightsout-soak-"))
    fleet = work / "fleet.toml"
    scale = a.half / 300
    fleet.write_text(B.fleet_text(a.workspaces, a.instances, a.subscriptions, limits="real",
                                  timing=B.real_timing(scale), state_mix={"Running": 1.0}))
    em = B.Emulator(fleet, work)
    ws = B.workspaces_of(a.workspaces, a.subscriptions)
    now = dt.datetime.now(dt.timezone.utc).replace(second=0, microsecond=0)
    begin = now + dt.timedelta(minutes=2)
    end_at = now + dt.timedelta(seconds=a.minutes * 60 + 60)
    boundaries = []
    t = begin
    while t < end_at:
        boundaries.append(t)
        t += dt.timedelta(seconds=a.half)
    cfg = work / "lightsout.toml"
    follow = max(1, round(B.REAL_FOLLOW * scale))
    cfg.write_text(B.config_text(em.ready, ws, work / "state", poll="30s",
                                 policy=policy_text(begin, a.half, end_at),
                                 daemon_extra=f'operation_poll_interval = "{follow}s"'))
    r, _ = B.lightsout(["validate"], cfg)
    if r.returncode != 0:
        sys.exit(f"config invalid:\n{r.stdout}{r.stderr}")
    em.faults(FAULTS)
    log = CallLog(em)
    print(f"# soak {a.minutes} min, {a.workspaces * a.instances} instances, boundaries every {a.half} s "
          f"from {begin:%H:%M:%S}; operations {B.real_timing(scale)}, followed every {follow} s; "
          f"faults {FAULTS} + {SPIKE_MS} ms spikes; load {B.loadavg()}", flush=True)
    d = B.start_daemon(cfg, work)
    started = time.time()
    rss_start = None
    rss_per_minute = []
    next_rss = started + 60
    samples = {}  # boundary index -> states just before it
    next_sample = 0
    last_spike = started
    spiking = False
    stop_at = started + a.minutes * 60
    while time.time() < stop_at:
        time.sleep(2)
        if d.poll() is not None:
            sys.exit(f"daemon died (exit {d.returncode}); see {work}/daemon.log")
        nowt = time.time()
        if nowt >= next_rss:
            rss = B.proc_rss_kib(d.pid)
            rss_start = rss if rss_start is None else rss_start
            rss_per_minute.append(round(rss / 1024, 1))
            next_rss += 60
        if not spiking and nowt - last_spike >= 180:
            em.faults({**FAULTS, "latency_ms": SPIKE_MS})
            spiking, last_spike = True, nowt
        elif spiking and nowt - last_spike >= 20:
            em.faults(FAULTS)
            spiking = False
        # States 10 s before each boundary (the daemon acts at the boundary).
        if next_sample < len(boundaries) and nowt >= boundaries[next_sample].timestamp() - 10:
            samples[next_sample] = instance_states(em)
            next_sample += 1
        if int(nowt - started) % 30 < 2:
            log.poll()
    rss_end = B.proc_rss_kib(d.pid)
    cpu = B.proc_cpu_seconds(d.pid)
    log.poll()
    B.kill(d, 15)
    em.faults({"error_rate": 0.0, "throttle_rate": 0.0, "reset_rate": 0.0, "lro_fail_rate": 0.0, "latency_ms": 0})
    final = instance_states(em)
    r, _ = B.lightsout(["audit", "--json"], cfg)
    if r.returncode != 0:
        sys.exit(f"audit failed: {r.stderr}")
    audit = json.loads(r.stdout)
    calls = log.all()
    em.close()

    # Due and done per boundary (only boundaries inside the run that we sampled).
    due = done = 0
    per_boundary = []
    for k in range(len(boundaries)):
        if k not in samples:
            continue
        closing = k % 2 == 0  # boundary 0 closes the first window
        want = "Stopped" if closing else "Running"
        before = samples[k]
        after = samples.get(k + 1)
        if after is None:
            if boundaries[k].timestamp() + a.half > stop_at + 1:
                continue  # the run ended inside this half-period
            after = final
        due_k = [key for key, s in before.items()
                 if (want == "Stopped" and s in ("Running", "JobRunning"))
                 or (want == "Running" and s == "Stopped")]
        done_k = [key for key in due_k if after.get(key) == want]
        due += len(due_k)
        done += len(done_k)
        per_boundary.append({"at": boundaries[k].strftime("%H:%M:%S"), "want": want,
                             "due": len(due_k), "done": len(done_k)})

    def period(t):
        return int((t - begin).total_seconds() // a.half)

    ws_alias = {w[3]: w[0] for w in ws}
    accepted, rows, failed_rows = match_posts_to_intents(calls, audit, ws_alias, period)
    outcomes = collections.Counter(rec["outcome"] for rec in audit)
    duplicated = lost = 0
    dup_examples = []
    for key, n in accepted.items():
        extra = n - 1 - failed_rows.get(key, 0)
        if extra > 0:
            duplicated += extra
            dup_examples.append([*key, n])
        lost += max(0, n - rows.get(key, 0))

    # Requests per minute per subscription.
    per_min = collections.Counter()
    for c in calls:
        if not c["path"].lower().startswith("/subscriptions/"):
            continue
        sub = c["path"].split("/")[2]
        kind = "read" if c["method"] == "GET" else "write"
        per_min[(sub, kind, c["time"][:16])] += 1
    max_read = max([v for (s, k, m), v in per_min.items() if k == "read"] or [0])
    max_write = max([v for (s, k, m), v in per_min.items() if k == "write"] or [0])
    throttled = sum(1 for c in calls if c["status"] == 429)
    arm_total = sum(1 for c in calls if c["path"].lower().startswith("/subscriptions/"))
    minutes = (time.time() - started) / 60
    res = {
        "minutes": round(a.minutes, 1), "instances": a.workspaces * a.instances, "half_period_s": a.half,
        "faults": FAULTS, "spike_ms": SPIKE_MS,
        "actions_due": due, "actions_done": done, "per_boundary": per_boundary,
        "duplicated": duplicated, "duplicate_examples": dup_examples[:5],
        "lost_audit_records": lost, "audit_outcomes": dict(outcomes),
        "accepted_posts": sum(accepted.values()),
        "arm_requests": arm_total, "throttled_429": throttled,
        "max_reads_per_min_per_sub": max_read, "max_writes_per_min_per_sub": max_write,
        "rss_start_mib": round((rss_start or 0) / 1024, 1), "rss_end_mib": round(rss_end / 1024, 1),
        "rss_mib_per_minute": rss_per_minute,
        "cpu_seconds": round(cpu, 1), "load_end": B.loadavg(), "work": str(work),
    }
    print(json.dumps({k: v for k, v in res.items() if k != "per_boundary"}, indent=1))
    for b in per_boundary:
        print(f"  boundary {b['at']} -> {b['want']}: due {b['due']}, done {b['done']}")
    if a.json:
        pathlib.Path(a.json).write_text(json.dumps(res, indent=2) + "\n")
    bad = duplicated or lost or max_read > 1500 + 250 or max_write > 600 + 200
    print("RESULT: " + ("FAIL" if bad else "ok") + f" (duplicated {duplicated}, lost {lost}, "
          f"max reads/min {max_read}, max writes/min {max_write})")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
