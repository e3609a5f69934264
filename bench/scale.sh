#!/usr/bin/env bash
# Many-hosts benchmark: a target namespace answers for every address of 198.19.0.0/16 (a
# local route on its loopback; listeners on 0.0.0.0:22 and 0.0.0.0:80, every other port
# closed), reached from a scanner namespace through a veth. Scans a /20 and the /16 with 5
# ports (22,23,80,443,8080) with portolan -sS (with and without discovery), nmap -sS -T4
# and masscan, and prints for each: wall time, probes per second, open ports found out of
# the truth (2 per host), and peak RSS.
#
# Needs root, python3, ip, nmap, masscan (apt-get install nmap masscan). Test traffic
# stays in the namespaces (198.18.0.0/15). Each run is bounded (timeout 300 s).
#
# Usage: bench/scale.sh            (SIZES="20 16" picks the prefix lengths;
#                                   PORTOLAN_BIN=path runs that binary instead of building)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=bench/lib.sh
source bench/lib.sh

if [ -n "${PORTOLAN_BIN:-}" ]; then
  [ "$(id -u)" = 0 ] || { echo "bench/scale: needs root (network namespaces)" >&2; exit 2; }
  for t in python3 ip nmap masscan; do
    command -v "$t" >/dev/null || { echo "bench/scale: needs $t" >&2; exit 2; }
  done
  bin=$PORTOLAN_BIN
  tmp=$(mktemp -d)
else
  bench_init scale python3 ip nmap masscan
fi
NS_S=pscale-s-$$
NS_T=pscale-t-$$
PORTS=22,23,80,443,8080
NPORTS=5
cleanup_scale() {
  [ -n "${listener:-}" ] && kill "$listener" 2>/dev/null || true
  ip netns del "$NS_S" 2>/dev/null || true
  ip netns del "$NS_T" 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup_scale EXIT

ip netns add "$NS_S"
ip netns add "$NS_T"
ip -n "$NS_S" link set lo up
ip -n "$NS_T" link set lo up
ip link add eth0 netns "$NS_S" type veth peer eth0 netns "$NS_T"
ip -n "$NS_S" addr add 198.18.0.1/24 dev eth0
ip -n "$NS_T" addr add 198.18.0.2/24 dev eth0
ip -n "$NS_S" link set eth0 up
ip -n "$NS_T" link set eth0 up
ip -n "$NS_T" route add local 198.19.0.0/16 dev lo
ip -n "$NS_S" route add 198.19.0.0/16 via 198.18.0.2
ip netns exec "$NS_T" sysctl -qw net.ipv4.tcp_max_syn_backlog=65536 net.core.somaxconn=65536
ip netns exec "$NS_T" python3 -c '
import socket, select
ss = []
for p in (22, 80):
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", p)); s.listen(4096); ss.append(s)
while True:
    for s in select.select(ss, [], [])[0]:
        try:
            c, _ = s.accept(); c.close()
        except OSError:
            pass
' &
listener=$!
sleep 1

# run NAME OUTFILE CMD...: prints "seconds KiB" of the command (bounded to 300 s).
run() {
  local out=$1
  shift
  /usr/bin/time -f "%e %M" -o "$tmp/time" timeout 300 ip netns exec "$NS_S" "$@" >"$out" 2>/dev/null || true
  tail -n 1 "$tmp/time"
}

printf '%-6s %-26s %9s %12s %16s %9s\n' block tool seconds probes/s "open/truth" "RSS MiB"
for len in ${SIZES:-20 16}; do
  cidr=198.19.0.0/$len
  hosts=$((1 << (32 - len)))
  probes=$((hosts * NPORTS))
  truth=$((hosts * 2))
  row() { # tool "seconds KiB" open
    local s k
    read -r s k <<<"$2"
    printf '%-6s %-26s %9s %12s %16s %9s\n' "/$len" "$1" "$s" \
      "$(python3 -c "print(round($probes / max($s, 0.001)))")" "$3/$truth" \
      "$(python3 -c "print(round($k / 1024, 1))")"
  }
  r=$(run "$tmp/p.jsonl" "$bin" scan -sS -Pn --json -p "$PORTS" "$cidr")
  row "portolan -sS -Pn" "$r" "$(grep -c '"state":"open"' "$tmp/p.jsonl" || true)"
  r=$(run "$tmp/p.jsonl" "$bin" scan -sS --json -p "$PORTS" "$cidr")
  row "portolan -sS" "$r" "$(grep -c '"state":"open"' "$tmp/p.jsonl" || true)"
  r=$(run "$tmp/n.txt" nmap -sS -T4 -n -Pn -p "$PORTS" -oG - "$cidr")
  row "nmap -sS -T4 -Pn" "$r" "$(grep -o '[0-9]*/open/' "$tmp/n.txt" | wc -l)"
  r=$(run "$tmp/m.txt" masscan -p "$PORTS" --rate 500000 --wait 3 --interface eth0 --router-ip 198.18.0.2 -oL - "$cidr")
  row "masscan 500kpps --wait 3" "$r" "$(grep -c '^open' "$tmp/m.txt" || true)"
done
