#!/usr/bin/env python3
"""A seeded month of realistic compute-instance use, as a fleet file plus one config per policy.

200 instances in four teams (Paris, New York, Bangalore, Tokyo), May 2026 (UTC month), each
team with its own public holidays. Every instance has an owner with a profile:

- notebook (55%): weekdays, arrives 08:00-10:00 local, leaves 16:30-19:00; Jupyter work in
  sessions of 15-120 minutes with gaps of 5-50 minutes and a lunch break; sometimes an
  evening session; rarely a weekend session; a week of vacation for some; sick days.
- trainer (25%): a notebook owner who also runs jobs of 30 minutes to 14 hours, some started
  in the evening and running overnight, and now and then a long job over a weekend.
- occasional (15%): one or two days a week, short sessions.
- forgotten (5%): left running before the month began and never used.

Scripted windows (CONTRACT section 4 plus `start = true`) are busy kernels or jobs; every
window has `start = true`: its owner starts the instance if it is stopped, as a person does
before working. 40% of the instances are running at the start of the month (left on
overnight). Nobody stops an instance by hand: "always on" is everyone forgetting.

Writes into OUT (default bench/money/out): fleet.toml, always_on.toml, native.toml,
schedule.toml, lightsout.toml, lightsout_idle.toml, and meta.json (profiles, native
settings, periods). Usage: python3 bench/money/generate.py [--seed 8] [--out DIR]

With --agent (issue 15; default OUT bench/money/out-agent) the same month, drawn from the
same seed, gets the activity kinds only an on-instance agent sees all of (the emulator's
README, "Activity kinds"), re-kinded with a second RNG so that the base month is unchanged:

- half of the trainers' jobs become GPU trainings in tmux started over SSH: an `ssh` window
  (typing, 5-15 minutes) and a `gpu_busy` window for the training's length;
- a VS Code owner's notebook windows become `vscode_connected` windows;
- of the other owners' notebook windows, 10% become silent cells (`silent_kernel`: a cell
  that computes without printing) and 10% Jupyter terminal work (`terminal_input`).

It also writes fleet_native.toml (each instance's own `idle_time_before_shutdown`, which the
emulator carries out: Azure's idle shutdown, which counts kernels, Jupyter terminals, jobs and
VS Code but not SSH, the GPU or a silent cell; a VS Code owner's 3 h longer, as VS Code ends
an idle remote session after 3 hours) and lightsout_agent.toml (office hours and idle 30 m on
`signals = ["arm", "agent"]`).
"""

import argparse
import datetime as dt
import json
import math
import pathlib
import random
from zoneinfo import ZoneInfo

FROM = dt.datetime(2026, 5, 1, tzinfo=dt.timezone.utc)
TO = dt.datetime(2026, 6, 1, tzinfo=dt.timezone.utc)
TENANT = "00000000-0000-0000-0000-0000000000aa"
SUB = "34adfa4f-cedf-4dc0-ba29-b6d1a69ab345"

TEAMS = [
    # name, time zone, instances, public holidays in May 2026 (local dates)
    ("paris", "Europe/Paris", 60, ["2026-05-01", "2026-05-08", "2026-05-14", "2026-05-25"]),
    ("newyork", "America/New_York", 50, ["2026-05-25"]),
    ("bangalore", "Asia/Kolkata", 50, ["2026-05-01", "2026-05-27"]),
    ("tokyo", "Asia/Tokyo", 40, ["2026-05-04", "2026-05-05", "2026-05-06"]),
]
PRICES = {
    "Standard_DS3_v2": 0.293,
    "Standard_E4ds_v4": 0.333,
    "Standard_DS11_v2": 0.185,
    "Standard_NC6s_v3": 3.06,
}
STOPPED = {"disk": 0.0264}
# Azure ML's idle shutdown settings people choose (the portal's minimum is 15 minutes).
NATIVE_CHOICES = [("30m", 0.2), ("60m", 0.5), ("120m", 0.2), ("180m", 0.1)]
# Azure ML: an open VS Code connection keeps an instance "active"; VS Code ends a remote
# session after 3 hours without activity.
VSCODE_HOLD = "3h"
VSCODE_SHARE = 0.35
LIGHTSOUT_IDLE = "30m"
OFFICE = "Mon-Fri 07:00-20:00"


