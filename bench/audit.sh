#!/usr/bin/env bash
# portolan audit (inventory + evaluation) against `ss -tulnp`, the listing CIS tells
# people to read by eye, on the same sockets.
#
# For each size N (default 1000 10000) it creates a network namespace holding N TCP
# listeners and N UDP sockets on all interfaces (crates/portolan-inventory/tests/sockets.py
# --bulk), then times, inside the namespace:
#   portolan audit --json                      (the baseline)
#   portolan audit --profile mail-server --json
#   ss -tulnp
# and prints mean times, the ratio to ss, peak RSS, and the number of findings. The goal
# is inventory plus evaluation under 1 s for 10,000 listeners.
# Needs root, python3, hyperfine and ss. Usage: bench/audit.sh [N...]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(1000 10000)
# shellcheck source=bench/lib.sh
. bench/lib.sh
bench_init audit.sh hyperfine ss python3

printf '%-8s %-36s %10s %10s %8s %9s\n' sockets command "mean ms" "RSS MiB" ratio findings
for n in "${sizes[@]}"; do
  fill_namespace "pa-bench-$$-$n" "$n" --addr 0.0.0.0 --base 20000
  fb=$(ip netns exec "$ns" "$bin" audit --json --fail-on never | python3 -c "import json,sys; print(len(json.load(sys.stdin)['findings']))")
  fm=$(ip netns exec "$ns" "$bin" audit --profile mail-server --json --fail-on never | python3 -c "import json,sys; print(len(json.load(sys.stdin)['findings']))")
  runs=10; [ "$n" -ge 10000 ] && runs=5
  hyperfine -N --warmup 1 --runs "$runs" --export-json "$tmp/h.json" --style none \
    "ip netns exec $ns $bin audit --json --fail-on never" \
    "ip netns exec $ns $bin audit --profile mail-server --json --fail-on never" \
    "ip netns exec $ns ss -tulnp" >/dev/null
  b=$(mean "$tmp/h.json" 0); m=$(mean "$tmp/h.json" 1); s=$(mean "$tmp/h.json" 2)
  rb=$(peak_kib ip netns exec "$ns" "$bin" audit --json)
  rm_=$(peak_kib ip netns exec "$ns" "$bin" audit --profile mail-server --json)
  rs=$(peak_kib ip netns exec "$ns" ss -tulnp)
  row() { python3 -c "import sys; print('%-8s %-36s %10.1f %10.1f %8s %9s' % (sys.argv[1], sys.argv[2], float(sys.argv[3])*1000, int(sys.argv[4])/1024, sys.argv[5], sys.argv[6]))" "$@"; }
  row "$((2 * n))" "portolan audit" "$b" "$rb" "$(python3 -c "print('%.2f' % ($b/$s))")" "$fb"
  row "$((2 * n))" "portolan audit --profile mail-server" "$m" "$rm_" "$(python3 -c "print('%.2f' % ($m/$s))")" "$fm"
  row "$((2 * n))" "ss -tulnp" "$s" "$rs" "1" "-"
  drop_namespace
done
