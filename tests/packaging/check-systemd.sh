#!/usr/bin/env bash
# Check a lightsout unit file: `systemd-analyze security` (offline: the unit is not loaded)
# must rate it at or below 2.0, and `systemd-analyze verify` must accept it. verify needs the
# ExecStart binary to exist, so run it with the unit as installed (after dpkg -i) or pass
# --no-verify. Prints the exposure score.
set -euo pipefail
unit="${1:?usage: check-systemd.sh UNIT_FILE [--no-verify]}"
mode="${2:-}"

out=$(systemd-analyze security --offline=yes --threshold=20 "$unit" 2>&1) || {
    echo "$out" | grep -v '^✓' >&2
    echo "systemd-analyze security: $unit is rated above 2.0" >&2
    exit 1
}
score=$(echo "$out" | sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p')
echo "systemd-analyze security: exposure $score (threshold 2.0)"

if [ "$mode" != "--no-verify" ]; then
    # Documentation=man:lightsout(1) is checked with man(1) when it is installed.
    man=no
    command -v man >/dev/null 2>&1 && man=yes
    systemd-analyze verify --man="$man" "$unit"
    echo "systemd-analyze verify: ok (man=$man)"
fi