def iso(t):
    return t.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def clamp(a, b):
    return max(a, FROM), min(b, TO)


class Owner:
    def __init__(self, rng, team, tz, holidays, profile):
        self.rng, self.team, self.tz, self.profile = rng, team, ZoneInfo(tz), profile
        self.holidays = {dt.date.fromisoformat(h) for h in holidays}
        self.windows = []  # (kind, from, to)
        self.vacation = set()
        if rng.random() < 0.3:
            start = dt.date(2026, 5, 4) + dt.timedelta(days=rng.randrange(0, 21))
            self.vacation = {start + dt.timedelta(days=d) for d in range(7)}

    def add(self, kind, a, b):
        a, b = clamp(a, b)
        if b - a >= dt.timedelta(minutes=1):
            self.windows.append((kind, a, b))

    def local(self, day, hour):
        """An aware UTC datetime at local `hour` (float) on `day`."""
        h = int(hour)
        m = int(round((hour - h) * 60))
        base = dt.datetime(day.year, day.month, day.day, tzinfo=self.tz)
        return (base + dt.timedelta(hours=h, minutes=m)).astimezone(dt.timezone.utc)

    def work_day(self, day, short=False):
        rng = self.rng
        arrive = rng.uniform(8.0, 10.0)
        leave = rng.uniform(12.0, 15.0) if short else rng.uniform(16.5, 19.0)
        lunch = rng.uniform(12.0, 13.5)
        t = self.local(day, arrive)
        end = self.local(day, leave)
        lunch_at = self.local(day, lunch)
        lunch_done = False
        while t < end:
            length = dt.timedelta(minutes=rng.uniform(15, 120))
            stop = min(t + length, end)
            self.add("kernel", t, stop)
            gap = dt.timedelta(minutes=rng.uniform(5, 50))
            if not lunch_done and stop >= lunch_at:
                gap = dt.timedelta(minutes=rng.uniform(45, 75))
                lunch_done = True
            t = stop + gap
        if not short and rng.random() < 0.15:
            a = self.local(day, rng.uniform(20.0, 21.5))
            self.add("kernel", a, a + dt.timedelta(minutes=rng.uniform(20, 90)))

    def job(self, a, hours):
        self.add("job", a, a + dt.timedelta(hours=hours))

    def generate(self):
        rng = self.rng
        day = (FROM - dt.timedelta(days=1)).date()
        last = TO.date()
        week_days = {}
        while day <= last:
            weekday = day.weekday() < 5
            off = day in self.holidays or day in self.vacation
            if self.profile in ("notebook", "trainer"):
                if weekday and not off and rng.random() > 0.05:
                    self.work_day(day)
                    if self.profile == "trainer" and rng.random() < 0.5:
                        # Jobs of varied lengths; an evening start runs overnight.
                        hours = min(14.0, math.exp(rng.uniform(math.log(0.5), math.log(14))))
                        start = rng.uniform(10.0, 17.0) if rng.random() < 0.6 else rng.uniform(18.0, 21.0)
                        self.job(self.local(day, start), hours)
                    if self.profile == "trainer" and day.weekday() == 4 and rng.random() < 0.25:
                        self.job(self.local(day, rng.uniform(17.0, 19.0)), rng.uniform(6, 40))
                elif not weekday and not off and rng.random() < 0.05:
                    a = self.local(day, rng.uniform(10.0, 16.0))
                    self.add("kernel", a, a + dt.timedelta(minutes=rng.uniform(20, 100)))
            elif self.profile == "occasional":
                week = day.isocalendar()[1]
                if week not in week_days:
                    week_days[week] = set(rng.sample(range(5), rng.choice([1, 2])))
                if weekday and not off and day.weekday() in week_days[week]:
                    self.work_day(day, short=True)
            day += dt.timedelta(days=1)
        self.windows.sort(key=lambda w: w[1])


