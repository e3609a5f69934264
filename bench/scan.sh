#!/usr/bin/env bash
# Scanner benchmark: all 65,535 TCP ports of a loopback target and of a namespace target,
# 100 listeners each, then a namespace target with 5% random loss both ways. Runs portolan
# (syn, connect), nmap -sS -T4, nmap -sT -T4 and RustScan side by side, checks that each
# found exactly the 100 open ports, and prints wall time, the ratio to the nmap run of the
# same kind, and peak RSS.
#
# Needs root (namespaces, raw sockets), python3, nmap, nft. RustScan is installed with
# `cargo install rustscan` if missing (for this benchmark only, never in CI).
# Test traffic stays in namespaces (198.18.0.0/15) and on loopback.
#
# Usage: bench/scan.sh            (SKIP_LOSS=1 skips the slow loss case for nmap)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

[ "$(id -u)" = 0 ] || { echo "bench/scan.sh needs root" >&2; exit 2; }
for t in python3 nmap nft ip; do
  command -v "$t" >/dev/null || { echo "bench/scan.sh needs $t" >&2; exit 2; }
done
if ! command -v rustscan >/dev/null && [ ! -x "$HOME/.cargo/bin/rustscan" ]; then
  echo "== installing RustScan (benchmark only)"
  cargo install rustscan --locked -q || echo "RustScan could not be installed; skipping it"
fi
RUSTSCAN=$(command -v rustscan || echo "$HOME/.cargo/bin/rustscan")

cargo build --release -q -p portolan
BIN=$PWD/target/release/portolan
TMP=$(mktemp -d)
NS_L=pbench-l-$$ NS_S=pbench-s-$$ NS_T=pbench-t-$$
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for n in "$NS_L" "$NS_S" "$NS_T"; do ip netns del "$n" 2>/dev/null || true; done
  rm -rf "$TMP"
}
trap cleanup EXIT

# 100 listeners spread over the port space (never in the ephemeral range's low end only).
PORTS=$(python3 -c 'print(" ".join(str(7 + i * 653) for i in range(100)))')
echo "$PORTS" | tr ' ' '\n' | sort -n >"$TMP/want"

listen() { # netns address
  ip netns exec "$1" python3 -c '
import socket, select, sys
ss = []
for p in sys.argv[2:]:
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((sys.argv[1], int(p))); s.listen(4096); ss.append(s)
while True:
    for s in select.select(ss, [], [])[0]:
        try: s.accept()[0].close()
        except OSError: pass
' "$2" $PORTS &
  PIDS+=($!)
}

ip netns add "$NS_L"; ip -n "$NS_L" link set lo up
ip netns add "$NS_S"; ip netns add "$NS_T"
ip -n "$NS_S" link set lo up; ip -n "$NS_T" link set lo up
ip link add eth0 netns "$NS_S" type veth peer eth0 netns "$NS_T"
ip -n "$NS_S" addr add 198.18.0.1/24 dev eth0; ip -n "$NS_T" addr add 198.18.0.2/24 dev eth0
ip -n "$NS_S" link set eth0 up; ip -n "$NS_T" link set eth0 up
listen "$NS_L" 127.0.0.1
listen "$NS_T" 0.0.0.0
sleep 1

# run NAME NETNS PARSER -- command...: prints seconds, RSS and accuracy; records seconds.
declare -A SECS
run() {
  local name=$1 ns=$2 parse=$3; shift 4
  /usr/bin/time -f "%e %M" -o "$TMP/time" ip netns exec "$ns" "$@" >"$TMP/out" 2>"$TMP/err" || true
  read -r secs kb <"$TMP/time"
  case $parse in
    portolan) python3 -c 'import json, sys
for l in sys.stdin:
    o = json.loads(l)
    if o.get("type") == "port" and o["state"] == "open": print(o["port"])' <"$TMP/out" ;;
    nmap) grep -E '^[0-9]+/tcp +open ' "$TMP/out" | cut -d/ -f1 ;;
    rustscan) grep -o '\[[0-9,]*\]' "$TMP/out" | tr -d '[]' | tr ',' '\n' ;;
  esac | sort -n | uniq >"$TMP/got"
  local found missed extra verdict
  found=$(wc -l <"$TMP/got")
  missed=$(comm -23 "$TMP/want" "$TMP/got" | wc -l)
  extra=$(comm -13 "$TMP/want" "$TMP/got" | wc -l)
  verdict=exact; { [ "$missed" = 0 ] && [ "$extra" = 0 ]; } || verdict="WRONG (missed $missed, false $extra)"
  SECS[$name]=$secs
  printf '  %-26s %7.2fs  %8.1f MiB  found %3d/100  %s\n' "$name" "$secs" "$(python3 -c "print($kb/1024)")" "$found" "$verdict"
}

ratio() { printf '  %-40s %.3gx\n' "$1 / $2" "$(python3 -c "print(${SECS[$1]} / max(${SECS[$2]}, 0.01))")"; }

bench_target() { # label netns address
  local label=$1 ns=$2 addr=$3
  echo "== $label: all 65,535 TCP ports, 100 open"
  run "portolan syn" "$ns" portolan -- "$BIN" scan -sS -Pn -p- --json "$addr"
  run "portolan connect" "$ns" portolan -- "$BIN" scan -sT -Pn -p- --json "$addr"
  run "nmap -sS -T4" "$ns" nmap -- nmap -n -Pn -sS -T4 -p- "$addr"
  run "nmap -sT -T4" "$ns" nmap -- nmap -n -Pn -sT -T4 -p- "$addr"
  if [ -x "$RUSTSCAN" ]; then
    run "rustscan" "$ns" rustscan -- "$RUSTSCAN" -g -a "$addr" -r 1-65535 --ulimit 20000 -b 4500 -t 1500
  fi
  ratio "portolan syn" "nmap -sS -T4"
  ratio "portolan connect" "nmap -sT -T4"
  if [ -x "$RUSTSCAN" ]; then ratio "portolan connect" "rustscan"; fi
}

bench_target "loopback (127.0.0.1)" "$NS_L" 127.0.0.1
bench_target "namespace (198.18.0.2 over veth)" "$NS_S" 198.18.0.2

echo "== namespace with 5% random loss both ways (nftables numgen), all 65,535 ports"
ip netns exec "$NS_T" nft -f - <<'EOF'
table inet loss {
  chain i { type filter hook input priority 0; numgen random mod 100 < 5 drop; }
  chain o { type filter hook output priority 0; numgen random mod 100 < 5 drop; }
}
EOF
run "portolan syn (5% loss)" "$NS_S" portolan -- "$BIN" scan -sS -Pn -p- --json 198.18.0.2
run "portolan connect (5% loss)" "$NS_S" portolan -- "$BIN" scan -sT -Pn -p- --json 198.18.0.2
if [ -x "$RUSTSCAN" ]; then
  run "rustscan (5% loss)" "$NS_S" rustscan -- "$RUSTSCAN" -g -a 198.18.0.2 -r 1-65535 --ulimit 20000 -b 4500 -t 1500
fi
if [ -z "${SKIP_LOSS:-}" ]; then
  run "nmap -sS -T4 (5% loss)" "$NS_S" nmap -- nmap -n -Pn -sS -T4 -p- 198.18.0.2
  ratio "portolan syn (5% loss)" "nmap -sS -T4 (5% loss)"
fi
echo "goals: syn <= 0.6x nmap -sS; connect <= 1.0x nmap -sT; 5% loss syn exact and <= 0.2x nmap -sS; RSS < 16 MiB"
