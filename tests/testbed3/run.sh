#!/usr/bin/env bash
# The third detection test bed: the implementations that the first two beds lack
# (Apache httpd, Caddy, BIND, Knot DNS, PowerDNS, ...), inside a network namespace.
#
#   run.sh start DIR   write configs into DIR, create the namespaces, start every daemon,
#                      wait until they listen; DIR/env then names the namespaces
#   run.sh stop DIR    stop every daemon by its recorded PID, delete the namespaces
#
# Two namespaces joined by a veth pair, no default route: the scanner side is
# 198.18.7.1, the daemons' side 198.18.7.2, 198.18.7.3 and 198.18.7.4 (a second or third
# implementation of a protocol takes the same standard port there). Nothing listens in
# the root namespace. Every daemon runs on its standard port and on a moved one, with a
# configuration written here; none reads the host's. Needs root and what install.sh
# installs.
set -euo pipefail

SCANNER_IP=198.18.7.1
TARGET_IP=198.18.7.2
TARGET2_IP=198.18.7.3
TARGET3_IP=198.18.7.4
UNPACKED=/opt/portolan-testbed3/root
BED=testbed3
# shellcheck source=tests/testbed/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../testbed/lib.sh"

start() {
  bed_dir "$1"
  local dir=$BED_DIR
  local id="pf$$"
  bed_netns "$id" "$SCANNER_IP/24" "$TARGET_IP/24" "$TARGET2_IP/24" "$TARGET3_IP/24"
  {
    echo "SCANNER_NS=$SNS"
    echo "TARGET_NS=$TNS"
    echo "SCANNER_IP=$SCANNER_IP"
    echo "TARGET_IP=$TARGET_IP"
    echo "TARGET2_IP=$TARGET2_IP"
    echo "TARGET3_IP=$TARGET3_IP"
  } >"$dir/env"

  # ---- Apache httpd on 80 and 8080
  mkdir -p "$dir/www" "$dir/apache"
  echo "portolan test bed 3" >"$dir/www/index.html"
  cat >"$dir/apache.conf" <<CONF
ServerRoot /usr/lib/apache2
ServerName testbed3.portolan.test
PidFile $dir/apache/httpd.pid
Mutex file:$dir/apache default
DefaultRuntimeDir $dir/apache
ErrorLog $dir/apache/error.log
LoadModule mpm_event_module modules/mod_mpm_event.so
LoadModule authz_core_module modules/mod_authz_core.so
LoadModule dir_module modules/mod_dir.so
User www-data
Group www-data
StartServers 1
ServerLimit 1
ThreadsPerChild 8
MaxRequestWorkers 8
Listen $TARGET_IP:80
Listen $TARGET_IP:8080
DocumentRoot $dir/www
<Directory $dir/www>
  Require all granted
</Directory>
CONF
  run apache /usr/sbin/apache2 -f "$dir/apache.conf" -DFOREGROUND

  # ---- Caddy on the second address: 80 and 8080 (no automatic HTTPS, no admin API)
  mkdir -p "$dir/caddy"
  cat >"$dir/Caddyfile" <<CONF
{
  admin off
  auto_https off
  storage file_system $dir/caddy
}
http://$TARGET2_IP:80, http://$TARGET2_IP:8080 {
  bind $TARGET2_IP
  respond "portolan test bed 3"
}
CONF
  run caddy env HOME="$dir/caddy" XDG_DATA_HOME="$dir/caddy" XDG_CONFIG_HOME="$dir/caddy" \
    caddy run --config "$dir/Caddyfile" --adapter caddyfile

  # ---- BIND on 53 and 5353 (TCP and UDP), authoritative only
  mkdir -p "$dir/bind"
  chown bind "$dir/bind"
  cat >"$dir/named.conf" <<CONF
options {
  directory "$dir/bind";
  pid-file "$dir/bind/named.pid";
  listen-on port 53 { $TARGET_IP; };
  listen-on port 5353 { $TARGET_IP; };
  listen-on-v6 { none; };
  recursion no;
  dnssec-validation no;
  session-keyfile none;
  managed-keys-directory "$dir/bind";
};
controls { };
CONF
  run named /usr/sbin/named -g -u bind -c "$dir/named.conf"

  # ---- Knot DNS on the second address: 53 and 5353
  mkdir -p "$dir/knot"
  chown knot "$dir/knot"
  cat >"$dir/knot.conf" <<CONF
server:
  rundir: "$dir/knot"
  user: knot:knot
  listen: [ $TARGET2_IP@53, $TARGET2_IP@5353 ]
database:
  storage: "$dir/knot"
log:
  - target: stderr
    any: info
CONF
  run knotd /usr/sbin/knotd -c "$dir/knot.conf"

  # ---- PowerDNS (authoritative, no zones) on the third address: 53 and 5353, one
  # server per port
  for p in 53 5353; do
    mkdir -p "$dir/pdns-$p"
    : >"$dir/pdns-$p/named.conf"
    cat >"$dir/pdns-$p/pdns.conf" <<CONF
launch=bind
bind-config=$dir/pdns-$p/named.conf
local-address=$TARGET3_IP
local-port=$p
socket-dir=$dir/pdns-$p
daemon=no
guardian=no
setuid=pdns
setgid=pdns
CONF
    run "pdns-$p" /usr/sbin/pdns_server --config-dir="$dir/pdns-$p"
  done

  bed_wait tcp 300 80 8080 53 5353
  bed_wait udp 100 53 5353
}

stop() {
  bed_kill "$1"
}

bed_main "$@"
