"""Shared helpers of the issue-8 benchmark scripts (scale, soak, crash).

Starts the lightsout emulator binary over TLS, writes fleets and lightsout configs, reads the
emulator's control API (`/_emulator/...`) and samples a process's CPU time and memory from
/proc. Standard library only, so the scripts run without installing anything; the SDK
baseline (`sdk_baseline.py`) is the one script that needs Microsoft's packages.

Every process started here is killed when the script ends (see `Emulator.close` and the
`atexit` hook), and every request goes to 127.0.0.1.
"""

import atexit
import json
import os
import pathlib
import random
import re
import signal
import socket
import ssl
import subprocess
import time
import urllib.request

REPO = pathlib.Path(__file__).resolve().parents[1]
TENANT = "00000000-0000-0000-0000-0000000000aa"
ADMIN_ID = "11111111-1111-1111-1111-111111111111"
ADMIN_SECRET = "s3cret"
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")

_children = []


def _kill_children():
    for p in _children:
        if p.poll() is None:
            p.kill()
            p.wait()


atexit.register(_kill_children)


def binary():
    """The lightsout release binary: $LIGHTSOUT_BIN, else $CARGO_TARGET_DIR or ./target."""
    b = os.environ.get("LIGHTSOUT_BIN")
    if b:
        return b
    target = pathlib.Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))
    return str(target / "release" / "lightsout")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# How long operations take on real Azure, in seconds (tests/fixtures/azure/recorded: stop
# 31-61 s, start about 121 s, create about 3 min; restart and delete: the emulator's
# assumptions), and the daemon's default cadence for following them without Retry-After.
REAL_TIMING = {"create": 180, "start": 120, "stop": 45, "restart": 165, "delete": 60}
REAL_FOLLOW = 15


def real_timing(scale=1.0):
    """Real operation times scaled by `scale` (a shorter run keeps their proportions)."""
    return {op: f"{max(1, round(s * scale))}s" for op, s in REAL_TIMING.items()}


def subscription(i):
    return f"{i:08x}-0000-4000-8000-{i:012x}"


def fleet_text(
    workspaces,
    per_workspace,
    subscriptions,
    *,
    limits="real",
    page_size=None,
    timing="1s",
    state_mix=None,
    seed=1,
    idle="PT60M",
):
    """A fleet of `workspaces` x `per_workspace` instances spread over `subscriptions`.

    `timing`: one duration for every operation, or a dict per operation (`real_timing`).
    `limits`: "real" keeps ARM's documented token buckets (reads 250 + 25/s, writes 200 +
    10/s per subscription and principal), "generous" lifts them. `state_mix` maps an initial
    state to its share (default: 50% Running, 40% Stopped, 10% JobRunning).
    """
    rng = random.Random(seed)
    mix = state_mix or {"Running": 0.5, "Stopped": 0.4, "JobRunning": 0.1}
    states, weights = zip(*mix.items())
    out = [f'tenant_id = "{TENANT}"', f"seed = {seed}"]
    if page_size:
        out.append(f"page_size = {page_size}")
    out += [
        "",
        "[[principal]]",
        f'client_id = "{ADMIN_ID}"',
        f'client_secret = "{ADMIN_SECRET}"',
        'actions = ["Microsoft.MachineLearningServices/workspaces/computes/*"]',
        "",
        "[timing]",
    ]
    for op in ("create", "start", "stop", "restart", "delete"):
        out.append(f'{op} = "{timing[op] if isinstance(timing, dict) else timing}"')
    if limits == "generous":
        out += [
            "",
            "[limits]",
            "read_bucket = 1000000",
            "read_refill_per_sec = 1000000.0",
            "write_bucket = 1000000",
            "write_refill_per_sec = 1000000.0",
        ]
    for w in range(workspaces):
        out += [
            "",
            "[[workspace]]",
            f'subscription_id = "{subscription(w % subscriptions)}"',
            f'resource_group = "rg-{w % subscriptions}"',
            f'name = "mlw-{w:03d}"',
            'location = "eastus2"',
        ]
        for i in range(per_workspace):
            state = rng.choices(states, weights)[0]
            out += [
                "",
                "[[workspace.instance]]",
                f'name = "ci-{w:03d}-{i:04d}"',
                'vm_size = "Standard_DS3_v2"',
                f'state = "{state}"',
                f'idle_time_before_shutdown = "{idle}"',
            ]
    return "\n".join(out) + "\n"


def workspaces_of(workspaces, subscriptions):
    """(alias, subscription, resource group, workspace) of a `fleet_text` fleet."""
    return [
        (f"w{w:03d}", subscription(w % subscriptions), f"rg-{w % subscriptions}", f"mlw-{w:03d}")
        for w in range(workspaces)
    ]


