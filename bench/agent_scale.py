#!/usr/bin/env python3
"""The daemon reading 10,000 agent heartbeats (issue 15): List Blobs calls and the pass time.

Target: "Daemon: heartbeats for 10,000 instances read in <= 2 calls per workspace, the pass
still < 2 s." For each layout (default: 100 workspaces x 100 instances, then 1 x 10,000):

1. The emulator (`lightsout emulator --tls`) serves the fleet, every instance Running, and
   Azurite (tests/azurite, blob service only) runs over HTTPS with a certificate for 127.0.0.1
   signed by a CA made here with `openssl`, OAuth on (`--oauth basic`), `--debug` logging
   every request.
2. A storage token from the emulator's Entra ID (client credentials, scope
   https://storage.azure.com/.default) writes one heartbeat per instance, as the agent does:
   block blob `{workspace}/{instance}.json` in `lightsout-heartbeats`, the verdict (busy false,
   last activity now, so the idle rule stops nothing) in metadata `lightsoutverdict`;
   48 requests in flight.
3. `lightsout run --once` without `[agent]` (signals ["arm"]), timed: the control. Then
   `lightsout run --once` with `[agent]` on Azurite and a policy counting `["arm", "agent"]`
   (idle timeout 45 min), under /usr/bin/time -v: wall time, CPU, peak RSS, ARM requests
   (/_emulator/calls), List Blobs requests (Azurite's debug log), actions taken.
4. `lightsout run` (the daemon, [http] on) for one pass, its /metrics scraped:
   `lightsout_storage_requests_total`, `lightsout_agent_heartbeats{state}`,
   `lightsout_reconcile_duration_seconds` (the pass as the daemon measures it).

Usage:  python3 bench/agent_scale.py [--layouts 100x100,1x10000] [--json OUT]
Needs a release build (`cargo build --release --locked`; LIGHTSOUT_BIN or CARGO_TARGET_DIR to
point at it), Azurite (`make azurite-deps`) and openssl. Exit 1 if List Blobs calls exceed 2
per workspace, `seen` is not every instance, or the pass acts on anything. The pass time is
reported (with a control: the same pass without `[agent]`), not asserted: with every
workspace in one subscription the daemon's own ARM read budget (125 burst, 12.5/s per
subscription, src/azure/budget.rs) paces the 200 list pages to about 6 s, agent or not.
"""

import argparse
import concurrent.futures
import datetime
import http.client
import json
import os
import pathlib
import re
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import benchlib as B  # noqa: E402

AZURITE = B.REPO / "tests/azurite/node_modules/.bin/azurite-blob"
ACCOUNT = "devstoreaccount1"
CONTAINER = "lightsout-heartbeats"
STORAGE_SCOPE = "https://storage.azure.com/.default"
X_MS_VERSION = "2025-01-05"
CONCURRENCY = 48


