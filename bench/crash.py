#!/usr/bin/env python3
"""Crash safety (issue 8, part 4): SIGKILL the daemon at random moments and restart it.

1,000 instances in 20 workspaces over 2 subscriptions, ARM's throttling (writes: 200 + 10/s
per subscription), answers in real Azure's recorded shapes (signed 3.2 KB poll URLs, no
Location, no Retry-After) with operations of real duration scaled by --half/300 (the default
--half 120: stop 18 s, start 48 s, followed every 6 s), so kills land while operations are
being followed; one policy flips the desired state every --half
seconds (`start = "window"`, catch-up 30 min), poll 5 s. A boundary makes 1,000 actions due
and sending them at ARM's write rate takes about a minute, which each restart resumes (as a
catch-up), so most moments fall in a pass that is sending actions or following them.
--kills times: start `lightsout run`, wait a random 0.2-6 s, SIGKILL it, then check:

- the store opens: `lightsout audit --json` exits 0 and parses, and SQLite's
  `PRAGMA integrity_check` on the state database says ok;
- the audit log is whole: ids unique and increasing, every row has a known action and
  outcome, at most the rows of the killed pass are still `pending`;
- no request is repeated: per instance, action and intent period (see
  `soak.match_posts_to_intents`), accepted POSTs (202 in /_emulator/calls) are at most 1
  plus the failed attempts the audit log records, and each has an audit row before it.

Usage: python3 bench/crash.py [--kills 100] [--half 60] [--seed 1] [--json OUT]
Short check: python3 bench/crash.py --kills 10
"""

import argparse
import datetime as dt
import json
import pathlib
import random
import sqlite3
import sys
import tempfile
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import benchlib as B  # noqa: E402
from soak import CallLog, match_posts_to_intents, policy_text  # noqa: E402

OUTCOMES = {"pending", "succeeded", "failed", "refused", "unknown", "missed", "dry_run"}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--kills", type=int, default=100)
    ap.add_argument("--half", type=int, default=120)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--json")
    a = ap.parse_args()
    rng = random.Random(a.seed)
    work = pathlib.Path(tempfile.mkdtemp(prefix="lightsout-crash-"))
    fleet = work / "fleet.toml"
    scale = a.half / 300
    fleet.write_text(B.fleet_text(20, 50, 2, limits="real", timing=B.real_timing(scale),
                                  state_mix={"Running": 0.5, "Stopped": 0.5}))
    em = B.Emulator(fleet, work)
    ws = B.workspaces_of(20, 2)
    now = dt.datetime.now(dt.timezone.utc).replace(second=0, microsecond=0)
    begin = now + dt.timedelta(minutes=1)
    until = now + dt.timedelta(hours=2)
    state_dir = work / "state"
    cfg = work / "lightsout.toml"
    follow = max(1, round(B.REAL_FOLLOW * scale))
    cfg.write_text(B.config_text(em.ready, ws, state_dir, poll="5s",
                                 policy=policy_text(begin, a.half, until),
                                 daemon_extra=f'operation_poll_interval = "{follow}s"'))
    log = CallLog(em)
    print(f"# {a.kills} SIGKILLs, 1000 instances, flips every {a.half} s from {begin:%H:%M:%S}; "
          f"load {B.loadavg()}", flush=True)
    problems = []
    kills = mid_action = 0
    max_id = 0
    started = time.time()
    for k in range(a.kills):
        d = B.start_daemon(cfg, work)
        time.sleep(rng.uniform(0.2, 6.0))
        if d.poll() is not None:
            problems.append(f"kill {k}: daemon had exited with {d.returncode} (store did not open?)")
            continue
        B.kill(d)
        kills += 1
        # The store opens and reads.
        r, _ = B.lightsout(["audit", "--json"], cfg)
        if r.returncode != 0:
            problems.append(f"kill {k}: audit failed: {r.stderr[-500:]}")
            continue
        rows = json.loads(r.stdout)
        ids = [x["id"] for x in rows]
        if ids != sorted(set(ids)):
            problems.append(f"kill {k}: audit ids not unique and increasing")
        if ids and ids[-1] < max_id:
            problems.append(f"kill {k}: audit lost rows (max id {ids[-1]} < {max_id})")
        max_id = max([max_id] + ids)
        for x in rows:
            if x["outcome"] not in OUTCOMES or x["action"] not in ("start", "stop", "restart"):
                problems.append(f"kill {k}: bad row {x}")
        pending = [x for x in rows if x["outcome"] == "pending"]
        if pending:
            mid_action += 1
        db = next(state_dir.glob("*.db"), None) or next(state_dir.glob("*.sqlite*"), None)
        if db is None:
            problems.append(f"kill {k}: no database in {state_dir}")
        else:
            con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
            ok = con.execute("PRAGMA integrity_check").fetchone()[0]
            con.close()
            if ok != "ok":
                problems.append(f"kill {k}: integrity_check {ok}")
        if k % 10 == 9:
            log.poll()
            print(f"  {k + 1} kills, {len(rows)} audit rows, {len(pending)} pending now; "
                  f"load {B.loadavg()}", flush=True)
    # Let one daemon finish what is pending, then compare requests with the audit log.
    d = B.start_daemon(cfg, work)
    time.sleep(20)
    B.kill(d, 15)
    log.poll()
    r, _ = B.lightsout(["audit", "--json"], cfg)
    audit = json.loads(r.stdout)
    em.close()

    def period(t):
        return int((t - begin).total_seconds() // a.half)

    ws_alias = {w[3]: w[0] for w in ws}
    accepted, recorded, failed = match_posts_to_intents(log.all(), audit, ws_alias, period)
    repeated = [[*key, n] for key, n in accepted.items() if n > 1 + failed.get(key, 0)]
    unrecorded = [[*key, n] for key, n in accepted.items() if n > recorded.get(key, 0)]
    still_pending = sum(1 for x in audit if x["outcome"] == "pending")
    res = {"kills": kills, "kills_with_pending_intent": mid_action, "audit_rows": len(audit),
           "accepted_posts": sum(accepted.values()), "repeated_requests": len(repeated),
           "repeated_examples": repeated[:5], "accepted_without_audit": len(unrecorded),
           "unrecorded_examples": unrecorded[:5], "pending_after_settle": still_pending,
           "problems": problems, "seconds": round(time.time() - started), "load_end": B.loadavg(),
           "work": str(work)}
    print(json.dumps(res, indent=1))
    if a.json:
        pathlib.Path(a.json).write_text(json.dumps(res, indent=2) + "\n")
    bad = problems or repeated or unrecorded
    print("RESULT: " + ("FAIL" if bad else "ok") + f" ({kills} kills)")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
