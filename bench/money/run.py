#!/usr/bin/env python3
"""Money (issue 8, part 2): the same scripted month under five ways of stopping instances.

1. Generates the month (`generate.py`, seeded) unless --no-generate.
2. Runs `lightsout simulate --json` (release build) for each config in bench/money/out:
   always_on, native (Azure ML's idle shutdown, played by lightsout's idle rule with each
   instance's own timeout and the VS Code rule), schedule, lightsout (schedule + idle 30 m)
   and lightsout_idle (idle 30 m only: the same rule as the oracle).
3. Computes the oracle analytically from the scripted activity: stop the instant the idle
   time reaches 30 minutes, with the emulator's own rules (owners start a stopped instance
   when they come back; start and stop take 2 minutes and are billed as running) and the
   accountant's prices (`cost.rs`: running costs the compute price plus `stopped_hourly`,
   since disks are billed in both states; stopped costs `stopped_hourly`).
   `bench/money/gap.py` explains the rest of the difference, step by step.
4. Checks every stop of every simulation against the script: a stop sent while a job or a
   busy kernel window was open is a wrongful stop (must be 0).

With --agent (issue 15) the month is generated with the agent-only activity kinds
(`generate.py --agent`, into bench/money/out-agent) and the scenarios are:
- native_azure: Azure's own idle shutdown, carried out by the emulator itself on
  fleet_native.toml (each instance's own `idle_time_before_shutdown`; the emulator's native
  model counts kernels, Jupyter terminals, jobs and VS Code, not SSH, the GPU or a silent
  cell), lightsout doing nothing (always_on.toml);
- lightsout_agent: lightsout's office hours and idle 30 m on `signals = ["arm", "agent"]`,
  the agents' verdicts from the emulator's agent view in process;
- lightsout: the same policy on `signals = ["arm", "jupyter"]`, without the agent.
A busy stop is a stop (lightsout's, or the native idle shutdown's) while any window of the
script is open; it is broken down by the kinds open then.

Usage: python3 bench/money/run.py [--seed 8] [--only NAME,...] [--json OUT] [--agent]
"""

import argparse
import bisect
import concurrent.futures
import datetime as dt
import json
import pathlib
import subprocess
import sys
import time

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
import benchlib as B  # noqa: E402

SCENARIOS = ["always_on", "native", "schedule", "lightsout", "lightsout_idle"]
AGENT_SCENARIOS = ["native_azure", "lightsout_agent", "lightsout"]
# (config, fleet) of a scenario, when not (NAME.toml, fleet.toml).
FILES = {"native_azure": ("always_on.toml", "fleet_native.toml")}


def ts(s):
    return dt.datetime.strptime(s, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.timezone.utc).timestamp()


def ts_any(s):
    s = s.replace("Z", "+00:00")
    return dt.datetime.fromisoformat(s).timestamp()