def config_text(ready, workspaces, state_dir, *, listen=None, poll="60s", policy=None, daemon_extra=""):
    """A lightsout config against the emulator, for `workspaces_of(...)`."""
    out = [
        "[daemon]",
        f'poll_interval = "{poll}"',
        f'state_dir = "{state_dir}"',
        daemon_extra,
        "",
        "[http]",
        f'listen = "{listen or "127.0.0.1:" + str(free_port())}"',
        "",
        "[azure]",
        f'arm_endpoint = "{ready["endpoint"]}"',
        f'authority_host = "{ready["endpoint"]}"',
        f'ca_file = "{ready["ca_file"]}"',
        'credential = "client_secret"',
        f'tenant_id = "{ready["tenant_id"]}"',
        f'client_id = "{ready["client_id"]}"',
        "",
        "[pricing]",
        'currency = "USD"',
        "[pricing.vm_hourly]",
        "Standard_DS3_v2 = 0.293",
        "[pricing.stopped_hourly]",
        "disk = 0.0264",
    ]
    for alias, sub, rg, ws in workspaces:
        out += [
            "",
            "[[workspace]]",
            f'name = "{alias}"',
            f'subscription_id = "{sub}"',
            f'resource_group = "{rg}"',
            f'workspace = "{ws}"',
            'region = "eastus2"',
        ]
    out += ["", policy or '[[policy]]\nname = "idle"\n[policy.idle]\ntimeout = "12h"\nsignals = ["arm"]']
    return "\n".join(out) + "\n"


class Emulator:
    """`lightsout emulator --tls` on a free port; killed by `close` or at exit."""

    def __init__(self, fleet_path, workdir, extra_args=()):
        self.log = open(pathlib.Path(workdir) / "emulator.log", "w")
        self.proc = subprocess.Popen(
            [binary(), "emulator", "--listen", "127.0.0.1:0", "--tls", "--fleet", str(fleet_path),
             "--state-dir", str(pathlib.Path(workdir) / "emulator-state"), *extra_args],
            stdout=subprocess.PIPE,
            stderr=self.log,
            stdin=subprocess.DEVNULL,
            text=True,
        )
        _children.append(self.proc)
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"emulator exited without a ready line; see {self.log.name}")
        self.ready = json.loads(line)
        self.ctx = ssl.create_default_context(cafile=self.ready["ca_file"])

    def _req(self, method, path, body=None, timeout=120):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(
            self.ready["endpoint"] + path, data=data, method=method,
            headers={"content-type": "application/json"},
        )
        with urllib.request.urlopen(req, context=self.ctx, timeout=timeout) as r:
            return json.loads(r.read())

    def calls(self):
        return self._req("GET", "/_emulator/calls")

    def clear_calls(self):
        self._req("DELETE", "/_emulator/calls")

    def faults(self, faults):
        return self._req("POST", "/_emulator/faults", faults)

    def state(self):
        return self._req("GET", "/_emulator/state")

    def activity(self, workspace, instance, kind):
        return self._req("POST", "/_emulator/activity",
                         {"workspace": workspace, "instance": instance, "kind": kind})

    def close(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def start_daemon(config_path, workdir, args=(), name="daemon"):
    """`lightsout run --config C` with the client secret in its environment, logging to a file."""
    log = open(pathlib.Path(workdir) / f"{name}.log", "a")
    env = {"PATH": os.environ.get("PATH", ""), "AZURE_CLIENT_SECRET": ADMIN_SECRET,
           "RUST_LOG": os.environ.get("RUST_LOG", "info")}
    # Allocator experiments (e.g. MALLOC_ARENA_MAX) reach the daemon.
    env.update({k: v for k, v in os.environ.items() if k.startswith("MALLOC_")})
    # LIGHTSOUT_WRAP runs the daemon under a tool, e.g. "heaptrack -o /tmp/daemon".
    wrap = os.environ.get("LIGHTSOUT_WRAP", "").split()
    p = subprocess.Popen([*wrap, binary(), "run", "--config", str(config_path), *args],
                         stdout=log, stderr=log, stdin=subprocess.DEVNULL, env=env)
    _children.append(p)
    return p


def lightsout(args, config_path=None, timeout=600, timed=False):
    """Run the lightsout CLI to the end; with `timed`, under /usr/bin/time -v (returns its stats)."""
    env = {"PATH": os.environ.get("PATH", ""), "AZURE_CLIENT_SECRET": ADMIN_SECRET,
           "RUST_LOG": os.environ.get("RUST_LOG", "warn")}
    cmd = [binary(), *args]
    if config_path:
        cmd += ["--config", str(config_path)]
    if timed:
        cmd = ["/usr/bin/time", "-v", *cmd]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    return r, (parse_time_v(r.stderr) if timed else None)


def parse_time_v(text):
    """The figures of `/usr/bin/time -v` we report."""
    def grab(label):
        m = re.search(re.escape(label) + r":\s*(.+)", text)
        return m.group(1).strip() if m else None

    wall = grab("Elapsed (wall clock) time (h:mm:ss or m:ss)")
    secs = 0.0
    if wall:
        for part in wall.split(":"):
            secs = secs * 60 + float(part)
    return {
        "wall_s": secs,
        "user_s": float(grab("User time (seconds)") or 0),
        "sys_s": float(grab("System time (seconds)") or 0),
        "max_rss_kib": int(grab("Maximum resident set size (kbytes)") or 0),
        "exit": int(grab("Exit status") or -1),
    }


def proc_cpu_seconds(pid):
    """utime + stime of a live process, in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def proc_rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def proc_hwm_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def arm_calls(calls):
    """Requests to ARM (subscriptions paths), not tokens, Jupyter or control."""
    return [c for c in calls if c["path"].lower().startswith("/subscriptions/")]


def kill(proc, sig=signal.SIGKILL):
    if proc.poll() is None:
        proc.send_signal(sig)
    proc.wait()


def now():
    return time.time()
