#!/usr/bin/env bash
# The fourth detection test bed: container APIs and X servers (Docker Engine, Podman's
# Docker-compatible API, Xvfb with and without access control), inside a network
# namespace.
#
#   run.sh start DIR   write configs into DIR, create the namespaces, start every daemon,
#                      wait until they listen; DIR/env then names the namespaces
#   run.sh stop DIR    stop every daemon by its recorded PID, delete the namespaces
#
# Two namespaces joined by a veth pair, no default route: the scanner side is
# 198.18.8.1, the daemons' side 198.18.8.2 and 198.18.8.3 (Podman takes Docker's
# standard port there). Nothing listens in the root namespace. Every daemon runs on its
# standard port and on a moved one; none reads the host's configuration or state, and
# none needs the network. Needs root and what install.sh installs.
set -euo pipefail

SCANNER_IP=198.18.8.1
TARGET_IP=198.18.8.2
TARGET2_IP=198.18.8.3
BED=testbed4
# shellcheck source=tests/testbed/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../testbed/lib.sh"

start() {
  bed_dir "$1"
  local dir=$BED_DIR
  local id="pg$$"
  bed_netns "$id" "$SCANNER_IP/24" "$TARGET_IP/24" "$TARGET2_IP/24"
  bed_env SCANNER_IP TARGET_IP TARGET2_IP

  # ---- Docker Engine on 2375 and 12375, no authentication (plain TCP). No iptables
  # rules, no bridge: it touches no firewall table and no interface. Its containerd
  # (which it starts itself), state and sockets all live in DIR.
  local dk=$dir/docker
  mkdir -p "$dk"/{data,exec}
  echo '{}' >"$dk/daemon.json"
  # `ip netns exec` mounts a /sys of the namespace's own, without the cgroup hierarchies
  # dockerd needs ("Devices cgroup isn't mounted"): it enters the network namespace
  # only. It writes /etc/docker/key.json and /run/docker/plugins whatever it is told:
  # those get empty directories in a private mount namespace, the host's stay untouched.
  local t=$T
  T="nsenter --net=/run/netns/$TNS unshare -m --propagation private"
  run dockerd sh -c 'mount -t tmpfs tmpfs /run && mkdir -p /etc/docker && mount -t tmpfs tmpfs /etc/docker && exec "$@"' dockerd \
    /usr/sbin/dockerd --host "tcp://$TARGET_IP:2375" --host "tcp://$TARGET_IP:12375" \
    --host "unix://$dk/docker.sock" --iptables=false --ip6tables=false --bridge=none \
    --storage-driver vfs --data-root "$dk/data" --exec-root "$dk/exec" \
    --pidfile "$dk/docker.pid" --config-file "$dk/daemon.json" --tls=false
  T=$t

  # ---- Docker Engine over TLS on 2376 and 12376, with client certificates required
  # (--tlsverify): a daemon of its own, since TLS settings hold for all of a daemon's
  # TCP hosts. A CA of the bed's signs its certificate; no client gets one.
  local dt=$dir/docker-tls
  mkdir -p "$dt"/{data,exec}
  echo '{}' >"$dt/daemon.json"
  openssl req -x509 -newkey rsa:2048 -nodes -days 30 -keyout "$dt/ca-key.pem" -out "$dt/ca.pem" \
    -subj "/CN=portolan test bed 4 CA" 2>/dev/null
  openssl req -newkey rsa:2048 -nodes -keyout "$dt/key.pem" -out "$dt/req.pem" \
    -subj "/CN=testbed4.portolan.test" 2>/dev/null
  printf 'subjectAltName=IP:%s\nextendedKeyUsage=serverAuth\n' "$TARGET_IP" >"$dt/ext.cnf"
  openssl x509 -req -in "$dt/req.pem" -CA "$dt/ca.pem" -CAkey "$dt/ca-key.pem" -CAcreateserial \
    -days 30 -extfile "$dt/ext.cnf" -out "$dt/cert.pem" 2>/dev/null
  T="nsenter --net=/run/netns/$TNS unshare -m --propagation private"
  run dockerd-tls sh -c 'mount -t tmpfs tmpfs /run && mkdir -p /etc/docker && mount -t tmpfs tmpfs /etc/docker && exec "$@"' dockerd \
    /usr/sbin/dockerd --host "tcp://$TARGET_IP:2376" --host "tcp://$TARGET_IP:12376" \
    --host "unix://$dt/docker.sock" --iptables=false --ip6tables=false --bridge=none \
    --storage-driver vfs --data-root "$dt/data" --exec-root "$dt/exec" \
    --pidfile "$dt/docker.pid" --config-file "$dt/daemon.json" \
    --tlsverify --tlscacert "$dt/ca.pem" --tlscert "$dt/cert.pem" --tlskey "$dt/key.pem"
  T=$t

  # ---- Podman's Docker-compatible API on the second address: 2375 and 12375, one
  # service per port, each with its own storage in DIR
  for p in 2375 12375; do
    local pd=$dir/podman-$p
    mkdir -p "$pd"/{root,run,tmp}
    run "podman-$p" env XDG_RUNTIME_DIR="$pd/run" CONTAINERS_CONF=/dev/null \
      /usr/bin/podman --root "$pd/root" --runroot "$pd/run" --tmpdir "$pd/tmp" \
      --storage-driver vfs --events-backend file --cgroup-manager cgroupfs \
      system service --time=0 "tcp:$TARGET2_IP:$p"
  done

  # ---- Xvfb: display :0 (6000) and :100 (6100) with access control off (-ac), :1
  # (6001) and :101 (6101) with it on. Each gets a /tmp of its own (a private mount
  # namespace) for its lock file and socket, and the host's /tmp/.X11-unix stays
  # untouched.
  for n in 0 100 1 101; do
    local ac=""
    case $n in 0 | 100) ac=-ac ;; esac
    run "xvfb-$n" unshare -m --propagation private sh -c \
      "mount -t tmpfs tmpfs /tmp && exec /usr/bin/Xvfb :$n -listen tcp -nolisten unix $ac -screen 0 640x480x24"
  done

  # Docker and Podman share their ports, on two addresses: wait for each address and
  # port, not the port alone.
  bed_wait_at 600 "$TARGET_IP:2375" "$TARGET_IP:12375" "$TARGET_IP:2376" "$TARGET_IP:12376" "$TARGET2_IP:2375" "$TARGET2_IP:12375" \
    "0.0.0.0:6000" "0.0.0.0:6100" "0.0.0.0:6001" "0.0.0.0:6101"
}

stop() {
  bed_kill "$1"
}

bed_main "$@"
