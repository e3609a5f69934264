#!/usr/bin/env bash
# The largest target set: a /8. In a fresh network namespace every address of
# 127.0.0.0/8 answers on the loopback (closed ports with a RST), so a whole /8 can be
# scanned without a packet leaving the namespace. Runs, each bounded by time:
#
#   1. -sS -Pn with 10 ports over 127.0.0.0/8 (167,772,160 probes) for $PART seconds,
#      then SIGTERM: RSS and bytes written each second (the bytes grow with the hosts
#      finished, the RSS must not);
#   2. the same for $PART seconds with --resume FILE (each block's output held until it
#      is done; FILE lists the blocks finished out of order): RSS and FILE's size;
#   3. -sS -Pn with one port (8080, a listener on 0.0.0.0:8080, so every host has it
#      open) over the whole /8 (16,777,216 probes), to the end (at most $FULL seconds):
#      wall time, probes per second, peak RSS, and the counts of open records and hosts
#      (both must be 2^24).
#
# Needs root, ip, python3, mawk or awk. Nothing is sent outside the namespace.
#
# Usage: bench/wide.sh     (PART=180 FULL=600 set the bounds in seconds;
#                           RUNS="part resume full" picks the runs;
#                           PORTOLAN_BIN=path runs that binary instead of building)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=bench/lib.sh
source bench/lib.sh

bench_init wide ip python3 awk
PART=${PART:-180}
FULL=${FULL:-600}
PORTS10=22,23,25,80,110,143,443,445,3306,8080
ns=pwide-$$
ip netns add "$ns"
ip -n "$ns" link set lo up
ip netns exec "$ns" sysctl -qw net.ipv4.tcp_max_syn_backlog=65536 net.core.somaxconn=65536
# Every host has 8080 open: the kernel answers the SYNs of the listen socket's queue.
ip netns exec "$ns" python3 -c '
import socket, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", 8080)); s.listen(4096)
time.sleep(3600)
' &
holder=$!
sleep 1

# sample PID SECONDS [FILE]: one line a second while PID lives (at most SECONDS, then
# SIGTERM: a background job of a script has SIGINT ignored): seconds, VmRSS and VmHWM in KiB, bytes written, FILE's size.
sample() {
  local pid=$1 secs=$2 file=${3:-}
  for t in $(seq "$secs"); do
    sleep 1
    [ -r "/proc/$pid/status" ] || break
    local rss hwm w size=""
    rss=$(awk '/^VmRSS/{print $2}' "/proc/$pid/status" 2>/dev/null) || break
    hwm=$(awk '/^VmHWM/{print $2}' "/proc/$pid/status" 2>/dev/null) || break
    w=$(awk '/^wchar/{print $2}' "/proc/$pid/io" 2>/dev/null) || break
    [ -n "$file" ] && size=$(stat -c %s "$file" 2>/dev/null || echo 0)
    printf '%5s %9s %9s %14s %s\n' "$t" "$rss" "$hwm" "$w" "$size"
  done
  kill -TERM "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

for run in ${RUNS:-part resume full}; do
  echo "== $run ($(uptime | sed 's/.*load/load/'))"
  case $run in
  part)
    echo "    s  VmRSS_kB  VmHWM_kB  bytes_written"
    ip netns exec "$ns" nice -n 10 "$bin" scan -sS -Pn -p "$PORTS10" --json 127.0.0.0/8 \
      >/dev/null 2>"$tmp/err" &
    sample $! "$PART"
    ;;
  resume)
    echo "    s  VmRSS_kB  VmHWM_kB  bytes_written  resume_file_bytes"
    rm -f "$tmp/state" "$tmp/out.jsonl"
    ip netns exec "$ns" nice -n 10 "$bin" scan -sS -Pn -p "$PORTS10" --json \
      --resume "$tmp/state" 127.0.0.0/8 >>"$tmp/out.jsonl" 2>"$tmp/err" &
    sample $! "$PART" "$tmp/state"
    python3 -c 'import json,sys; s=json.load(open(sys.argv[1])); print("    resume file: blocks %d, blocks_done %d, done_after %d" % (s["blocks"], s["blocks_done"], len(s["done_after"])))' "$tmp/state"
    rm -f "$tmp/out.jsonl"
    ;;
  full)
    start=$(date +%s.%N)
    /usr/bin/time -f "%e s wall, %U s user, %S s sys, peak RSS %M KiB" -o "$tmp/time" \
      timeout "$FULL" ip netns exec "$ns" nice -n 10 "$bin" scan -sS -Pn -p 8080 --json \
      127.0.0.0/8 2>"$tmp/err" |
      awk '/"type":"port"/ && /"state":"open"/ {o++} /"type":"host"/ {h++}
           /"type":"summary"/ {s=$0} END {print "    open records " o ", host records " h; print "    " s; print h+0 >"/dev/stderr"}' 2>"$tmp/hosts" ||
      true # timeout's 124 when the bound was reached (then there is no summary)
    end=$(date +%s.%N)
    echo "    $(tail -n 1 "$tmp/time")"
    # One port: a probe a host (hosts started; those in flight at a timeout count too).
    python3 -c "print('    %.0f probes/s' % ($(cat "$tmp/hosts") / ($end - $start)))"
    ;;
  esac
  [ -s "$tmp/err" ] && sed 's/^/    stderr: /' "$tmp/err" | tail -n 3
done
echo "== end ($(uptime | sed 's/.*load/load/'))"
