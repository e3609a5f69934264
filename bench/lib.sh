# Shared by the bench scripts that fill a namespace with sockets (ls.sh, audit.sh).
# Source it after `cd` to the repo root; `bench_init NAME TOOL...` first.
# shellcheck shell=bash

# Checks root and the tools, builds portolan (unless PORTOLAN_BIN names a binary), and sets $bin, $script, $tmp, $ns, $holder,
# with a trap that removes the namespace and the temporary folder on exit.
bench_init() {
  bench_name=$1
  shift
  [ "$(id -u)" = 0 ] || { echo "bench/$bench_name: needs root (network namespaces)" >&2; exit 2; }
  for t in "$@"; do
    command -v "$t" >/dev/null || { echo "bench/$bench_name: needs $t" >&2; exit 2; }
  done
  # PORTOLAN_BIN=/path runs another build (an older one, for before/after figures).
  if [ -n "${PORTOLAN_BIN:-}" ]; then
    bin=$PORTOLAN_BIN
  else
    cargo build --release -q -p portolan
    bin=$PWD/target/release/portolan
  fi
  script=$PWD/crates/portolan-inventory/tests/sockets.py
  tmp=$(mktemp -d)
  ns=""
  holder=""
  trap 'drop_namespace; rm -rf "$tmp"' EXIT
}

# fill_namespace NAME N [sockets.py options...]: a namespace NAME holding N TCP listeners
# and N UDP sockets, ready when it returns.
fill_namespace() {
  ns=$1
  local n=$2
  shift 2
  ip netns add "$ns"
  ip -n "$ns" link set lo up
  ip netns exec "$ns" python3 "$script" --ready "$tmp/ready" --bulk "$n" "$@" &
  holder=$!
  for _ in $(seq 600); do [ -e "$tmp/ready" ] && break; sleep 0.2; done
  [ -e "$tmp/ready" ] || { echo "bench/$bench_name: sockets not ready" >&2; exit 1; }
  rm -f "$tmp/ready"
}

# Stops the socket holder and deletes the namespace (nothing when there is none).
drop_namespace() {
  if [ -n "$holder" ]; then
    kill "$holder" 2>/dev/null || true
    wait "$holder" 2>/dev/null || true
    holder=""
  fi
  if [ -n "$ns" ]; then
    for p in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$p" 2>/dev/null || true; done
    ip netns del "$ns" 2>/dev/null || true
    ns=""
  fi
}

# Peak RSS in KiB of a command, its output discarded. GNU time writes a line before the
# figure when the command exits non-zero, so the figure is the last line.
peak_kib() {
  /usr/bin/time -f %M -o "$tmp/rss" "$@" >/dev/null 2>&1 || true
  tail -n 1 "$tmp/rss"
}

# Mean seconds of command N in a hyperfine JSON export.
mean() {
  python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['results'][int(sys.argv[2])]['mean'])" "$1" "$2"
}
