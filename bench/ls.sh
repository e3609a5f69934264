#!/usr/bin/env bash
# portolan ls against ss -tulnp and lsof -nP -i on the same sockets.
#
# For each size N (default 1000 10000 50000) it creates a network namespace holding N TCP
# listeners and N UDP sockets (tests/sockets.py --bulk, several processes so the open-file
# limit is never hit), then times, all three run inside the namespace with `ip netns exec`:
#   portolan ls     ss -tulnp     lsof -nP -i
# and prints mean times, the ratios portolan/ss and portolan/lsof, and the peak RSS of each
# (from /usr/bin/time). It also times `portolan ls --netns NS` (no `ip netns exec`).
# Needs root, python3, hyperfine, ss and lsof. Usage: bench/ls.sh [N...]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
[ "$(id -u)" = 0 ] || { echo "bench/ls.sh: needs root (network namespaces)" >&2; exit 2; }
for t in hyperfine ss lsof python3; do
  command -v "$t" >/dev/null || { echo "bench/ls.sh: needs $t" >&2; exit 2; }
done

sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(1000 10000 50000)
cargo build --release -q -p portolan
bin=$PWD/target/release/portolan
script=$PWD/crates/portolan-inventory/tests/sockets.py
tmp=$(mktemp -d)
ns=""
holder=""
cleanup() {
  [ -n "$holder" ] && kill "$holder" 2>/dev/null && wait "$holder" 2>/dev/null || true
  if [ -n "$ns" ]; then
    for p in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$p" 2>/dev/null || true; done
    ip netns del "$ns" 2>/dev/null || true
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT

peak_kib() { # peak RSS in KiB of a command, output discarded
  /usr/bin/time -f %M -o "$tmp/rss" "$@" >/dev/null 2>&1 || true
  cat "$tmp/rss"
}

mean() { # mean seconds of command N in a hyperfine JSON export
  python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['results'][int(sys.argv[2])]['mean'])" "$1" "$2"
}

cpu() { # mean CPU seconds (user + system) of command N
  python3 -c "import json,sys; r=json.load(open(sys.argv[1]))['results'][int(sys.argv[2])]; print(r['user']+r['system'])" "$1" "$2"
}

printf '%-7s %-22s %10s %10s %10s %10s\n' sockets command "mean ms" "cpu ms" "RSS MiB" ratio
for n in "${sizes[@]}"; do
  ns="pi-bench-$$-$n"
  ip netns add "$ns"
  ip -n "$ns" link set lo up
  ip netns exec "$ns" python3 "$script" --ready "$tmp/ready" --bulk "$n" &
  holder=$!
  for _ in $(seq 600); do [ -e "$tmp/ready" ] && break; sleep 0.2; done
  [ -e "$tmp/ready" ] || { echo "bench/ls.sh: sockets not ready" >&2; exit 1; }
  rm -f "$tmp/ready"
  got=$(ip netns exec "$ns" "$bin" ls --format csv | tail -n +2 | wc -l)
  [ "$got" -eq $((2 * n)) ] || { echo "bench/ls.sh: portolan saw $got sockets, want $((2 * n))" >&2; exit 1; }

  runs=10; [ "$n" -ge 10000 ] && runs=5; [ "$n" -ge 50000 ] && runs=3
  hyperfine -N --warmup 1 --runs "$runs" --export-json "$tmp/h.json" --style none \
    "ip netns exec $ns $bin ls" \
    "ip netns exec $ns ss -tulnp" \
    "ip netns exec $ns lsof -nP -i" \
    "$bin ls --netns $ns" >/dev/null
  p=$(mean "$tmp/h.json" 0); s=$(mean "$tmp/h.json" 1); l=$(mean "$tmp/h.json" 2)
  d=$(mean "$tmp/h.json" 3)
  rp=$(peak_kib ip netns exec "$ns" "$bin" ls)
  rs=$(peak_kib ip netns exec "$ns" ss -tulnp)
  rl=$(peak_kib ip netns exec "$ns" lsof -nP -i)
  rd=$(peak_kib "$bin" ls --netns "$ns")
  row() { python3 -c "import sys; print('%-7s %-22s %10.1f %10.1f %10.1f %10s' % (sys.argv[1], sys.argv[2], float(sys.argv[3])*1000, float(sys.argv[4])*1000, int(sys.argv[5])/1024, sys.argv[6]))" "$@"; }
  row "$((2 * n))" "portolan ls" "$p" "$(cpu "$tmp/h.json" 0)" "$rp" "1"
  row "$((2 * n))" "ss -tulnp" "$s" "$(cpu "$tmp/h.json" 1)" "$rs" "$(python3 -c "print('%.3f' % ($p/$s))")"
  row "$((2 * n))" "lsof -nP -i" "$l" "$(cpu "$tmp/h.json" 2)" "$rl" "$(python3 -c "print('%.3f' % ($p/$l))")"
  row "$((2 * n))" "portolan ls --netns" "$d" "$(cpu "$tmp/h.json" 3)" "$rd" "-"
  echo "         portolan/ss = $(python3 -c "print('%.3f' % ($p/$s))")x  portolan/lsof = $(python3 -c "print('%.3f' % ($p/$l))")x"

  kill "$holder" 2>/dev/null || true
  wait "$holder" 2>/dev/null || true
  holder=""
  for p2 in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$p2" 2>/dev/null || true; done
  ip netns del "$ns"
  ns=""
done
