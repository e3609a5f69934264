#!/usr/bin/env bash
# portolan serve: one uncached collection at N listeners, through the real binary, beside
# `ss -tulnp` on the same sockets.
#
# For each size N (default 10000 100000) it creates a network namespace holding N sockets
# (N/2 TCP listeners and N/2 UDP sockets, crates/portolan-inventory/tests/sockets.py
# --bulk, spread over several processes so the open-file limit is never hit), starts
#   portolan serve --netns NS --listen 127.0.0.1:PORT --min-interval 1ms
# on loopback, and scrapes /metrics RUNS times (default 5), each one an uncached
# collection. Between the scrapes it times `ss -tulnp` and `portolan ls --json` in the
# same namespace, so the three figures share the machine's load. It prints, per size:
#   collect ms   the collection time the exporter reports
#                (portolan_collection_duration_seconds: inventory, owners and services),
#                median over the runs
#   scrape ms    the scrape's wall time (collection + encoding + transfer), median
#   ls ms        `portolan ls --json --netns NS`, a whole process, median
#   ss ms        `ip netns exec NS ss -tulnp`, median
#   collect/ss   the ratio of the two (the figure to compare across loads)
#   expo MB      the exposition's size
#   RSS, peak    the exporter's RSS after the scrapes and its peak (VmHWM)
# Goals: collect under 100 ms at 10k and under 1 s at 100k, RSS under 40 MiB at 100k.
# With BASE=/path/to/another/portolan, the same figures for that binary follow, on the
# same sockets in the same run (before/after comparisons).
# Needs root, python3 and curl. Usage: bench/serve.sh [N...]  (RUNS=5, BASE=...)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(10000 100000)
runs=${RUNS:-5}
# shellcheck source=bench/lib.sh
. bench/lib.sh
bench_init serve.sh python3 curl ss

serve_pid=""
stop_serve() {
  if [ -n "$serve_pid" ]; then
    kill -TERM "$serve_pid" 2>/dev/null || true
    wait "$serve_pid" 2>/dev/null || true
    serve_pid=""
  fi
}
trap 'stop_serve; drop_namespace; rm -rf "$tmp"' EXIT

kib() { awk -v k="$2" '$1 == k":" { print $2 }' "/proc/$1/status"; }
median() { python3 -c "import statistics,sys; print(statistics.median(float(x) for x in sys.argv[1:]))" "$@"; }
wall() { # seconds a command takes, its output discarded
  local a b
  a=$(date +%s%N)
  "$@" >/dev/null 2>&1
  b=$(date +%s%N)
  python3 -c "import sys; print((int(sys.argv[2]) - int(sys.argv[1])) / 1e9)" "$a" "$b"
}

# measure LABEL BINARY N: one exporter of BINARY over the namespace, RUNS scrapes.
measure() {
  local label=$1 exe=$2 n=$3 half=$(($3 / 2))
  local port
  port=$(python3 -c "import socket; s=socket.socket(); s.bind(('127.0.0.1',0)); print(s.getsockname()[1])")
  "$exe" serve --netns "$ns" --listen "127.0.0.1:$port" --min-interval 1ms 2>"$tmp/serve.err" &
  serve_pid=$!
  for _ in $(seq 100); do grep -q listening "$tmp/serve.err" 2>/dev/null && break; sleep 0.1; done
  grep -q listening "$tmp/serve.err" || { echo "bench/serve.sh: the exporter did not start" >&2; cat "$tmp/serve.err" >&2; exit 1; }

  local collect=() scrape=() ls=() ss=() t c got
  for _ in $(seq "$runs"); do
    t=$(curl -sS -o "$tmp/m.txt" -w '%{time_total}' "http://127.0.0.1:$port/metrics")
    got=$(grep -c '^portolan_listener_info{' "$tmp/m.txt" || true)
    [ "$got" -ge "$half" ] || { echo "bench/serve.sh: $got listener series, want at least $half" >&2; exit 1; }
    c=$(awk '/^portolan_collection_duration_seconds / { print $2 }' "$tmp/m.txt")
    collect+=("$c"); scrape+=("$t")
    ls+=("$(wall "$exe" ls --json --netns "$ns")")
    ss+=("$(wall ip netns exec "$ns" ss -tulnp)")
  done
  local size rss hwm
  size=$(stat -c %s "$tmp/m.txt")
  rss=$(kib "$serve_pid" VmRSS); hwm=$(kib "$serve_pid" VmHWM)
  stop_serve
  python3 -c "import sys; a=sys.argv; print('%-9s %-9s %11.1f %10.1f %10.1f %10.1f %10.3f %8.1f %8.1f %8.1f' % (a[1], a[2], float(a[3])*1000, float(a[4])*1000, float(a[5])*1000, float(a[6])*1000, float(a[3])/float(a[6]), int(a[7])/1e6, int(a[8])/1024, int(a[9])/1024))" \
    "$n" "$label" "$(median "${collect[@]}")" "$(median "${scrape[@]}")" "$(median "${ls[@]}")" \
    "$(median "${ss[@]}")" "$size" "$rss" "$hwm"
}

echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-9s %-9s %11s %10s %10s %10s %10s %8s %8s %8s\n' listeners binary "collect ms" "scrape ms" "ls ms" "ss ms" collect/ss "expo MB" "RSS MiB" "peak MiB"
for n in "${sizes[@]}"; do
  fill_namespace "ps-bench-$$-$n" "$((n / 2))"
  measure portolan "$bin" "$n"
  [ -z "${BASE:-}" ] || measure base "$BASE" "$n"
  drop_namespace
done
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
