#!/usr/bin/env bash
# Run the fuzz targets (issue 8, part 5): cargo-fuzz on the nightly toolchain.
#   fuzz/run.sh [SECONDS] [TARGET...]     default: 600 s each, all four targets, two at a time
# Seeds come from the repository (example configs, ARM fixtures, window and cron examples);
# findings land in fuzz/artifacts/TARGET/. Install once: cargo install cargo-fuzz.
set -euo pipefail
cd "$(dirname "$0")"
secs="${1:-600}"; shift || true
targets=("$@"); [ ${#targets[@]} -gt 0 ] || targets=(config window cron arm)
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/work/fuzz-target}"

mkdir -p corpus/config corpus/window corpus/cron corpus/arm
cp ../config/*.toml ../config/simulate/*.toml corpus/config/ 2>/dev/null || true
n=0; for w in "Mon-Fri 08:00-19:00" "Fri-Mon 22:00-06:00" "sat,Sunday 10:00-14:00" "daily 00:00-24:00" "Mon 8:00-9:00"; do
  n=$((n+1)); printf '%s' "$w" > "corpus/window/seed$n"; done
n=0; for c in "0 3 * * Sun" "*/15 8-18 * Jan-Mar Mon,Wed,Fri" "30 2 * * *" "0 0 1 * *" "0 9 L * *" "0 0 29 2 *"; do
  n=$((n+1)); printf '%s' "$c" > "corpus/cron/seed$n"; done
find ../tests/fixtures/azure -name '*.json' -size -64k | while read -r f; do
  cp "$f" "corpus/arm/$(printf '%s' "$f" | md5sum | cut -c1-12).json"; done

cargo +nightly fuzz build
run() { cargo +nightly fuzz run "$1" "corpus/$1" -- -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
          -print_final_stats=1 > "fuzz-$1.log" 2>&1; echo "$1: exit $? ($(grep -c 'NEW' "fuzz-$1.log" || true) new units)"; }
i=0
for t in "${targets[@]}"; do
  run "$t" &
  i=$((i+1)); if [ $((i % 2)) -eq 0 ]; then wait; fi
done
wait