def oracle(meta, timeout_s):
    """Spent, idle and running hours of the perfect idle stopper, per the emulator's rules."""
    start, stop = meta["timing"]["start"], meta["timing"]["stop"]
    t0, t1 = ts(meta["from"]), ts(meta["to"])
    stopped_price = sum(meta["stopped_hourly"].values())
    spent = idle = always_on = running_total = avoided = 0.0
    stops = 0
    for inst in meta["instances"].values():
        price = meta["prices"][inst["vm_size"]]
        running = inst["running_at_start"]
        run_from = t0
        last_end = t0 - 3600  # the emulator: started an hour before, idle since
        stop_done = t0
        run_s = idle_s = avoided_s = 0.0
        stopped_since = None  # set when the oracle stopped it (avoided time runs)

        def do_stop(at):
            nonlocal running, run_s, idle_s, stop_done, stops, stopped_since
            done = min(at + stop, t1)
            stopped_since = done
            run_s += done - run_from
            idle_s += max(0.0, min(at, t1) - max(last_end + 300, run_from))
            running, stop_done = False, done
            stops += 1

        for _kind, a, b in inst["windows"]:
            a, b = ts(a), ts(b)
            if running:
                due = max(last_end + timeout_s, run_from)
                if due < a:
                    do_stop(due)
                elif a - last_end > 300:
                    idle_s += a - max(last_end + 300, run_from)
            if not running:
                begin = max(a, stop_done)
                if begin >= t1:
                    continue
                if stopped_since is not None:
                    avoided_s += begin - stopped_since
                    stopped_since = None
                running, run_from, last_end = True, begin, begin + start
            last_end = max(last_end, b)
        if running:
            due = max(last_end + timeout_s, run_from)
            if due < t1:
                do_stop(due)
            else:
                run_s += t1 - run_from
                idle_s += max(0.0, t1 - max(last_end + 300, run_from))
        if not running and stopped_since is not None:
            avoided_s += t1 - stopped_since
        total = t1 - t0
        avoided += avoided_s / 3600 * price
        # As the accountant bills (cost.rs, Billing::Running): the disk is paid while the
        # instance runs too, not only while it is stopped.
        spent += run_s / 3600 * (price + stopped_price) + (total - run_s) / 3600 * stopped_price
        idle += idle_s / 3600 * price
        always_on += total / 3600 * price
        running_total += run_s
    return {"spent": round(spent, 2), "idle": round(idle, 2), "always_on": round(always_on, 2),
            "avoided": round(avoided, 2), "running_hours": round(running_total / 3600, 1),
            "stops": stops}


