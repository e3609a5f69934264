#!/usr/bin/env bash
# A cold `portolan lookup 443`, as a whole process, against `getent services 443`:
# hyperfine times both, and the script prints the ratio (the goal is at most 1.5x) and
# the peak RSS of each. Run it on a quiet machine: `bench/lookup.sh [RUNS]`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
runs=${1:-500}
out=bench/out
mkdir -p "$out"

command -v hyperfine >/dev/null || { echo "bench/lookup.sh: needs hyperfine" >&2; exit 2; }
cargo build --release --quiet -p portolan
bin=target/release/portolan

# Both answer the same question from the same /etc/services.
"$bin" lookup 443 >/dev/null
getent services 443 >/dev/null

hyperfine --shell=none --warmup 50 --runs "$runs" --style basic \
  --export-csv "$out/lookup.csv" \
  -n portolan "$bin lookup 443" \
  -n getent "getent services 443" >&2

# CSV columns: command,mean,stddev,median,user,system,min,max (seconds).
awk -F, '
  NR > 1 { median[$1] = $4; mean[$1] = $2 }
  END {
    printf "median: portolan %.0f us, getent %.0f us\n", median["portolan"] * 1e6, median["getent"] * 1e6
    printf "ratio portolan/getent (median): %.2fx (goal <= 1.5x)\n", median["portolan"] / median["getent"]
    printf "ratio portolan/getent (mean):   %.2fx\n", mean["portolan"] / mean["getent"]
  }' "$out/lookup.csv"

# Peak resident memory, from the kernel's accounting of each child.
rss() {
  if [ -x /usr/bin/time ]; then
    /usr/bin/time -f %M "$@" 2>&1 >/dev/null | tail -n 1
  else
    echo "?"
  fi
}
printf "peak RSS: portolan %s KiB, getent %s KiB\n" "$(rss "$bin" lookup 443)" "$(rss getent services 443)"
