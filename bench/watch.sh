#!/usr/bin/env bash
# portolan watch: CPU used over SECONDS (default 60) at a 1 s interval, on a namespace
# holding N sockets (default 1000: N/2 TCP listeners and N/2 UDP sockets, from
# bench/lib.sh). CPU time is utime + stime of the watch process from /proc/PID/stat.
# Budget: under 1% of one core. Needs root and python3. Usage: bench/watch.sh [N] [SECONDS]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
n=${1:-1000}
secs=${2:-60}
# shellcheck source=bench/lib.sh
. bench/lib.sh
bench_init watch.sh python3
fill_namespace "pw-bench-$$" $((n / 2))
got=$("$bin" ls --netns "$ns" --format csv | tail -n +2 | wc -l)
[ "$got" -eq "$n" ] || { echo "bench/watch.sh: portolan saw $got sockets, want $n" >&2; exit 1; }

ticks() { # utime + stime of PID, in clock ticks (fields 14 and 15, after the comm)
  sed 's/^.*) //' "/proc/$1/stat" | awk '{print $12 + $13}'
}
"$bin" watch --netns "$ns" --interval 1s >"$tmp/events" 2>"$tmp/err" &
watch=$!
# The first inventory (the starting state) is not part of the steady cost.
for _ in $(seq 300); do grep -q watching "$tmp/err" && break; sleep 0.1; done
before=$(ticks "$watch")
sleep "$secs"
after=$(ticks "$watch")
kill -TERM "$watch"
wait "$watch"
hz=$(getconf CLK_TCK)
python3 - "$before" "$after" "$hz" "$secs" "$n" <<'PY'
import sys
b, a, hz, secs, n = (float(x) for x in sys.argv[1:])
cpu = (a - b) / hz
print(f"watch, {int(n)} sockets, 1 s interval: {cpu:.2f} s CPU over {secs:.0f} s = {100 * cpu / secs:.2f}% of a core (budget 1%)")
PY
echo "events: $(wc -l <"$tmp/events")"
