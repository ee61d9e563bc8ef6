#!/usr/bin/env bash
# BENCHMARKS.md section 7, "The agent's loop": the resident `lightsout agent run` against real
# Azurite (HTTPS, OAuth; `make azurite-deps`) with the emulator's /MSI/auth, at the default
# 60 s interval and 10 s window, observing the target's conditions: a throwaway user with a
# hundred processes and four ptys (as bench/agent.sh; BENCH_OBSERVE=root observes root, i.e.
# every process of this machine, instead). Prints the loop's max RSS and
# its CPU over SECONDS after a 30 s warm-up, and the heartbeat blob as List Blobs shows it.
# Needs openssl, curl, python3, node. Stops what it started by pid.
#
#   bench/agent-run.sh [SECONDS]        (default 180; LIGHTSOUT_BIN to pick the binary)
set -euo pipefail
REPO="$(cd "$(dirname "$0")/.." && pwd)"
BIN="${LIGHTSOUT_BIN:-${CARGO_TARGET_DIR:-$REPO/target}/release/lightsout}"
SECS=${1:-180}
test -x "$BIN" || { echo "no release binary at $BIN (make release)" >&2; exit 1; }
W=$(mktemp -d); cd "$W"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$W"; }
trap cleanup EXIT
OBSERVE="${BENCH_OBSERVE:-}"
if [ -z "$OBSERVE" ]; then
  [ "$(id -u)" = 0 ] || { echo "needs root (useradd)" >&2; exit 1; }
  OBSERVE="lo-agent-run-$$"
  useradd -m -s /bin/sh "$OBSERVE"
  U=$(id -u "$OBSERVE"); G=$(id -g "$OBSERVE")
  AS_USER=(setpriv --reuid="$U" --regid="$G" --clear-groups)
  for _ in $(seq 96); do "${AS_USER[@]}" sleep 3600 & pids+=($!); done
  for _ in 1 2 3 4; do "${AS_USER[@]}" script -qfc "sleep 3600" /dev/null </dev/null >/dev/null 2>&1 & pids+=($!); done
  cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in $(pgrep -u "$OBSERVE" || true); do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true; sleep 1; userdel -r "$OBSERVE" 2>/dev/null || true; rm -rf "$W"
  }
  sleep 2
  echo "observing $OBSERVE: $(pgrep -c -u "$U") processes"
fi
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=127.0.0.1 \
  -addext "subjectAltName=IP:127.0.0.1" -addext "basicConstraints=critical,CA:FALSE" \
  -addext "extendedKeyUsage=serverAuth" -days 1 -keyout key.pem -out cert.pem 2>/dev/null
MI=55555555-5555-5555-5555-555555555555
cat > fleet.toml <<F
tenant_id = "00000000-0000-0000-0000-0000000000aa"
[[principal]]
client_id = "11111111-1111-1111-1111-111111111111"
client_secret = "s3cret"
actions = ["Microsoft.MachineLearningServices/workspaces/computes/*"]
[[principal]]
client_id = "$MI"
managed_identity = true
actions = ["Microsoft.MachineLearningServices/workspaces/computes/read"]
[[instance_identity]]
instance = "ci-bench"
client_id = "$MI"
secret = "bench-secret"
[[workspace]]
subscription_id = "34adfa4f-cedf-4dc0-ba29-b6d1a69ab345"
resource_group = "rg"
name = "ws"
location = "eastus2"
[[workspace.instance]]
name = "ci-bench"
vm_size = "Standard_DS3_v2"
state = "Running"
F
# The emulator runs from a copy: the same file would share its page cache with the agent,
# and fault-around maps pages the emulator brought in into the agent's RSS too.
cp "$BIN" "$W/emulator-bin"
"$W/emulator-bin" emulator --listen 127.0.0.1:0 --tls --fleet fleet.toml --state-dir state > emu.out 2> emu.log & pids+=($!)
for _ in $(seq 100); do [ -s emu.out ] && break; sleep 0.2; done
EP=$(python3 -c 'import json,sys; print(json.loads(open("emu.out").readline())["endpoint"])')
EMUCA=$(python3 -c 'import json,sys; print(json.loads(open("emu.out").readline())["ca_file"])')
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$REPO/tests/azurite/node_modules/.bin/azurite-blob" --blobHost 127.0.0.1 --blobPort "$PORT" --oauth basic \
  --disableTelemetry --cert cert.pem --key key.pem --location azdata > azurite.log 2>&1 & pids+=($!)
cat cert.pem "$EMUCA" > ca.pem
for _ in $(seq 300); do curl -s --cacert cert.pem "https://127.0.0.1:$PORT/devstoreaccount1?comp=list" >/dev/null && break; sleep 0.2; done
TOKEN=$(curl -s --cacert "$EMUCA" -d grant_type=client_credentials -d client_id=11111111-1111-1111-1111-111111111111 \
  -d client_secret=s3cret -d scope=https://storage.azure.com/.default "$EP/00000000-0000-0000-0000-0000000000aa/oauth2/v2.0/token" \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
curl -s -o /dev/null -w 'create container: %{http_code}\n' --cacert cert.pem -X PUT -H "Authorization: Bearer $TOKEN" \
  -H "x-ms-version: 2021-08-06" -H "Content-Length: 0" "https://127.0.0.1:$PORT/devstoreaccount1/heartbeats?restype=container"
cat > agent.toml <<A
resource_group = "rg"
workspace = "ws"
instance = "ci-bench"
user = "$OBSERVE"
account = "https://127.0.0.1:$PORT/devstoreaccount1"
container = "heartbeats"
ca_file = "$W/ca.pem"
snooze_socket = "$W/snooze.sock"
state_dir = "$W/agentstate"
A
MSI_ENDPOINT="$EP/MSI/auth" MSI_SECRET=bench-secret DEFAULT_IDENTITY_CLIENT_ID=$MI "$BIN" agent run --config agent.toml > agent.log 2>&1 & AG=$!; pids+=("$AG")
CLK=$(getconf CLK_TCK)
sleep 30
read -r ut0 st0 < <(awk '{print $14, $15}' /proc/$AG/stat)
sleep "$SECS"
read -r ut1 st1 < <(awk '{print $14, $15}' /proc/$AG/stat)
echo "agent memory: $(grep -E '^(Rss|Pss_Anon|Pss_File|Anonymous):' /proc/$AG/smaps_rollup | tr -s ' ' | tr '\n' ';')"
ut=$((ut1 - ut0)); st=$((st1 - st0))
echo "agent pid $AG after 30+${SECS}s (cpu over the last ${SECS}s): $(grep -E 'VmHWM|VmRSS|Threads' /proc/$AG/status | tr -s ' \t' ' ' | tr '\n' ';')"
python3 -c "print('cpu: %.2f s = %.3f%% of one core' % (($ut+$st)/$CLK, 100*($ut+$st)/$CLK/$SECS))"
echo "write failures: $(grep -c 'cannot write' agent.log || true); load average: $(cut -d' ' -f1-3 /proc/loadavg)"
curl -s --cacert cert.pem -H "Authorization: Bearer $TOKEN" -H "x-ms-version: 2021-08-06" \
  "https://127.0.0.1:$PORT/devstoreaccount1/heartbeats?restype=container&comp=list&include=metadata" | head -c 1500; echo
