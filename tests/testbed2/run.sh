#!/usr/bin/env bash
# The second detection test bed: other implementations than tests/testbed's (ProFTPD,
# Pure-FTPd, Dropbear, Exim, Unbound, lighttpd, Python's http.server, tinyproxy, Dante,
# ntpsec, atftpd, ISC dhcpd, a vendor SNMP agent) and the services the audit judges
# (Redis, memcached, PostgreSQL, MariaDB, Mosquitto, rpcbind, rsync, TigerVNC and its
# X server), inside a network namespace.
#
#   run.sh start DIR   write configs into DIR, create the namespaces, start every daemon,
#                      wait until they listen; DIR/env then names the namespaces
#   run.sh stop DIR    stop every daemon by its recorded PID, delete the namespaces
#
# Two namespaces joined by a veth pair, no default route: the scanner side is
# 198.18.6.1, the daemons' side 198.18.6.2 and 198.18.6.3 (a second implementation of a
# protocol takes the same standard port there). Nothing listens in the root namespace.
# Every daemon runs on its standard port and on a moved one, except ntpsec and rpcbind,
# which cannot move. Needs root and what install.sh installs.
#
# State outside DIR: rpcbind's /run/rpcbind.sock and Xvnc's /tmp/.X4[12]-lock. Two of
# these beds must not run at once: start takes /run/portolan-testbed2.lock (waiting for
# up to two minutes), stop releases it. The first test bed shares nothing with this one.
set -euo pipefail

SCANNER_IP=198.18.6.1
TARGET_IP=198.18.6.2
TARGET2_IP=198.18.6.3
UNPACKED=/opt/portolan-testbed2/root
LOCK=/run/portolan-testbed2.lock

BED=testbed2
# shellcheck source=tests/testbed/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../testbed/lib.sh"

lock() {
  local dir=$1
  for _ in $(seq 240); do
    if mkdir "$LOCK" 2>/dev/null; then
      echo "$dir" >"$LOCK/owner"
      return 0
    fi
    local owner
    owner=$(cat "$LOCK/owner" 2>/dev/null || true)
    # A bed whose directory is gone (killed before stop) holds nothing any more.
    if [ -n "$owner" ] && [ ! -e "$owner/env" ]; then
      rm -rf "$LOCK"
      continue
    fi
    sleep 0.5
  done
  die "$LOCK is held by $(cat "$LOCK/owner" 2>/dev/null) for two minutes"
}

