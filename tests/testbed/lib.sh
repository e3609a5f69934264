# Helpers shared by the test beds' run.sh scripts (tests/testbed, tests/testbed2,
# tests/testbed3), sourced by each. BED names the bed in messages; the functions set
# BED_DIR (the bed's state directory), SNS and TNS (the scanner's and the daemons'
# network namespaces) and T (the words that run a command in the daemons' namespace).

die() { echo "${BED:-testbed}: $*" >&2; exit 1; }

# install_quietly PACKAGE...: apt-get installs them under a policy-rc.d that exits 101,
# so no postinst starts its daemon, then puts back the policy-rc.d that was there (or
# none). Used by the beds' install.sh scripts.
install_quietly() {
  local policy=/usr/sbin/policy-rc.d rc=0
  INSTALL_SAVED=""
  if [ -e "$policy" ]; then
    INSTALL_SAVED=$(mktemp)
    cp -p "$policy" "$INSTALL_SAVED"
  fi
  install_restore() {
    if [ -n "$INSTALL_SAVED" ]; then mv "$INSTALL_SAVED" /usr/sbin/policy-rc.d; else rm -f /usr/sbin/policy-rc.d; fi
  }
  trap install_restore EXIT
  printf '#!/bin/sh\nexit 101\n' >"$policy"
  chmod 755 "$policy"
  apt-get install -y -qq --no-install-recommends "$@" >/dev/null || rc=$?
  install_restore
  trap - EXIT
  return "$rc"
}

# bed_dir DIR: creates DIR, sets BED_DIR to its absolute path. Daemons that drop
# privileges read their files there: DIR and its parents must be open to them.
bed_dir() {
  mkdir -p "$1"
  BED_DIR=$(cd "$1" && pwd)
  chmod 755 "$BED_DIR"
  local up=$BED_DIR
  while up=$(dirname "$up") && [ "$up" != / ]; do
    [ $(( $(stat -c '0%a' "$up") & 1 )) = 1 ] || die "$up is closed to other users; daemons could not read their configs under it"
  done
  : >"$BED_DIR/pids"
}

# bed_netns ID SCANNER_CIDR TARGET_CIDR...: namespaces IDs and IDt joined by a veth pair
# (IDa, IDb), no default route; the first address on the scanner's side, the others on
# the daemons'.
bed_netns() {
  local id=$1 scanner=$2; shift 2
  SNS="${id}s"
  TNS="${id}t"
  T="ip netns exec $TNS"
  ip netns add "$SNS"
  ip netns add "$TNS"
  ip -n "$SNS" link set lo up
  ip -n "$TNS" link set lo up
  ip link add "${id}a" netns "$SNS" type veth peer "${id}b" netns "$TNS"
  ip -n "$SNS" addr add "$scanner" dev "${id}a"
  local a
  for a in "$@"; do ip -n "$TNS" addr add "$a" dev "${id}b"; done
  ip -n "$SNS" link set "${id}a" up
  ip -n "$TNS" link set "${id}b" up
}

# bed_env NAME...: BED_DIR/env, which the tests read: the two namespaces of bed_netns
# and the value of each variable NAME.
bed_env() {
  local n
  {
    echo "SCANNER_NS=$SNS"
    echo "TARGET_NS=$TNS"
    for n in "$@"; do echo "$n=${!n}"; done
  } >"$BED_DIR/env"
}

# run NAME COMMAND...: starts COMMAND in the daemons' namespace, output in
# BED_DIR/NAME.out, and records its PID. Each daemon in a session of its own: some
# signal their whole process group when they stop, which must never reach whoever
# started the bed.
run() {
  local name=$1; shift
  $T setsid "$@" >"$BED_DIR/$name.out" 2>&1 </dev/null &
  echo "$! $name" >>"$BED_DIR/pids"
}

# as USER: the words that run a command as USER (setpriv execs: the PID stays).
as() { echo setpriv --reuid="$1" --regid="$(id -g "$1")" --init-groups; }

# owned USER DIRECTORY: a directory that USER may write.
owned() {
  mkdir -p "$2"
  chown "$1" "$2"
}

# bed_wait tcp|udp TENTHS PORTS...: waits up to TENTHS tenths of a second until every
# port listens in the daemons' namespace; prints the missing ones on stderr after that
# (TCP only: a UDP socket that is missing shows in the test's result).
bed_wait() {
  local proto=$1 tries=$2; shift 2
  local flag=-Hltn missing=""
  [ "$proto" = udp ] && flag=-Hlun
  for _ in $(seq "$tries"); do
    missing=""
    local listening p
    listening=$($T ss $flag | awk '{print $4}' | sed 's/.*://' | sort -u)
    for p in "$@"; do
      grep -qx "$p" <<<"$listening" || missing="$missing $p"
    done
    [ -z "$missing" ] && return 0
    sleep 0.1
  done
  if [ "$proto" = tcp ]; then
    echo "$BED: not listening after $((tries / 10)) s:$missing" >&2
  fi
}

# bed_wait_at TENTHS ADDRESS:PORT...: waits up to TENTHS tenths of a second until each
# TCP ADDRESS:PORT listens in the daemons' namespace (as `ss` prints it): on an address
# shared by several daemons, one up must not hide another that is not. Prints the
# missing ones on stderr after that.
bed_wait_at() {
  local tries=$1 missing="" a listening
  shift
  for _ in $(seq "$tries"); do
    missing=""
    listening=$($T ss -Hltn | awk '{print $4}')
    for a in "$@"; do
      grep -qxF "$a" <<<"$listening" || missing="$missing $a"
    done
    [ -z "$missing" ] && return 0
    sleep 0.1
  done
  echo "$BED: not listening after $((tries / 10)) s:$missing" >&2
}

# bed_kill DIR: stops every daemon recorded in DIR/pids (TERM, then KILL to whatever
# still runs in the namespace: inetd's children, postfix's services, nginx's workers)
# and deletes the namespaces named in DIR/env.
bed_kill() {
  local dir=$1
  [ -f "$dir/env" ] || die "$dir/env: no test bed recorded there"
  # shellcheck disable=SC1091
  . "$dir/env"
  if [ -f "$dir/pids" ]; then
    local pid name
    while read -r pid name; do
      kill -TERM "$pid" 2>/dev/null || true
    done <"$dir/pids"
    sleep 0.3
    for pid in $(ip netns pids "$TARGET_NS" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null || true; done
    while read -r pid name; do
      kill -KILL "$pid" 2>/dev/null || true
    done <"$dir/pids"
  fi
  ip netns del "$SCANNER_NS" 2>/dev/null || true
  ip netns del "$TARGET_NS" 2>/dev/null || true
}

# bed_main start|stop DIR: the scripts' command line; calls start DIR or stop DIR.
bed_main() {
  case "${1:-}" in
    start) [ -n "${2:-}" ] || die "usage: run.sh start DIR"; start "$2" ;;
    stop) [ -n "${2:-}" ] || die "usage: run.sh stop DIR"; stop "$2" ;;
    *) die "usage: run.sh start|stop DIR" ;;
  esac
}
