#!/usr/bin/env bash
# Real components: the emulator binary, `lightsout run` against it, and a real Prometheus
# server scraping the daemon. Checks through Prometheus's HTTP query API that the series
# exist with the expected values (a stopped instance's avoided-cost counter increasing),
# then `promtool check metrics` on the exposition and `promtool test rules` on the alerts.
#
# Usage: tests/prometheus/run.sh   (from anywhere; called by .ci/run)
# Needs: cargo, python3, and Debian's `prometheus` package (installed here when missing and
# running as root). Takes about a minute.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD

if ! command -v prometheus >/dev/null || ! command -v promtool >/dev/null; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "== installing Debian's prometheus package"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null
    else
        echo "error: prometheus and promtool are needed (apt-get install prometheus)" >&2
        exit 1
    fi
fi
prometheus --version 2>&1 | head -1

echo "== promtool: alert rules"
promtool check rules deploy/prometheus/alerts.yml
promtool test rules deploy/prometheus/alerts.test.yml

cargo build --locked -q
BIN="${CARGO_TARGET_DIR:-$ROOT/target}/debug/lightsout"

WORK=$(mktemp -d)
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT
fail() {
    echo "FAILED: $*" >&2
    for f in emulator.log daemon.log prometheus.log; do
        echo "--- $f (tail)" >&2
        tail -n 30 "$WORK/$f" >&2 || true
    done
    exit 1
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

cat >"$WORK/fleet.toml" <<'EOF'
tenant_id = "00000000-0000-0000-0000-0000000000aa"

[[principal]]
client_id = "11111111-1111-1111-1111-111111111111"
client_secret = "s3cret"
actions = ["Microsoft.MachineLearningServices/workspaces/computes/*"]

[timing]
start = "1s"
stop = "1s"
restart = "1s"
create = "1s"
delete = "1s"

[[workspace]]
subscription_id = "34adfa4f-cedf-4dc0-ba29-b6d1a69ab345"
resource_group = "testrg123"
name = "workspaces123"
location = "eastus2"

[[workspace.instance]]
name = "ci-stopme"
vm_size = "Standard_DS3_v2"
state = "Running"

[[workspace.instance]]
name = "ci-keep"
vm_size = "Standard_DS3_v2"
state = "Running"
tags = { lightsout = "off" }

[[workspace.instance]]
name = "ci-parked"
vm_size = "Standard_NC6"
state = "Stopped"
tags = { lightsout = "off" }
EOF

echo "== emulator"
"$BIN" emulator --listen 127.0.0.1:0 --tls --fleet "$WORK/fleet.toml" --state-dir "$WORK/emu" \
    >"$WORK/ready.json" 2>"$WORK/emulator.log" &
PIDS+=($!)
for _ in $(seq 100); do [ -s "$WORK/ready.json" ] && break; sleep 0.1; done
[ -s "$WORK/ready.json" ] || fail "emulator not ready"
EP=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["endpoint"])' "$WORK/ready.json")
CA=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["ca_file"])' "$WORK/ready.json")

LPORT=$(free_port)
cat >"$WORK/lightsout.toml" <<EOF
[daemon]
poll_interval = "5s"
state_dir = "$WORK/state"

[http]
listen = "127.0.0.1:$LPORT"

[azure]
arm_endpoint = "$EP"
authority_host = "$EP"
ca_file = "$CA"
credential = "client_secret"
tenant_id = "00000000-0000-0000-0000-0000000000aa"
client_id = "11111111-1111-1111-1111-111111111111"

[[workspace]]
name = "lab"
subscription_id = "34adfa4f-cedf-4dc0-ba29-b6d1a69ab345"
resource_group = "testrg123"
workspace = "workspaces123"
region = "eastus2"

[pricing]
currency = "USD"
source = "retail_api"
retail_api_endpoint = "$EP"
[pricing.stopped_hourly]
disk = 0.03

[[policy]]
name = "down"
enforcement = "always"
exceptions = [ { from = "2020-01-01T00:00", to = "2099-01-01T00:00", state = "down" } ]
EOF

echo "== lightsout run (http on 127.0.0.1:$LPORT)"
AZURE_CLIENT_SECRET=s3cret RUST_LOG=warn,lightsout=info "$BIN" --log-format json run \
    --config "$WORK/lightsout.toml" 2>"$WORK/daemon.log" &
PIDS+=($!)
python3 - "$LPORT" <<'EOF' || fail "daemon not ready"
import sys, time, urllib.request
url = f"http://127.0.0.1:{sys.argv[1]}/readyz"
for _ in range(200):
    try:
        if urllib.request.urlopen(url, timeout=2).status == 200:
            sys.exit(0)
    except Exception:
        pass
    time.sleep(0.2)
sys.exit(1)
EOF

echo "== promtool check metrics"
python3 -c "import sys,urllib.request; sys.stdout.write(urllib.request.urlopen(sys.argv[1]).read().decode())" \
    "http://127.0.0.1:$LPORT/metrics" >"$WORK/metrics.txt"
promtool check metrics <"$WORK/metrics.txt" || fail "promtool check metrics"
echo "exposition: $(grep -vc '^#' "$WORK/metrics.txt") series, $(wc -c <"$WORK/metrics.txt") bytes"

