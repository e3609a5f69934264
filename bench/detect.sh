#!/usr/bin/env bash
# Service detection over the whole test bed (tests/testbed), portolan against nmap:
#   portolan detect (TCP ports)  vs  nmap -sV
#   portolan detect (UDP ports)  vs  nmap -sU -sV
# Prints wall time, the ratio, peak RSS, and how many services each identified
# (nmap counts only ports whose service came from a probe, not from its port table).
# Needs root, nmap, and the test bed's packages (tests/testbed/install.sh).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

[ "$(id -u)" = 0 ] || { echo "bench/detect.sh: needs root (network namespaces)" >&2; exit 2; }
command -v nmap >/dev/null || { echo "bench/detect.sh: nmap is not installed" >&2; exit 2; }

cargo build --release -q -p portolan
BIN=$PWD/target/release/portolan

TCP_PORTS=(21 2121 990 22 2222 23 2323 25 2525 465 1465 53 5353 80 8081 443 4433 110 1110 995 1995
  119 1119 139 445 1445 143 1143 993 1993 389 3389 636 1636)
UDP_PORTS=(53 5353 67 1067 69 6969 123 1123 137 161 1161)

work=$(mktemp -d)
chmod 755 "$work" # the test bed's daemons read their configs under it
cleanup() { bash tests/testbed/run.sh stop "$work/tb" >/dev/null 2>&1 || true; rm -rf "$work"; }
trap cleanup EXIT
bash tests/testbed/run.sh start "$work/tb"
# shellcheck disable=SC1091
. "$work/tb/env"
NS="ip netns exec $SCANNER_NS"

# Wall seconds and peak RSS (KiB) of a command, into $work/$name.{time,rss}.
measure() {
  local name=$1; shift
  local start end
  start=$(date +%s.%N)
  if [ -x /usr/bin/time ]; then
    /usr/bin/time -f "%M" -o "$work/$name.rss" "$@" >"$work/$name.out" 2>"$work/$name.err" || true
  else
    "$@" >"$work/$name.out" 2>"$work/$name.err" || true
    echo "?" >"$work/$name.rss"
  fi
  end=$(date +%s.%N)
  awk -v a="$start" -v b="$end" 'BEGIN { printf "%.3f\n", b - a }' >"$work/$name.time"
}

tcp_targets=(); for p in "${TCP_PORTS[@]}"; do tcp_targets+=("$TARGET_IP:$p"); done
udp_targets=(); for p in "${UDP_PORTS[@]}"; do udp_targets+=("$TARGET_IP:$p/udp"); done
tcp_list=$(IFS=,; echo "${TCP_PORTS[*]}")
udp_list=$(IFS=,; echo "${UDP_PORTS[*]}")

measure portolan-tcp $NS "$BIN" detect --json "${tcp_targets[@]}"
measure portolan-udp $NS "$BIN" detect --json "${udp_targets[@]}"
measure nmap-tcp $NS nmap -Pn -n -sV -p "$tcp_list" -oX "$work/nmap-tcp.xml" "$TARGET_IP"
measure nmap-udp $NS nmap -Pn -n -sU -sV -p "$udp_list" -oX "$work/nmap-udp.xml" "$TARGET_IP"

# Identified: portolan lines with a protocol; with a version.
p_ident() { grep -c '"protocol":"' "$work/$1.out" || true; }
p_vers() { grep -c '"version":"[^"]*","tls"' "$work/$1.out" || true; }
# nmap: services found by probing (method="probed"); with a version or product.
n_ident() { grep -o '<service [^>]*method="probed"[^>]*>' "$1" | grep -vc 'name="unknown"' || true; }
n_vers() { grep -o '<service [^>]*method="probed"[^>]*>' "$1" | grep -c ' version="' || true; }

row() { # label ports portolan nmap
  local label=$1 ports=$2 p=$3 n=$4 pxml=$5
  local pt nt ratio
  pt=$(cat "$work/$p.time"); nt=$(cat "$work/$n.time")
  ratio=$(awk -v a="$pt" -v b="$nt" 'BEGIN { printf "%.1f", b / a }')
  printf '%-4s %5s  %9.2fs %9.2fs  %7.1fx  %10s %10s  %4s/%-4s %4s/%-4s\n' \
    "$label" "$ports" "$pt" "$nt" "$ratio" "$(cat "$work/$p.rss")" "$(cat "$work/$n.rss")" \
    "$(p_ident "$p")" "$(n_ident "$pxml")" "$(p_vers "$p")" "$(n_vers "$pxml")"
}

echo
echo "service detection over the test bed ($TARGET_IP), one run each"
printf '%-4s %5s  %10s %10s  %8s  %10s %10s  %9s %9s\n' \
  "" ports portolan nmap "speedup" "rss(KiB)" "nmap rss" "found" "versions"
row tcp "${#TCP_PORTS[@]}" portolan-tcp nmap-tcp "$work/nmap-tcp.xml"
row udp "${#UDP_PORTS[@]}" portolan-udp nmap-udp "$work/nmap-udp.xml"
echo "(found and versions: portolan/nmap; nmap counts probe-identified services only)"

if [ -n "${BENCH_VERBOSE:-}" ]; then
  cat "$work/portolan-tcp.out" "$work/portolan-udp.out"
  grep -o '<port protocol=[^>]*>.*\?<service [^>]*>' "$work/nmap-tcp.xml" "$work/nmap-udp.xml" || true
fi
