#!/usr/bin/env bash
# Service detection over the four test beds (tests/testbed, tests/testbed2,
# tests/testbed3 and tests/testbed4), portolan against nmap on the same ports:
#   portolan detect (TCP ports)  vs  nmap -sV
#   portolan detect (UDP ports)  vs  nmap -sU -sV
# Prints, per bed and in total, the wall time of each and the ratio, and how many ports
# each named a protocol, a product and a version for (nmap counts only what came from a
# probe, method="probed", not its port-table guesses). All beds together must stay at
# least 10x faster than nmap; the script exits 1 when they are not.
# Each nmap run is bounded (NMAP_LIMIT seconds, default 900); a run cut short counts
# with the limit as its time.
# BEDS (default "1 2 3 4") picks the beds to run; "all beds" is then those.
# Needs root, nmap, and the beds' packages (tests/testbed*/install.sh).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

[ "$(id -u)" = 0 ] || { echo "bench/detect.sh: needs root (network namespaces)" >&2; exit 2; }
command -v nmap >/dev/null || { echo "bench/detect.sh: nmap is not installed" >&2; exit 2; }
NMAP_LIMIT=${NMAP_LIMIT:-900}
BEDS=${BEDS:-1 2 3 4}
on() { [[ " $BEDS " == *" $1 "* ]]; }

cargo build --release -q -p portolan
BIN=$PWD/target/release/portolan

BED1_TCP="21 2121 990 22 2222 23 2323 25 2525 465 1465 53 5353 80 8081 443 4433 110 1110 995 1995 119 1119 139 445 1445 143 1143 993 1993 389 3389 636 1636"
BED1_UDP="53 5353 67 1067 69 6969 123 1123 137 161 1161"
BED2_TCP="21 2121 22 2222 25 2525 53 5353 80 8081 8888 18888 1080 11080 6379 16379 11211 21211 5432 15432 3306 13306 1883 11883 111 873 10873 5900 15900 6041 6042"
BED2_TCP2="21 2100 8000 18000"
BED2_UDP="53 5353 67 1067 69 6969 111 123 161 1161 11211 21211"
BED3_TCP="80 8080 53 5353 3128 13128 2379 12379 3389 13389 5672 10672 389 1389"
BED3_TCP2="80 8080 53 5353 119 1119 25 2525 143 1143 110 1110 3128 13128"
BED3_TCP3="53 5353 25 2525 143 1143 110 1110"
BED3_UDP="53 5353"
BED4_TCP="2375 12375 2376 12376 6000 6100 6001 6101"
BED4_TCP2="2375 12375"

work=$(mktemp -d)
chmod 755 "$work" # the beds' daemons read their configs under it
cleanup() {
  bash tests/testbed/run.sh stop "$work/tb1" >/dev/null 2>&1 || true
  bash tests/testbed2/run.sh stop "$work/tb2" >/dev/null 2>&1 || true
  bash tests/testbed3/run.sh stop "$work/tb3" >/dev/null 2>&1 || true
  bash tests/testbed4/run.sh stop "$work/tb4" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
on 1 && bash tests/testbed/run.sh start "$work/tb1"
on 2 && bash tests/testbed2/run.sh start "$work/tb2"
on 3 && bash tests/testbed3/run.sh start "$work/tb3"
on 4 && bash tests/testbed4/run.sh start "$work/tb4"
envof() { (. "$work/$1/env"; eval echo "\$$2"); }

# Wall seconds of a command, into $work/$name.time; output into $work/$name.out.
measure() {
  local name=$1; shift
  local start end
  start=$(date +%s.%N)
  "$@" >"$work/$name.out" 2>"$work/$name.err" || true
  end=$(date +%s.%N)
  awk -v a="$start" -v b="$end" 'BEGIN { printf "%.3f\n", b - a }' >"$work/$name.time"
}

targets() { # ip proto ports...
  local ip=$1 proto=$2; shift 2
  for p in "$@"; do
    if [ "$proto" = udp ]; then echo "$ip:$p/udp"; else echo "$ip:$p"; fi
  done
}

# portolan: JSON lines whose detection names a protocol / product / version.
p_count() { # file field
  python3 -c '
import json, sys
n = 0
for line in open(sys.argv[1]):
    try:
        d = json.loads(line).get("detected") or {}
    except ValueError:
        continue
    n += bool(d.get(sys.argv[2]))
print(n)' "$1" "$2"
}
# nmap: probe-identified services (method="probed"), with a product / version.
n_count() { # file what
  local f=$1
  [ -s "$f" ] || { echo 0; return; }
  case $2 in
    protocol) grep -o '<service [^>]*method="probed"[^>]*>' "$f" | grep -vc 'name="unknown"' || true ;;
    product) grep -o '<service [^>]*method="probed"[^>]*>' "$f" | grep -c ' product="' || true ;;
    version) grep -o '<service [^>]*method="probed"[^>]*>' "$f" | grep -c ' version="' || true ;;
  esac
}