def write_certs(d):
    """A CA (`ca.pem`) and Azurite's certificate and key for 127.0.0.1, signed by it."""
    def run(*args):
        subprocess.run(["openssl", *args], check=True, capture_output=True)

    run("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-keyout", str(d / "ca-key.pem"), "-out", str(d / "ca.pem"), "-days", "2",
        "-subj", "/CN=lightsout bench CA (azurite)",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign,digitalSignature")
    run("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-keyout", str(d / "azurite-key.pem"), "-out", str(d / "azurite.csr"),
        "-subj", "/CN=127.0.0.1")
    (d / "ext.cnf").write_text(
        "basicConstraints=CA:FALSE\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n"
        "extendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature\n"
        "authorityKeyIdentifier=keyid\n")
    run("x509", "-req", "-in", str(d / "azurite.csr"), "-CA", str(d / "ca.pem"),
        "-CAkey", str(d / "ca-key.pem"), "-CAcreateserial", "-days", "2",
        "-extfile", str(d / "ext.cnf"), "-out", str(d / "azurite-cert.pem"))
    return d / "ca.pem"


class Azurite:
    """azurite-blob over HTTPS with OAuth, logging every request to `debug.log`."""

    def __init__(self, work):
        self.dir = work / "azurite"
        self.dir.mkdir()
        self.ca_file = write_certs(self.dir)
        self.port = B.free_port()
        self.debug = self.dir / "debug.log"
        self.log = open(self.dir / "azurite.log", "w")
        self.proc = subprocess.Popen(
            [str(AZURITE), "--blobHost", "127.0.0.1", "--blobPort", str(self.port),
             "--oauth", "basic", "--disableTelemetry", "--cert", str(self.dir / "azurite-cert.pem"),
             "--key", str(self.dir / "azurite-key.pem"), "--location", str(self.dir / "data"),
             "--debug", str(self.debug)],
            stdout=self.log, stderr=self.log, stdin=subprocess.DEVNULL)
        B._children.append(self.proc)
        self.ctx = ssl.create_default_context(cafile=str(self.ca_file))
        deadline = time.time() + 60
        while True:
            try:
                c = http.client.HTTPSConnection("127.0.0.1", self.port, context=self.ctx, timeout=5)
                c.request("GET", f"/{ACCOUNT}?restype=service&comp=properties")
                c.getresponse().read()
                c.close()
                return
            except OSError:
                if self.proc.poll() is not None or time.time() > deadline:
                    raise RuntimeError(f"azurite did not start; see {self.log.name}")
                time.sleep(0.2)

    def sync(self, timeout=60):
        """Waits until Azurite's (buffered) debug log holds every request made so far: sends a
        marked request and waits for it, and its response, to appear."""
        self.marks = getattr(self, "marks", 0) + 1
        mark = f"lightsoutbenchsync={self.marks}"
        c = http.client.HTTPSConnection("127.0.0.1", self.port, context=self.ctx, timeout=10)
        c.request("GET", f"/{ACCOUNT}?restype=service&comp=properties&{mark}")
        c.getresponse().read()
        c.close()
        deadline = time.time() + timeout
        while time.time() < deadline:
            text = self.debug.read_text(errors="replace")
            i = text.find(mark)
            if i >= 0:
                rid = text[text.rfind("\n", 0, i) + 1:].split(" ", 2)[1]
                if re.search(re.escape(rid) + r" .*TotalTimeInMS=", text[i:]):
                    return
            time.sleep(0.5)
        raise RuntimeError("azurite's debug log did not catch up")

    @property
    def account_url(self):
        return f"https://127.0.0.1:{self.port}/{ACCOUNT}"

    def list_requests(self):
        """List Blobs requests so far, from the debug log (one `BlobStorageContextMiddleware:
        RequestMethod=GET RequestURL=...` line per request), and Azurite's own time answering
        them (`EndMiddleware: End response. TotalTimeInMS=`), summed, in seconds."""
        self.sync()
        ids, ms = set(), 0
        with open(self.debug, errors="replace") as f:
            for line in f:
                parts = line.split(" ", 2)
                if len(parts) < 3:
                    continue
                if "BlobStorageContextMiddleware: RequestMethod=GET" in line:
                    url = line.split("RequestURL=", 1)[-1].split(" ", 1)[0]
                    if "comp=list" in url and "restype=container" in url:
                        ids.add(parts[1])
                elif parts[1] in ids and "TotalTimeInMS=" in line:
                    ms += int(re.search(r"TotalTimeInMS=(\d+)", line).group(1))
        return len(ids), ms / 1000

    def close(self):
        B.kill(self.proc, 15)


def storage_token(em):
    r = em.ready
    body = urllib.parse.urlencode({
        "grant_type": "client_credentials", "client_id": B.ADMIN_ID,
        "client_secret": B.ADMIN_SECRET, "scope": STORAGE_SCOPE}).encode()
    req = urllib.request.Request(f"{r['endpoint']}/{r['tenant_id']}/oauth2/v2.0/token", data=body,
                                 headers={"content-type": "application/x-www-form-urlencoded"})
    with urllib.request.urlopen(req, context=em.ctx, timeout=30) as resp:
        return json.loads(resp.read())["access_token"]


def rfc3339(t):
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def write_heartbeats(az, token, names):
    """One block blob per (workspace, instance), the verdict in metadata; returns seconds."""
    local = threading.local()
    base = {"authorization": f"Bearer {token}", "x-ms-version": X_MS_VERSION}

    def conn():
        if not hasattr(local, "c"):
            local.c = http.client.HTTPSConnection("127.0.0.1", az.port, context=az.ctx, timeout=60)
        return local.c

    def put(path, headers, body=b""):
        for attempt in range(3):
            try:
                c = conn()
                c.request("PUT", path, body=body, headers={**base, **headers})
                r = c.getresponse()
                data = r.read()
                return r.status, data
            except (OSError, http.client.HTTPException):
                local.__dict__.pop("c", None)
                if attempt == 2:
                    raise

    st, data = put(f"/{ACCOUNT}/{CONTAINER}?restype=container", {"content-length": "0"})
    if st not in (201, 409):
        sys.exit(f"create container: {st} {data[:500]!r}")
    now = rfc3339(datetime.datetime.now(datetime.timezone.utc))

    def beat(ws_inst):
        ws, inst = ws_inst
        verdict = json.dumps({"v": 1, "instance": inst, "at": now, "busy": False, "reasons": [],
                              "last_activity": now, "interval_secs": 60}, separators=(",", ":"))
        st, data = put(f"/{ACCOUNT}/{CONTAINER}/{ws}/{inst}.json",
                       {"x-ms-blob-type": "BlockBlob", "content-type": "application/json",
                        "content-length": "2", "x-ms-meta-lightsoutverdict": verdict}, b"{}")
        if st != 201:
            raise RuntimeError(f"put {ws}/{inst}: {st} {data[:300]!r}")

    t0 = time.time()
    with concurrent.futures.ThreadPoolExecutor(CONCURRENCY) as pool:
        list(pool.map(beat, names))
    return time.time() - t0


def scrape_after_a_pass(port, daemon, timeout=120):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if daemon.poll() is not None:
            sys.exit("daemon exited early")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
                text = r.read().decode()
            if re.search(r"^lightsout_reconcile_passes_total 1\b", text, re.M):
                return text
        except OSError:
            pass
        time.sleep(0.2)
    sys.exit("no pass within the timeout")


def metric(text, name, **labels):
    """Sum of the samples of `name` whose labels include `labels`."""
    total = 0.0
    for line in text.splitlines():
        m = re.match(rf"^{re.escape(name)}(\{{[^}}]*\}})?\s+(\S+)$", line)
        if not m:
            continue
        lab = dict(re.findall(r'(\w+)="([^"]*)"', m.group(1) or ""))
        if all(lab.get(k) == v for k, v in labels.items()):
            total += float(m.group(2))
    return total


def run_layout(workspaces, per_ws, subscriptions):
    total = workspaces * per_ws
    work = pathlib.Path(tempfile.mkdtemp(prefix=f"lightsout-agent-scale-{workspaces}x{per_ws}-"))
    fleet = work / "fleet.toml"
    subscriptions = min(subscriptions, workspaces)
    fleet.write_text(B.fleet_text(workspaces, per_ws, subscriptions, state_mix={"Running": 1.0}))
    print(f"# {workspaces} workspaces x {per_ws} = {total} running instances, {subscriptions} "
          f"subscriptions; load {B.loadavg()}", flush=True)
    em = B.Emulator(fleet, work)
    az = Azurite(work)
    ws = B.workspaces_of(workspaces, subscriptions)
    names = [(w[3], f"ci-{i:03d}-{j:04d}") for i, w in enumerate(ws) for j in range(per_ws)]
    put_s = write_heartbeats(az, storage_token(em), names)
    print(f"wrote {total} heartbeats in {put_s:.1f} s ({CONCURRENCY} in flight)", flush=True)

    bundle = work / "cas.pem"
    bundle.write_bytes(pathlib.Path(em.ready["ca_file"]).read_bytes() + az.ca_file.read_bytes())
    policy = ('[[policy]]\nname = "idle"\n[policy.idle]\ntimeout = "45m"\n'
              'signals = ["arm", "agent"]\n\n'
              f'[agent]\naccount = "{az.account_url}"\ncontainer = "{CONTAINER}"\n')

    def config(name, port, agent=True):
        text = B.config_text(
            em.ready, ws, work / f"state-{name}", listen=f"127.0.0.1:{port}",
            policy=policy if agent else policy.split("signals")[0] + 'signals = ["arm"]\n')
        text = text.replace(f'ca_file = "{em.ready["ca_file"]}"', f'ca_file = "{bundle}"')
        p = work / f"{name}.toml"
        p.write_text(text)
        return p

    os.environ["RUST_LOG"] = "info"
    # 0. The same pass without the agent (ARM only): what the agent adds is the difference.
    cfg = config("control", B.free_port(), agent=False)
    r, t = B.lightsout(["run", "--once"], cfg, timed=True)
    if r.returncode != 0:
        sys.exit(f"lightsout run --once (no agent) failed:\n{r.stderr[-3000:]}")
    control = {**t, "load": B.loadavg()}
    print(f"run --once without [agent]: wall {t['wall_s']:.2f} s, cpu "
          f"{t['user_s'] + t['sys_s']:.2f} s, peak RSS {t['max_rss_kib'] / 1024:.1f} MiB", flush=True)

    # 1. One pass, timed.
    cfg = config("once", B.free_port())
    em.clear_calls()
    lists0, _ = az.list_requests()
    load = B.loadavg()
    r, t = B.lightsout(["run", "--once"], cfg, timed=True)
    (work / "once.log").write_text(r.stderr)
    if r.returncode != 0:
        sys.exit(f"lightsout run --once failed:\n{r.stderr[-3000:]}")
    arm = B.arm_calls(em.calls())
    lists, list_s = az.list_requests()
    lists -= lists0
    done = re.findall(r"pass done.*", r.stderr)
    m = re.search(r"actions\W+(\d+)", done[-1]) if done else None
    actions = int(m.group(1)) if m else None
    stops = sum(1 for c in arm if c["method"] == "POST")
    once = {**t, "arm_requests": len(arm), "arm_posts": stops, "list_blobs_requests": lists,
            "azurite_list_seconds": round(list_s, 3), "actions": actions, "load": load}
    print(f"run --once: wall {t['wall_s']:.2f} s, cpu {t['user_s'] + t['sys_s']:.2f} s, peak RSS "
          f"{t['max_rss_kib'] / 1024:.1f} MiB, ARM requests {len(arm)} ({stops} POST), "
          f"List Blobs {lists} (Azurite answering: {list_s:.2f} s), actions {actions}; load {load}",
          flush=True)

    # 2. The daemon, one pass, its metrics.
    port = B.free_port()
    cfg = config("daemon", port)
    lists0, _ = az.list_requests()
    d = B.start_daemon(cfg, work)
    text = scrape_after_a_pass(port, d)
    hwm = B.proc_hwm_kib(d.pid)
    B.kill(d, 15)
    (work / "metrics.txt").write_text(text)
    lists1, list1_s = az.list_requests()
    seen = metric(text, "lightsout_agent_heartbeats", state="seen")
    states = {}
    for line in text.splitlines():
        m = re.match(r'^lightsout_agent_heartbeats\{.*state="(\w+)".*\}\s+(\S+)$', line)
        if m:
            states[m.group(1)] = states.get(m.group(1), 0) + int(float(m.group(2)))
    daemon = {
        "storage_requests": int(metric(text, "lightsout_storage_requests_total")),
        "list_blobs_requests_azurite": lists1 - lists0,
        "azurite_list_seconds": round(list1_s - list_s, 3),
        "heartbeats": states,
        "seen": int(seen),
        "ignored": int(metric(text, "lightsout_agent_heartbeats_ignored_total")),
        "pass_seconds": round(metric(text, "lightsout_reconcile_duration_seconds_sum"), 3),
        "peak_rss_mib_after_pass": round(hwm / 1024, 1),
    }
    print(f"daemon pass: {daemon['pass_seconds']:.3f} s (lightsout_reconcile_duration_seconds), "
          f"storage requests {daemon['storage_requests']} (Azurite answering: "
          f"{daemon['azurite_list_seconds']:.2f} s), heartbeats {states}, "
          f"ignored {daemon['ignored']}", flush=True)
    az.close()
    em.close()

    missed = []
    for what, n in (("run --once", lists), ("daemon", daemon["storage_requests"])):
        if n > 2 * workspaces:
            missed.append(f"{what}: {n} List Blobs > 2 per workspace ({workspaces})")
    if daemon["seen"] != total:
        missed.append(f"seen {daemon['seen']} != {total}")
    if stops or actions:
        missed.append(f"the pass acted ({actions} actions, {stops} ARM POSTs)")
    return {"workspaces": workspaces, "per_workspace": per_ws, "instances": total,
            "subscriptions": subscriptions, "heartbeat_write_s": round(put_s, 1),
            "control_no_agent": control, "once": once, "daemon": daemon,
            "pass_under_2s": t["wall_s"] < 2.0,
            "agent_added_s": round(t["wall_s"] - control["wall_s"], 2),
            "missed": missed, "work_dir": str(work)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--layouts", default="100x100,1x10000",
                    help="comma-separated WORKSPACESxINSTANCES")
    ap.add_argument("--subscriptions", type=int, default=3,
                    help="workspaces spread over this many (as bench/scale.py; at most one per "
                         "workspace)")
    ap.add_argument("--json", help="write the results here too")
    a = ap.parse_args()
    results = {"binary": B.binary(), "layouts": []}
    missed = []
    for lay in a.layouts.split(","):
        w, n = (int(x) for x in lay.split("x"))
        res = run_layout(w, n, a.subscriptions)
        results["layouts"].append(res)
        missed += [f"{lay}: {m}" for m in res["missed"]]
        print(f"{lay}: pass {res['once']['wall_s']:.2f} s "
              f"({'under' if res['pass_under_2s'] else 'NOT under'} 2 s), "
              f"{res['agent_added_s']:+.2f} s against the same pass without [agent]", flush=True)
    results["missed"] = missed
    print("missed targets: " + ("; ".join(missed) if missed else "none"))
    if a.json:
        pathlib.Path(a.json).write_text(json.dumps(results, indent=2) + "\n")
    sys.exit(1 if missed else 0)


if __name__ == "__main__":
    main()
