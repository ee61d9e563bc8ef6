#!/usr/bin/env bash
# Short versions of the proofs of BENCHMARKS.md sections 1, 3 and 4, run by .ci/run after
# the release build. They fail on a duplicate request, a lost audit record, a crash that
# breaks the store or the audit log, per-instance reads, or a daemon that dies; timing and
# memory are printed, not asserted (the CI machine is shared).
set -euo pipefail
cd "$(dirname "$0")/.."
export LIGHTSOUT_BIN="${LIGHTSOUT_BIN:-${CARGO_TARGET_DIR:-$PWD/target}/release/lightsout}"
test -x "$LIGHTSOUT_BIN" || { echo "no release binary at $LIGHTSOUT_BIN (make release)" >&2; exit 1; }

echo "== scale (short): 1,000 instances, one pass, SDK baseline"
python3 bench/scale.py --ci --workspaces 20 --instances 50 --subscriptions 2 --steady 0
echo "== fault soak (short): 3 minutes, 1,000 instances, faults on"
python3 bench/soak.py --minutes 3 --half 60
echo "== crash safety (short): 10 SIGKILLs"
python3 bench/crash.py --kills 10
