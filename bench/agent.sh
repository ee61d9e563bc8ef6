#!/usr/bin/env bash
# BENCHMARKS.md section 7, "Agent on the instance": what one observation costs. One
# `lightsout agent observe --json --window 60s` is what the agent does every interval (two
# passes over /proc a minute apart, the ptys, the Jupyter runtime files, NVML), so its
# max RSS and its CPU time over the 60 s are the agent's footprint.
#
# Conditions: a throwaway user with 100 idle processes and 4 ptys (script(1) running
# `sleep`), as on a busy-ish compute instance. Needs root (useradd); cleans up by pid and
# removes the user. Writes bench/results/agent.json. Targets: max RSS < 12 MiB, CPU < 0.2% of one core over the window.
#
#   bench/agent.sh [WINDOW_SECS]        (default 60; LIGHTSOUT_BIN to pick the binary)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN="${LIGHTSOUT_BIN:-${CARGO_TARGET_DIR:-$PWD/target}/release/lightsout}"
WINDOW="${1:-60}"
test -x "$BIN" || { echo "no release binary at $BIN (make release)" >&2; exit 1; }
[ "$(id -u)" = 0 ] || { echo "needs root (useradd)" >&2; exit 1; }

USER_NAME="lo-agent-bench-$$"
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    # What those left (script's children): the throwaway user's own processes, by pid.
    for p in $(pgrep -u "$USER_NAME" || true); do kill "$p" 2>/dev/null || true; done
    sleep 1
    userdel -r "$USER_NAME" 2>/dev/null || true
}
trap cleanup EXIT
useradd -m -s /bin/sh "$USER_NAME"
U=$(id -u "$USER_NAME")
G=$(id -g "$USER_NAME")
# setpriv execs: the pid after `&` is the process itself, so cleanup can kill it by pid.
AS_USER=(setpriv --reuid="$U" --regid="$G" --clear-groups)

for _ in $(seq 96); do "${AS_USER[@]}" sleep 3600 & PIDS+=($!); done
# Four ptys: script(1) and its `sleep` child hold each (4 x 2 more processes).
for _ in 1 2 3 4; do
    "${AS_USER[@]}" script -qfc "sleep 3600" /dev/null </dev/null >/dev/null 2>&1 & PIDS+=($!)
done
sleep 2
echo "user $USER_NAME: $(pgrep -c -u "$U") processes; window ${WINDOW}s; $BIN"

OUT=$(mktemp)
/usr/bin/time -v "$BIN" agent observe --json --user "$USER_NAME" --window "${WINDOW}s" \
    >"$OUT.json" 2>"$OUT.time"
python3 - "$OUT.json" "$OUT.time" "$WINDOW" "$(pgrep -c -u "$U")" <<'PY'
import datetime, json, os, re, sys
snap = json.load(open(sys.argv[1]))
t = open(sys.argv[2]).read()
window = float(sys.argv[3])
def field(name):
    return float(re.search(re.escape(name) + r": ([0-9.]+)", t).group(1))
user, sys_, rss_kib = field("User time (seconds)"), field("System time (seconds)"), field("Maximum resident set size (kbytes)")
result = {
    "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    "load_1min_after": round(os.getloadavg()[0], 2),
    "window_secs": window,
    "user_processes": int(sys.argv[4]),
    "terminals_seen": len(snap["signals"]["terminals"]),
    "busy": snap["busy"],
    "max_rss_mib": round(rss_kib / 1024, 2),
    "cpu_secs": round(user + sys_, 3),
    "cpu_pct_of_one_core": round((user + sys_) / window * 100, 3),
}
print(json.dumps(result))
with open("bench/results/agent.json", "w") as f:
    json.dump(result, f, indent=2)
    f.write("\n")
ok = result["max_rss_mib"] < 12 and result["cpu_pct_of_one_core"] < 0.2
print("targets (RSS < 12 MiB, CPU < 0.2%):", "met" if ok else "MISSED")
PY
rm -f "$OUT" "$OUT.json" "$OUT.time"
