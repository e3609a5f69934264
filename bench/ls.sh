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
sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(1000 10000 50000)
# shellcheck source=bench/lib.sh
. bench/lib.sh
bench_init ls.sh hyperfine ss lsof python3

cpu() { # mean CPU seconds (user + system) of command N
  python3 -c "import json,sys; r=json.load(open(sys.argv[1]))['results'][int(sys.argv[2])]; print(r['user']+r['system'])" "$1" "$2"
}

printf '%-7s %-22s %10s %10s %10s %10s\n' sockets command "mean ms" "cpu ms" "RSS MiB" ratio
for n in "${sizes[@]}"; do
  fill_namespace "pi-bench-$$-$n" "$n"
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

  drop_namespace
done