run_bed() { # label dir ip tcp-ports udp-ports
  local label=$1 dir=$2 ip=$3 tcp=$4 udp=$5
  local ns
  ns="ip netns exec $(envof "$dir" SCANNER_NS)"
  # shellcheck disable=SC2086
  measure "$label-p-tcp" $ns "$BIN" detect --json $(targets "$ip" tcp $tcp)
  # shellcheck disable=SC2086
  measure "$label-n-tcp" timeout "$NMAP_LIMIT" $ns nmap -Pn -n -sV -p "$(echo $tcp | tr ' ' ,)" \
    -oX "$work/$label-n-tcp.xml" "$ip"
  if [ -n "$udp" ]; then
    # shellcheck disable=SC2086
    measure "$label-p-udp" $ns "$BIN" detect --json $(targets "$ip" udp $udp)
    # shellcheck disable=SC2086
    measure "$label-n-udp" timeout "$NMAP_LIMIT" $ns nmap -Pn -n -sU -sV -p "$(echo $udp | tr ' ' ,)" \
      -oX "$work/$label-n-udp.xml" "$ip"
  else
    for k in p-udp n-udp; do echo 0 >"$work/$label-$k.time"; : >"$work/$label-$k.out"; done
  fi
}

labels=()
if on 1; then
  run_bed bed1 tb1 "$(envof tb1 TARGET_IP)" "$BED1_TCP" "$BED1_UDP"
  labels+=(bed1)
fi
if on 2; then
  run_bed bed2 tb2 "$(envof tb2 TARGET_IP)" "$BED2_TCP" "$BED2_UDP"
  run_bed bed2b tb2 "$(envof tb2 TARGET2_IP)" "$BED2_TCP2" ""
  labels+=(bed2 bed2b)
fi
if on 3; then
  run_bed bed3 tb3 "$(envof tb3 TARGET_IP)" "$BED3_TCP" "$BED3_UDP"
  run_bed bed3b tb3 "$(envof tb3 TARGET2_IP)" "$BED3_TCP2" "$BED3_UDP"
  run_bed bed3c tb3 "$(envof tb3 TARGET3_IP)" "$BED3_TCP3" "$BED3_UDP"
  labels+=(bed3 bed3b bed3c)
fi
if on 4; then
  run_bed bed4 tb4 "$(envof tb4 TARGET_IP)" "$BED4_TCP" ""
  run_bed bed4b tb4 "$(envof tb4 TARGET2_IP)" "$BED4_TCP2" ""
  labels+=(bed4 bed4b)
fi

sum() { awk '{ s += $1 } END { printf "%.2f", s }' "$@"; }
words() { echo $# ; }

report() { # title ports labels...
  local title=$1 ports=$2; shift 2
  local pt nt pp pr pv np nr nv
  pt=$(for l in "$@"; do cat "$work/$l-p-tcp.time" "$work/$l-p-udp.time"; done | sum)
  nt=$(for l in "$@"; do cat "$work/$l-n-tcp.time" "$work/$l-n-udp.time"; done | sum)
  pp=0; pr=0; pv=0; np=0; nr=0; nv=0
  for l in "$@"; do
    for k in tcp udp; do
      pp=$((pp + $(p_count "$work/$l-p-$k.out" protocol)))
      pr=$((pr + $(p_count "$work/$l-p-$k.out" product)))
      pv=$((pv + $(p_count "$work/$l-p-$k.out" version)))
      np=$((np + $(n_count "$work/$l-n-$k.xml" protocol)))
      nr=$((nr + $(n_count "$work/$l-n-$k.xml" product)))
      nv=$((nv + $(n_count "$work/$l-n-$k.xml" version)))
    done
  done
  printf '%-12s %5s  %9ss %9ss  %7sx   %3s/%-3s %3s/%-3s %3s/%-3s\n' "$title" "$ports" "$pt" "$nt" \
    "$(awk -v a="$pt" -v b="$nt" 'BEGIN { printf "%.1f", b / a }')" "$pp" "$np" "$pr" "$nr" "$pv" "$nv"
  echo "$pt $nt" >"$work/last.ratio"
}

n1=$(( $(words $BED1_TCP) + $(words $BED1_UDP) ))
n2=$(( $(words $BED2_TCP) + $(words $BED2_UDP) + $(words $BED2_TCP2) ))
n3=$(( $(words $BED3_TCP) + $(words $BED3_TCP2) + $(words $BED3_TCP3) + 3 * $(words $BED3_UDP) ))
n4=$(( $(words $BED4_TCP) + $(words $BED4_TCP2) ))
total=0
for b in 1 2 3 4; do on $b && total=$((total + $(eval echo "\$n$b"))); done
echo
echo "service detection, portolan detect against nmap -sV and nmap -sU -sV, one run each"
printf '%-12s %5s  %10s %10s  %8s   %-7s %-7s %-7s\n' "" ports portolan nmap speedup protocol product version
on 1 && report "bed 1" "$n1" bed1
on 2 && report "bed 2" "$n2" bed2 bed2b
on 3 && report "bed 3" "$n3" bed3 bed3b bed3c
on 4 && report "bed 4" "$n4" bed4 bed4b
report "all beds" "$total" "${labels[@]}"
echo "(protocol, product, version: ports named by portolan/nmap; nmap counts probe results only;"
echo " an nmap run cut at ${NMAP_LIMIT}s counts ${NMAP_LIMIT}s)"
for f in "$work"/*-n-*.err; do
  grep -q . "$f" && { echo "nmap stderr ($(basename "$f")):"; head -3 "$f"; }
done || true

if [ -n "${BENCH_VERBOSE:-}" ]; then
  cat "$work"/*-p-*.out
  grep -ho '<port protocol=[^>]*>.*\?<service [^>]*>' "$work"/*-n-*.xml || true
fi

read -r pt nt <"$work/last.ratio"
awk -v a="$pt" -v b="$nt" 'BEGIN { exit !(b >= 10 * a) }' || {
  echo "bench/detect.sh: portolan is less than 10x faster than nmap over all beds" >&2
  exit 1
}
