#!/usr/bin/env bash
# Check the on-instance agent's unit (deploy/agent/lightsout-agent.service):
# `systemd-analyze security` (offline) must rate it at or below 2.5, and `systemd-analyze
# verify` must accept it. The agent runs as root (it reads the user's Jupyter runtime files),
# which alone costs about 0.6 of the score (User=, PrivateUsers=); the daemon's unit, which
# runs as its own user, is held to 2.0 by check-systemd.sh.
# verify needs the ExecStart binary to exist: a copy of the unit whose ExecStart points at
# BINARY (default /bin/true) is verified. Prints the exposure score.
set -euo pipefail
cd "$(dirname "$0")/../.."
unit=deploy/agent/lightsout-agent.service
binary="${1:-/bin/true}"

out=$(systemd-analyze security --offline=yes --threshold=25 "$unit" 2>&1) || {
    echo "$out" | grep -v '^✓' >&2
    echo "systemd-analyze security: $unit is rated above 2.5" >&2
    exit 1
}
score=$(echo "$out" | sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p')
echo "systemd-analyze security: $unit exposure $score (threshold 2.5)"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
sed "s|^ExecStart=/usr/local/bin/lightsout |ExecStart=$binary |" "$unit" > "$tmp/lightsout-agent.service"
grep -q "^ExecStart=$binary " "$tmp/lightsout-agent.service"
systemd-analyze verify --man=no "$tmp/lightsout-agent.service"
echo "systemd-analyze verify: $unit ok"
