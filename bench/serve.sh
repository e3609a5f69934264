#!/usr/bin/env bash
# portolan serve: one uncached collection at N listeners, through the real binary.
#
# For each size N (default 10000; 100000 too with `bench/serve.sh 10000 100000`) it
# creates a network namespace holding N sockets (N/2 TCP listeners and N/2 UDP sockets,
# crates/portolan-inventory/tests/sockets.py --bulk), starts
#   portolan serve --netns NS --listen 127.0.0.1:PORT --min-interval 1ms
# on loopback, and scrapes /metrics RUNS times (default 5), each one an uncached
# collection (the minimum interval has passed). It prints, per size, the collection time
# the exporter reports (portolan_collection_duration_seconds: inventory, owners and
# services), the scrape's wall time (collection + encoding + transfer), the exposition's
# size, and the exporter's RSS after the scrapes and its peak (VmHWM). Goals: under 100 ms
# at 10k, under 1 s at 100k, RSS under 40 MiB.
# Needs root, python3 and curl. Usage: bench/serve.sh [N...]  (RUNS=5)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(10000)
runs=${RUNS:-5}
# shellcheck source=bench/lib.sh
. bench/lib.sh
bench_init serve.sh python3 curl

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

printf '%-9s %14s %14s %14s %11s %9s %10s\n' listeners "collect ms" "(median)" "scrape ms" "expo MB" "RSS MiB" "peak MiB"
for n in "${sizes[@]}"; do
  half=$((n / 2))
  fill_namespace "ps-bench-$$-$n" "$half"
  port=$(python3 -c "import socket; s=socket.socket(); s.bind(('127.0.0.1',0)); print(s.getsockname()[1])")
  "$bin" serve --netns "$ns" --listen "127.0.0.1:$port" --min-interval 1ms 2>"$tmp/serve.err" &
  serve_pid=$!
  for _ in $(seq 100); do grep -q listening "$tmp/serve.err" 2>/dev/null && break; sleep 0.1; done
  grep -q listening "$tmp/serve.err" || { echo "bench/serve.sh: the exporter did not start" >&2; cat "$tmp/serve.err" >&2; exit 1; }

  collect=(); scrape=()
  for i in $(seq "$runs"); do
    sleep 0.05 # past the 1 ms minimum interval: every scrape collects
    t=$(curl -sS -o "$tmp/m.txt" -w '%{time_total}' "http://127.0.0.1:$port/metrics")
    got=$(grep -c '^portolan_listener_info{' "$tmp/m.txt" || true)
    [ "$got" -ge "$half" ] || { echo "bench/serve.sh: $got listener series, want at least $half" >&2; exit 1; }
    c=$(awk '/^portolan_collection_duration_seconds / { print $2 }' "$tmp/m.txt")
    collect+=("$c"); scrape+=("$t")
    [ "$i" = 1 ] && first=$c
  done
  size=$(stat -c %s "$tmp/m.txt")
  rss=$(kib "$serve_pid" VmRSS); hwm=$(kib "$serve_pid" VmHWM)
  python3 -c "import sys; a=sys.argv; print('%-9s %14.1f %14.1f %14.1f %11.1f %9.1f %10.1f' % (a[1], float(a[2])*1000, float(a[3])*1000, float(a[4])*1000, int(a[5])/1e6, int(a[6])/1024, int(a[7])/1024))" \
    "$n" "$first" "$(median "${collect[@]}")" "$(median "${scrape[@]}")" "$size" "$rss" "$hwm"
  stop_serve
  drop_namespace
done