def wrongful(meta, actions, kinds=None):
    """Stops sent while the script had a window open on that instance (any kind: a job, a
    busy kernel, or with --agent any agent-only kind); `kinds` counts the kinds open then."""
    by_name = {}
    for key, inst in meta["instances"].items():
        team, name = key.split("/", 1)
        wins = sorted((ts(a), ts(b), k) for k, a, b in inst["windows"])
        by_name[(team, name)] = wins
    bad, near = [], 0
    for act in actions:
        if act["action"] != "stop":
            continue
        at = ts_any(act["at"])
        wins = by_name.get((act["workspace"], act["instance"]), [])
        i = bisect.bisect_right(wins, (at, float("inf"), "")) - 1
        # Any window that started at or before `at` and ends after it (windows may overlap).
        open_now = {k for a, b, k in wins[max(0, i - 5): i + 1] if a <= at < b}
        if open_now:
            bad.append(act)
            if kinds is not None:
                key = "+".join(sorted(open_now))
                kinds[key] = kinds.get(key, 0) + 1
        j = bisect.bisect_right(wins, (at, float("inf"), ""))
        if j < len(wins) and wins[j][0] - at < 120:
            near += 1
    return bad, near


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", type=int, default=8)
    ap.add_argument("--only", default=",".join(SCENARIOS))
    ap.add_argument("--no-generate", action="store_true")
    ap.add_argument("--jobs", type=int, default=2, help="simulations at once")
    ap.add_argument("--cached", action="store_true", help="reuse out/sim-*.json of an earlier run")
    ap.add_argument("--json")
    ap.add_argument("--agent", action="store_true", help="the agent month and its scenarios")
    ap.add_argument("--to", help="end the simulations early (RFC 3339): a reduced run")
    a = ap.parse_args()
    out = HERE / ("out-agent" if a.agent else "out")
    if a.agent and a.only == ",".join(SCENARIOS):
        a.only = ",".join(AGENT_SCENARIOS)
    if not a.no_generate:
        subprocess.run([sys.executable, str(HERE / "generate.py"), "--seed", str(a.seed), "--out", str(out)]
                       + (["--agent"] if a.agent else []), check=True)
    meta = json.loads((out / "meta.json").read_text())
    if a.to:
        meta["to"] = a.to
    idle_s = int(meta["lightsout_idle"].rstrip("m")) * 60
    results = {"seed": a.seed, "from": meta["from"], "to": meta["to"],
               "instances": len(meta["instances"]), "scenarios": {}}
    def simulate(name):
        load = B.loadavg()
        began = time.time()
        config, fleet = FILES.get(name, (f"{name}.toml", "fleet.toml"))
        r, t = B.lightsout(["simulate", "--config", str(out / config), "--fleet", str(out / fleet),
                            "--from", meta["from"], "--to", meta["to"], "--json"], timeout=14400, timed=True)
        if r.returncode == 0:
            # Kept so the report can be redone without simulating again (--cached).
            (out / f"sim-{name}.json").write_text(r.stdout)
            (out / f"sim-{name}.stats.json").write_text(json.dumps({**t, "load": load}))
        return name, load, began, r, t

    def cached(name):
        stats = json.loads((out / f"sim-{name}.stats.json").read_text())
        r = subprocess.CompletedProcess([], 0, (out / f"sim-{name}.json").read_text(), "")
        return name, stats.pop("load"), 0, r, stats

    names = a.only.split(",")
    with concurrent.futures.ThreadPoolExecutor(a.jobs) as pool:
        done = list(pool.map(cached if a.cached else simulate, names))
    for name, load, began, r, t in done:
        if r.returncode != 0:
            sys.exit(f"simulate {name} failed:\n{r.stderr[-3000:]}")
        sim = json.loads(r.stdout)
        # Azure's own idle shutdowns count as stops too (the native_azure scenario).
        native = [{**n, "action": "stop", "by": "native"} for n in sim.get("native_stops", [])]
        kinds = {}
        bad, near = wrongful(meta, sim["actions"] + native, kinds)
        c = sim["cost"]
        row = {**c, "actions": len(sim["actions"]),
               "stops": sum(1 for x in sim["actions"] if x["action"] == "stop") + len(native),
               "native_stops": len(native), "busy_stops_by_kind": kinds,
               "starts": sum(1 for x in sim["actions"] if x["action"] == "start"),
               "wrongful_stops": len(bad), "stops_within_2m_of_activity": near,
               "simulate_wall_s": round(t["wall_s"], 1), "simulate_cpu_s": round(t["user_s"] + t["sys_s"], 1),
               "simulate_max_rss_mib": round(t["max_rss_kib"] / 1024, 1), "load": load}
        if bad:
            row["wrongful_examples"] = bad[:5]
        results["scenarios"][name] = row
        print(f"{name:15} spent {c['spent']:10.2f}  avoided {c['avoided']:10.2f}  idle {c['idle']:9.2f}  "
              f"always-on {c['always_on']:10.2f}  stops {row['stops']:5}  wrongful {len(bad)} {kinds or ''} "
              f"({row['simulate_wall_s']} s wall, load {load})", flush=True)
    if a.agent:
        # The oracle is for the base month (jobs and kernels only); here the comparison is
        # lightsout with the agent against Azure's own idle shutdown. lightsout without the
        # agent is expected to stop trainings it cannot see: reported, not a failure.
        if a.json:
            pathlib.Path(a.json).write_text(json.dumps(results, indent=2) + "\n")
        s = results["scenarios"]
        if "lightsout_agent" in s and "native_azure" in s:
            print(f"lightsout_agent spends {s['native_azure']['spent'] - s['lightsout_agent']['spent']:.2f} "
                  f"less than native_azure; busy stops {s['lightsout_agent']['wrongful_stops']} "
                  f"vs {s['native_azure']['wrongful_stops']}")
        sys.exit(1 if s.get("lightsout_agent", {}).get("wrongful_stops") else 0)
    o = oracle(meta, idle_s)
    results["oracle"] = o
    print(f"{'oracle':15} spent {o['spent']:10.2f}  avoided {o['avoided']:10.2f}  idle {o['idle']:9.2f}  "
          f"always-on {o['always_on']:10.2f}  stops {o['stops']:5}  (analytic)")
    for name in ("lightsout", "lightsout_idle"):
        if name in results["scenarios"]:
            s = results["scenarios"][name]["spent"]
            d = (s - o["spent"]) / o["spent"] * 100
            results["scenarios"][name]["vs_oracle_percent"] = round(d, 2)
            print(f"{name} vs oracle: {d:+.2f}% of the oracle's spend")
    if a.json:
        pathlib.Path(a.json).write_text(json.dumps(results, indent=2) + "\n")
    wrong = sum(s["wrongful_stops"] for s in results["scenarios"].values())
    sys.exit(1 if wrong else 0)


if __name__ == "__main__":
    main()