PPORT=$(free_port)
cp deploy/prometheus/alerts.yml "$WORK/alerts.yml"
cat >"$WORK/prometheus.yml" <<EOF
global:
  scrape_interval: 2s
  evaluation_interval: 2s
rule_files:
  - $WORK/alerts.yml
scrape_configs:
  - job_name: lightsout
    static_configs:
      - targets: ["127.0.0.1:$LPORT"]
EOF
echo "== prometheus on 127.0.0.1:$PPORT"
prometheus --config.file="$WORK/prometheus.yml" --storage.tsdb.path="$WORK/tsdb" \
    --web.listen-address="127.0.0.1:$PPORT" >"$WORK/prometheus.log" 2>&1 &
PIDS+=($!)

echo "== queries through the Prometheus HTTP API"
python3 - "$PPORT" <<'EOF' || fail "Prometheus checks"
import json, sys, time, urllib.parse, urllib.request

base = f"http://127.0.0.1:{sys.argv[1]}"

def query(q):
    url = f"{base}/api/v1/query?" + urllib.parse.urlencode({"query": q})
    with urllib.request.urlopen(url, timeout=5) as r:
        doc = json.load(r)
    assert doc["status"] == "success", doc
    return doc["data"]["result"]

def value(q):
    res = query(q)
    return float(res[0]["value"][1]) if res else None

def wait_for(q, pred, secs, what):
    deadline = time.time() + secs
    last = None
    while time.time() < deadline:
        try:
            last = value(q)
            if last is not None and pred(last):
                print(f"ok   {what}: {q} = {last:g}")
                return last
        except Exception as e:  # Prometheus still starting
            last = e
        time.sleep(0.5)
    raise SystemExit(f"FAIL {what}: {q} -> {last}")

# Two scrapes at least.
wait_for('count_over_time(up{job="lightsout"}[5m])', lambda v: v >= 2, 60, "two scrapes")
wait_for('up{job="lightsout"}', lambda v: v == 1, 10, "target up")
wait_for('lightsout_up', lambda v: v == 1, 10, "lightsout_up")
wait_for('lightsout_build_info', lambda v: v == 1, 10, "build info")
wait_for('lightsout_actions_total{action="stop",reason="outside_window",outcome="accepted",workspace="lab"}',
         lambda v: v == 1, 30, "our one stop")
wait_for('sum(lightsout_instances{workspace="lab"})', lambda v: v == 3, 10, "instances")
wait_for('lightsout_instances{workspace="lab",state="Stopped"}', lambda v: v == 2, 30, "stopped instances")
wait_for('lightsout_instance_running{exported_instance="ci-keep",vm_size="Standard_DS3_v2"}', lambda v: v == 1, 10, "ci-keep running")
# Emulator retail price of DS3 v2 in eastus2 (0.293) plus the disk; stopped: the disk only.
wait_for('lightsout_hourly_cost{exported_instance="ci-keep",currency="USD"}', lambda v: abs(v - 0.323) < 1e-9, 20, "burn of a running instance")
wait_for('lightsout_hourly_cost{exported_instance="ci-stopme",currency="USD"}', lambda v: abs(v - 0.03) < 1e-9, 30, "burn of a stopped instance")
a1 = wait_for('lightsout_cost_avoided_total{exported_instance="ci-stopme",currency="USD"}', lambda v: v > 0, 40, "avoided money")
# Stopped by hand (here: by the fleet file), not by lightsout: nothing avoided.
wait_for('lightsout_cost_avoided_total{exported_instance="ci-parked"}', lambda v: v == 0, 10, "nothing avoided for ci-parked")
wait_for('lightsout_cost_accrued_total{exported_instance="ci-parked"}', lambda v: v > 0, 10, "stopped instance accrues its disk")
wait_for('lightsout_cost_avoided_total{exported_instance="ci-stopme",currency="USD"}', lambda v: v > a1, 30, "avoided money increasing")
wait_for('lightsout_cost_accrued_total{exported_instance="ci-keep"}', lambda v: v > 0, 10, "accrued money")
wait_for('sum(lightsout_arm_requests_total{operation="list_computes",status="200"})', lambda v: v >= 2, 10, "ARM requests")
wait_for('lightsout_reconcile_duration_seconds_count', lambda v: v >= 2, 20, "pass histogram")
wait_for('time() - lightsout_last_reconcile_timestamp_seconds', lambda v: v < 15, 10, "loop fresh")
wait_for('lightsout_unpriced_instances', lambda v: v == 0, 10, "all priced")
wait_for('lightsout_prices_age_seconds', lambda v: v < 600, 10, "prices fresh")
wait_for('lightsout_workspace_up{workspace="lab"}', lambda v: v == 1, 10, "workspace observed")
wait_for('lightsout_state_errors_total{kind="sql"}', lambda v: v == 0, 10, "no state errors")

with urllib.request.urlopen(f"{base}/api/v1/rules", timeout=5) as r:
    rules = [rule["name"] for g in json.load(r)["data"]["groups"] for rule in g["rules"]]
assert len(rules) == 9 and "LightsoutAgentSilent" in rules, rules
print(f"ok   alert rules loaded: {', '.join(rules)}")
with urllib.request.urlopen(f"{base}/api/v1/alerts", timeout=5) as r:
    firing = [a["labels"]["alertname"] for a in json.load(r)["data"]["alerts"]]
assert not firing, firing
print("ok   no alert firing")
EOF
echo "== prometheus: all checks passed"