def agent_kinds(krng, windows, profile, vscode):
    """The month's windows with the agent-only kinds (see the module's docstring)."""
    out = []
    for kind, s, e in windows:
        if kind == "job" and profile == "trainer" and krng.random() < 0.5:
            typing = dt.timedelta(minutes=krng.uniform(5, 15))
            out.append(("ssh", s, min(e, s + typing)))
            out.append(("gpu_busy", s, e))
        elif kind == "kernel" and vscode:
            out.append(("vscode_connected", s, e))
        elif kind == "kernel":
            r = krng.random()
            out.append(("silent_kernel" if r < 0.1 else "terminal_input" if r < 0.2 else kind, s, e))
        else:
            out.append((kind, s, e))
    out.sort(key=lambda w: w[1])
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", type=int, default=8)
    ap.add_argument("--out")
    ap.add_argument("--agent", action="store_true", help="add the agent-only activity kinds")
    a = ap.parse_args()
    a.out = a.out or str(pathlib.Path(__file__).parent / ("out-agent" if a.agent else "out"))
    # A second RNG for the agent kinds: the base month is the same with or without them.
    krng = random.Random(a.seed * 1000 + 15)
    rng = random.Random(a.seed)
    out = pathlib.Path(a.out)
    out.mkdir(parents=True, exist_ok=True)

    fleet = [f'tenant_id = "{TENANT}"', f"seed = {a.seed}", "page_size = 100", "",
             "[[principal]]", 'client_id = "11111111-1111-1111-1111-111111111111"',
             'client_secret = "s3cret"',
             'actions = ["Microsoft.MachineLearningServices/workspaces/computes/*"]', "",
             "[timing]", 'create = "3m"', 'start = "2m"', 'stop = "2m"', 'restart = "3m"',
             'delete = "1m"']
    fleet_native = list(fleet)
    meta = {"seed": a.seed, "agent_kinds": a.agent, "from": iso(FROM), "to": iso(TO), "prices": PRICES,
            "stopped_hourly": STOPPED, "lightsout_idle": LIGHTSOUT_IDLE,
            "vscode_hold": VSCODE_HOLD, "timing": {"start": 120, "stop": 120},
            "instances": {}}
    profiles = ["notebook"] * 55 + ["trainer"] * 25 + ["occasional"] * 15 + ["forgotten"] * 5
    n = 0
    for team, tz, count, holidays in TEAMS:
        ws = ["", "[[workspace]]", f'subscription_id = "{SUB}"', 'resource_group = "rg-ml"',
              f'name = "mlw-{team}"', 'location = "eastus2"']
        fleet += ws
        fleet_native += ws
        for i in range(count):
            n += 1
            profile = rng.choice(profiles)
            owner = Owner(rng, team, tz, holidays, profile)
            owner.generate()
            if profile == "trainer":
                vm = "Standard_NC6s_v3" if rng.random() < 0.6 else "Standard_E4ds_v4"
            else:
                vm = rng.choices(["Standard_DS3_v2", "Standard_E4ds_v4", "Standard_DS11_v2"],
                                 [0.5, 0.3, 0.2])[0]
            running = profile == "forgotten" or rng.random() < 0.4
            native = rng.choices([c for c, _ in NATIVE_CHOICES], [w for _, w in NATIVE_CHOICES])[0]
            vscode = rng.random() < VSCODE_SHARE
            name = f"ci-{team}-{i:02d}"
            tags = {"team": team, "native-idle": native, "ide": "vscode" if vscode else "jupyter"}
            tag_text = ", ".join(f'"{k}" = "{v}"' for k, v in tags.items())
            # The native setting is in the tags only, not in `idle_time_before_shutdown`:
            # the emulator carries that out itself, in every scenario, which would make
            # "always on" and the others Azure's idle shutdown plus theirs. The native
            # scenario plays it with lightsout's idle rule (native.toml).
            if a.agent:
                owner.windows = agent_kinds(krng, owner.windows, profile, vscode)
            head = ["", "[[workspace.instance]]", f'name = "{name}"', f'vm_size = "{vm}"',
                    f'state = "{"Running" if running else "Stopped"}"',
                    f"tags = {{ {tag_text} }}"]
            minutes = int(native[:-1]) + (180 if vscode else 0)
            body = []
            for kind, s, e in owner.windows:
                body += ["", "[[workspace.instance.activity]]", f'kind = "{kind}"',
                         f'from = "{iso(s)}"', f'to = "{iso(e)}"', "start = true"]
            fleet += head + body
            fleet_native += head + [f'idle_time_before_shutdown = "PT{minutes}M"'] + body
            meta["instances"][f"{team}/{name}"] = {
                "workspace": f"mlw-{team}", "profile": profile, "vm_size": vm,
                "running_at_start": running, "native_idle": native, "vscode": vscode,
                "windows": [[k, iso(s), iso(e)] for k, s, e in owner.windows],
            }
    (out / "fleet.toml").write_text("\n".join(fleet) + "\n")
    (out / "meta.json").write_text(json.dumps(meta, indent=1) + "\n")
    if a.agent:
        (out / "fleet_native.toml").write_text("\n".join(fleet_native) + "\n")

    def config(policies, agent=False):
        text = ['[daemon]', 'poll_interval = "60s"', "", "[pricing]", 'currency = "USD"',
                "[pricing.vm_hourly]"]
        text += [f"{k} = {v}" for k, v in PRICES.items()]
        text += ["[pricing.stopped_hourly]"] + [f"{k} = {v}" for k, v in STOPPED.items()]
        # [azure] is replaced by simulate; it still has to validate.
        text += ["", "[azure]", 'tenant_id = "00000000-0000-0000-0000-0000000000aa"',
                 'client_id = "11111111-1111-1111-1111-111111111111"',
                 'jupyter_token_scope = "https://ml.azure.com/.default"']
        for team, *_ in TEAMS:
            text += ["", "[[workspace]]", f'name = "{team}"', f'subscription_id = "{SUB}"',
                     'resource_group = "rg-ml"', f'workspace = "mlw-{team}"', 'region = "eastus2"']
        if agent:
            # simulate's agents report in process: this account is never contacted.
            text += ["", "[agent]", 'account = "lightsoutbench"']
        return "\n".join(text + [""] + policies) + "\n"

    def team_policies(idle, schedule, name, signals='["arm", "jupyter"]'):
        out_ = []
        for team, tz, _count, holidays in TEAMS:
            p = [f"[[policy]]", f'name = "{name}-{team}"', f'workspaces = ["{team}"]',
                 f'timezone = "{tz}"']
            if schedule:
                p += [f'uptime = ["{OFFICE}"]', 'start = "never"',
                      "holidays = [" + ", ".join(f'"{h}"' for h in holidays) + "]"]
            if idle:
                p += ["[policy.idle]", f'timeout = "{idle}"', 'min_uptime = "10m"',
                      f"signals = {signals}"]
            out_.append("\n".join(p) + "\n")
        return out_

    # Always on: a policy that matches nothing (tag never set).
    (out / "always_on.toml").write_text(config([
        '[[policy]]\nname = "nothing"\ntags = { lightsout-bench = "never-set" }\n'
        '[policy.idle]\ntimeout = "24h"\nsignals = ["arm"]\n']))
    # Azure ML's native idle shutdown, played by lightsout's idle rule: per instance its
    # own timeout (15 min minimum), Jupyter and job activity, no schedule; an instance whose
    # owner uses VS Code is held 3 h longer (the VS Code session must end first).
    native = []
    for t, _ in NATIVE_CHOICES:
        minutes = int(t[:-1]) if t.endswith("m") else int(t[:-1]) * 60
        for vs in (True, False):
            timeout = f"{minutes + (180 if vs else 0)}m"
            native.append(
                f'[[policy]]\nname = "native-{t}{"-vscode" if vs else ""}"\n'
                f'tags = {{ "native-idle" = "{t}", ide = "{"vscode" if vs else "jupyter"}" }}\n'
                f'[policy.idle]\ntimeout = "{timeout}"\nsignals = ["arm", "jupyter"]\n')
    (out / "native.toml").write_text(config(native))
    (out / "schedule.toml").write_text(config(team_policies(None, True, "office")))
    (out / "lightsout.toml").write_text(config(team_policies(LIGHTSOUT_IDLE, True, "office")))
    (out / "lightsout_idle.toml").write_text(config(team_policies(LIGHTSOUT_IDLE, False, "idle")))
    if a.agent:
        (out / "lightsout_agent.toml").write_text(config(
            team_policies(LIGHTSOUT_IDLE, True, "office", '["arm", "agent"]'), agent=True))
    windows = sum(len(v["windows"]) for v in meta["instances"].values())
    print(f"{n} instances, {windows} activity windows -> {out}")


if __name__ == "__main__":
    main()