start() {
  [ -x "$UNPACKED/usr/sbin/proftpd" ] || die "run tests/testbed2/install.sh first"
  bed_dir "$1"
  local dir=$BED_DIR
  lock "$dir"
  local id="pe$$"
  bed_netns "$id" "$SCANNER_IP/24" "$TARGET_IP/24" "$TARGET2_IP/24"
  bed_env SCANNER_IP TARGET_IP TARGET2_IP

  # ---- ProFTPD on 21 and 2121
  cat >"$dir/proftpd.conf" <<CONF
ServerType standalone
ServerName "portolan test bed 2"
DefaultAddress $TARGET_IP
Port 21
UseIPv6 off
SocketBindTight on
User nobody
Group nogroup
PidFile $dir/proftpd.pid
ScoreboardFile $dir/proftpd.scoreboard
DelayTable none
WtmpLog off
UseReverseDNS off
TransferLog none
SystemLog $dir/proftpd.log
<VirtualHost $TARGET_IP>
  Port 2121
</VirtualHost>
CONF
  run proftpd "$UNPACKED/usr/sbin/proftpd" --nodaemon -c "$dir/proftpd.conf"

  # ---- Pure-FTPd on the second address: 21 and 2100
  for p in 21 2100; do
    run "pure-ftpd-$p" "$UNPACKED/usr/sbin/pure-ftpd" -S "$TARGET2_IP,$p" -E -g "$dir/pure-ftpd-$p.pid"
  done

  # ---- Dropbear on 22 and 2222
  dropbearkey -t ed25519 -f "$dir/dropbear_ed25519" >/dev/null 2>&1
  run dropbear dropbear -F -E -s -r "$dir/dropbear_ed25519" -P "$dir/dropbear.pid" \
    -p "$TARGET_IP:22" -p "$TARGET_IP:2222"

  # ---- Exim on 25 and 2525 (unpacked: it conflicts with the first bed's postfix)
  owned Debian-exim "$dir/exim-spool"
  owned Debian-exim "$dir/exim-log"
  cat >"$dir/exim.conf" <<CONF
primary_hostname = testbed2.portolan.test
daemon_smtp_ports = 25 : 2525
local_interfaces = $TARGET_IP
spool_directory = $dir/exim-spool
log_file_path = $dir/exim-log/%s.log
host_lookup =
rfc1413_hosts =
acl_smtp_rcpt = acl_check_rcpt
begin acl
acl_check_rcpt:
  deny
begin routers
begin transports
CONF
  run exim "$UNPACKED/usr/sbin/exim4" -C "$dir/exim.conf" -bdf -oP "$dir/exim.pid"

  # ---- Unbound: DNS on 53 and 5353 (TCP and UDP)
  cat >"$dir/unbound.conf" <<CONF
server:
  interface: $TARGET_IP@53
  interface: $TARGET_IP@5353
  do-daemonize: no
  username: ""
  chroot: ""
  directory: "$dir"
  pidfile: "$dir/unbound.pid"
  use-syslog: no
  logfile: ""
  do-ip6: no
  num-threads: 1
  access-control: 0.0.0.0/0 allow
  module-config: "iterator"
  msg-cache-size: 1m
  rrset-cache-size: 1m
remote-control:
  control-enable: no
CONF
  run unbound unbound -d -c "$dir/unbound.conf"

  # ---- lighttpd on 80 and 8081
  mkdir -p "$dir/www"
  echo "portolan test bed 2" >"$dir/www/index.html"
  cat >"$dir/lighttpd.conf" <<CONF
server.document-root = "$dir/www"
server.bind = "$TARGET_IP"
server.port = 80
\$SERVER["socket"] == "$TARGET_IP:8081" { }
server.pid-file = "$dir/lighttpd.pid"
server.username = "www-data"
server.groupname = "www-data"
server.modules = ( )
index-file.names = ( "index.html" )
CONF
  run lighttpd lighttpd -D -f "$dir/lighttpd.conf"

  # ---- Python's http.server (an application server) on the second address: 8000, 18000
  for p in 8000 18000; do
    run "python-http-$p" $(as nobody) /usr/bin/python3 -m http.server --bind "$TARGET2_IP" --directory "$dir/www" "$p"
  done

  # ---- tinyproxy on 8888 and 18888
  for p in 8888 18888; do
    cat >"$dir/tinyproxy-$p.conf" <<CONF
User nobody
Group nogroup
Port $p
Listen $TARGET_IP
Timeout 30
MaxClients 20
LogFile "$dir/tinyproxy-$p/log"
PidFile "$dir/tinyproxy-$p/pid"
Allow 198.18.6.0/24
ViaProxyName "tinyproxy"
CONF
    owned nobody "$dir/tinyproxy-$p"
    run "tinyproxy-$p" tinyproxy -d -c "$dir/tinyproxy-$p.conf"
  done

  # ---- Dante SOCKS on 1080 (no authentication) and 11080 (user name and password)
  for spec in "1080 none" "11080 username"; do
    set -- $spec
    cat >"$dir/danted-$1.conf" <<CONF
logoutput: $dir/danted-$1.log
internal: $TARGET_IP port = $1
external: $TARGET_IP
clientmethod: none
socksmethod: $2
user.privileged: root
user.unprivileged: nobody
client pass { from: 0.0.0.0/0 to: 0.0.0.0/0 }
socks pass { from: 0.0.0.0/0 to: 0.0.0.0/0 }
CONF
    run "danted-$1" danted -f "$dir/danted-$1.conf" -p "$dir/danted-$1.pid"
  done

  # ---- Redis on 6379 (no password) and 16379 (requirepass)
  run redis-6379 $(as redis) redis-server --bind "$TARGET_IP" --port 6379 --protected-mode no \
    --save "" --appendonly no --dir "$dir" --daemonize no --logfile "" --maxmemory 16mb
  run redis-16379 $(as redis) redis-server --bind "$TARGET_IP" --port 16379 --requirepass portolan-secret \
    --save "" --appendonly no --dir "$dir" --daemonize no --logfile "" --maxmemory 16mb

  # ---- memcached on 11211 and 21211, TCP and UDP
  for p in 11211 21211; do
    run "memcached-$p" memcached -u nobody -l "$TARGET_IP" -p "$p" -U "$p" -m 16 -c 64
  done

  # ---- PostgreSQL on 5432 (trust) and 15432 (SCRAM passwords): one initdb, two copies
  local pgbin=/usr/lib/postgresql/15/bin
  mkdir -p "$dir/pg-trust"
  chown postgres "$dir/pg-trust"
  $(as postgres) "$pgbin/initdb" -D "$dir/pg-trust" -U postgres --auth=trust --no-sync \
    >"$dir/initdb.out" 2>&1
  cp -a "$dir/pg-trust" "$dir/pg-scram"
  echo "host all all 0.0.0.0/0 trust" >"$dir/pg-trust/pg_hba.conf"
  echo "host all all 0.0.0.0/0 scram-sha-256" >"$dir/pg-scram/pg_hba.conf"
  for spec in "5432 trust" "15432 scram"; do
    set -- $spec
    owned postgres "$dir/pg-sock-$1"
    run "postgres-$1" $(as postgres) "$pgbin/postgres" -D "$dir/pg-$2" -p "$1" \
      -c listen_addresses="$TARGET_IP" -c unix_socket_directories="$dir/pg-sock-$1" \
      -c shared_buffers=1MB -c max_connections=20 -c fsync=off -c logging_collector=off
  done

  # ---- MariaDB on 3306 and its extra port 13306; a user for the scanner's network, so
  # that it gets the handshake rather than "host not allowed"
  mkdir -p "$dir/mysql"
  chown mysql "$dir/mysql"
  mariadb-install-db --no-defaults --datadir="$dir/mysql" --user=mysql \
    --auth-root-authentication-method=socket --skip-test-db >"$dir/mariadb-install.out" 2>&1
  echo "CREATE USER IF NOT EXISTS 'portolan'@'198.18.6.%' IDENTIFIED BY 'portolan-secret';" \
    >"$dir/mysql-init.sql"
  chmod 644 "$dir/mysql-init.sql"
  run mariadb mariadbd --no-defaults --datadir="$dir/mysql" --user=mysql \
    --socket="$dir/mysql/mysql.sock" --pid-file="$dir/mysql/mysql.pid" --bind-address="$TARGET_IP" \
    --port=3306 --extra-port=13306 --skip-name-resolve --max-connect-errors=1000000 --extra-max-connections=50 \
    --innodb-buffer-pool-size=8M --performance-schema=OFF --init-file="$dir/mysql-init.sql"

  # ---- Mosquitto: 1883 anonymous, 11883 with passwords only
  : >"$dir/mosquitto.passwd"
  chmod 644 "$dir/mosquitto.passwd"
  cat >"$dir/mosquitto.conf" <<CONF
per_listener_settings true
persistence false
log_dest file $dir/mosquitto.log
user mosquitto
listener 1883 $TARGET_IP
allow_anonymous true
listener 11883 $TARGET_IP
allow_anonymous false
password_file $dir/mosquitto.passwd
CONF
  touch "$dir/mosquitto.log"
  chown mosquitto "$dir/mosquitto.log"
  run mosquitto mosquitto -c "$dir/mosquitto.conf"

  # ---- rpcbind on 111 (TCP and UDP)
  mkdir -p /run/rpcbind
  run rpcbind rpcbind -f -h "$TARGET_IP"

  # ---- rsync daemon on 873 and 10873, one public module
  mkdir -p "$dir/rsync-pub"
  cat >"$dir/rsyncd.conf" <<CONF
use chroot = no
uid = nobody
gid = nogroup
[pub]
  path = $dir/rsync-pub
  comment = portolan test bed 2
  read only = yes
CONF
  for p in 873 10873; do
    run "rsync-$p" rsync --daemon --no-detach --config="$dir/rsyncd.conf" --address="$TARGET_IP" \
      --port="$p" --log-file="$dir/rsync-$p.log"
  done

  # ---- TigerVNC: RFB on 5900 (no authentication) and 15900 (VeNCrypt with passwords);
  # their X servers on 6041 (no access control) and 6042 (host access control)
  run xvnc-41 Xvnc :41 -rfbport 5900 -interface "$TARGET_IP" -SecurityTypes None -listen tcp -ac -BlacklistThreshold 1000000 \
    -geometry 320x200 -depth 16 -nolisten unix
  run xvnc-42 Xvnc :42 -rfbport 15900 -interface "$TARGET_IP" -SecurityTypes TLSPlain \
    -PlainUsers nobody -BlacklistThreshold 1000000 -listen tcp -geometry 320x200 -depth 16 -nolisten unix

  # ---- atftpd on 69 and 6969
  mkdir -p "$dir/tftp"
  for p in 69 6969; do
    run "atftpd-$p" "$UNPACKED/usr/sbin/atftpd" --daemon --no-fork --user nobody.nogroup --port "$p" \
      --bind-address "$TARGET_IP" --logfile "$dir/atftpd-$p.log" "$dir/tftp"
  done

  # ---- ISC dhcpd on 67 and 1067
  cat >"$dir/dhcpd.conf" <<CONF
authoritative;
default-lease-time 600;
subnet 198.18.6.0 netmask 255.255.255.0 {
  range 198.18.6.100 198.18.6.200;
}
CONF
  for p in 67 1067; do
    : >"$dir/dhcpd-$p.leases"
    run "dhcpd-$p" dhcpd -f -4 -q -p "$p" -cf "$dir/dhcpd.conf" -lf "$dir/dhcpd-$p.leases" \
      -pf "$dir/dhcpd-$p.pid" "${id}b"
  done

  # ---- ntpsec on 123 (unpacked: it conflicts with the first bed's chrony). No time
  # source and the clock discipline off: it answers, it never touches the clock.
  cat >"$dir/ntpsec.conf" <<CONF
interface ignore wildcard
interface listen $TARGET_IP
# ntpsec's default restriction refuses mode 6 queries; a line for the bed's network lifts it.
restrict 198.18.6.0 mask 255.255.255.0 nomodify nopeer
disable ntp
disable kernel
CONF
  run ntpsec "$UNPACKED/usr/sbin/ntpd" -n -c "$dir/ntpsec.conf" -p "$dir/ntpsec.pid" -u nobody

  # ---- a vendor's SNMP agent (Net-SNMP announcing Juniper's sysObjectID) on 161, 1161
  cat >"$dir/snmpd.conf" <<CONF
rocommunity public default
sysobjectid .1.3.6.1.4.1.2636.1.1.1.2.29
sysLocation portolan test bed 2
CONF
  run snmpd snmpd -f -C -c "$dir/snmpd.conf" -Lf "$dir/snmpd.log" \
    "udp:$TARGET_IP:161" "udp:$TARGET_IP:1161"

  # Wait until every TCP port listens.
  bed_wait tcp 200 21 2121 2100 22 2222 25 2525 53 5353 80 8081 8000 18000 8888 18888 1080 11080 6379 16379 11211 21211 5432 15432 3306 13306 1883 11883 111 873 10873 5900 15900 6041 6042
  bed_wait udp 100 53 5353 67 1067 69 6969 111 123 161 1161 11211 21211
}

stop() {
  local dir=$1
  [ -f "$dir/env" ] || die "$dir/env: no test bed recorded there"
  dir=$(cd "$dir" && pwd)
  bed_kill "$dir"
  rm -f /tmp/.X41-lock /tmp/.X42-lock
  if [ "$(cat "$LOCK/owner" 2>/dev/null)" = "$dir" ]; then
    rm -rf "$LOCK"
  fi
}

bed_main "$@"
