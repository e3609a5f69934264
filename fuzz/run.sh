#!/usr/bin/env bash
# Runs every fuzz target for a bounded time, starting from the small corpus kept in
# fuzz/corpus/TARGET (copied to a scratch directory, so the repository stays as it is).
# A crash fails the run and leaves its input in fuzz/artifacts/TARGET/.
#   fuzz/run.sh [SECONDS]        (default 10 per target)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
secs=${1:-10}
export RUSTC_BOOTSTRAP=1
targets=$(cargo fuzz list)
cargo fuzz build -s none --dev >/dev/null
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
for t in $targets; do
  mkdir -p "$scratch/$t"
  if [ -d "corpus/$t" ]; then cp -r "corpus/$t/." "$scratch/$t/"; fi
  out=$(cargo fuzz run "$t" -s none --dev "$scratch/$t" -- -max_total_time="$secs" -rss_limit_mb=2048 \
    -max_len=65536 2>&1) || { echo "$out" | tail -40; echo "fuzz target $t FAILED"; exit 1; }
  runs=$(echo "$out" | grep -oE '^Done [0-9]+ runs' | grep -oE '[0-9]+' || echo "?")
  echo "fuzz $t: $runs runs in ${secs}s, no crash"
done
