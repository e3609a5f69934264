#!/usr/bin/env bash
# The third detection test bed: the implementations that the first two beds lack
# (Apache httpd, Caddy, BIND, Knot DNS, PowerDNS, Courier, 389 Directory Server, ...),
# inside a network namespace.
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
UNPACKED=/opt/portolan-testbed3
BED=testbed3
# shellcheck source=tests/testbed/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../testbed/lib.sh"

start() {
  bed_dir "$1"
  local dir=$BED_DIR
  local id="pf$$"
  bed_netns "$id" "$SCANNER_IP/24" "$TARGET_IP/24" "$TARGET2_IP/24" "$TARGET3_IP/24"
  bed_env SCANNER_IP TARGET_IP TARGET2_IP TARGET3_IP

  openssl req -x509 -newkey rsa:2048 -nodes -days 30 -keyout "$dir/key.pem" \
    -out "$dir/cert.pem" -subj "/CN=testbed3.portolan.test/O=portolan test bed" 2>/dev/null
  chmod 644 "$dir/key.pem" "$dir/cert.pem"

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

  # ---- Squid on 3128 and 13128, open to the bed's network
  owned proxy "$dir/squid"
  cat >"$dir/squid.conf" <<CONF
http_port $TARGET_IP:3128
http_port $TARGET_IP:13128
acl bed src 198.18.7.0/24
http_access allow bed
http_access deny all
cache_effective_user proxy
cache_effective_group proxy
pid_filename $dir/squid/squid.pid
cache_log $dir/squid/cache.log
access_log none
netdb_filename none
cache deny all
cache_mem 8 MB
coredump_dir $dir/squid
CONF
  run squid /usr/sbin/squid -N -f "$dir/squid.conf"

  # ---- etcd: its client API on 2379 and 12379
  owned nobody "$dir/etcd"
  run etcd $(as nobody) /usr/bin/etcd --name bed3 --data-dir "$dir/etcd/data" \
    --listen-client-urls "http://$TARGET_IP:2379,http://$TARGET_IP:12379" \
    --advertise-client-urls "http://$TARGET_IP:2379" \
    --listen-peer-urls "http://$TARGET_IP:2380" --initial-advertise-peer-urls "http://$TARGET_IP:2380" \
    --initial-cluster "bed3=http://$TARGET_IP:2380"

  # ---- xrdp on 3389 and 13389, one server per port. xrdp keeps its PID file in the
  # compiled-in /run/xrdp: each gets a /run of its own (a private mount namespace).
  for p in 3389 13389; do
    cat >"$dir/xrdp-$p.ini" <<CONF
[Globals]
port=tcp://$TARGET_IP:$p
security_layer=negotiate
certificate=$dir/cert.pem
key_file=$dir/key.pem
ssl_protocols=TLSv1.2, TLSv1.3
[Logging]
LogFile=$dir/xrdp-$p.log
LogLevel=INFO
EnableSyslog=false
[Xorg]
name=Xorg
lib=libxup.so
username=ask
password=ask
ip=127.0.0.1
port=-1
CONF
    run "xrdp-$p" unshare -m --propagation private sh -c \
      "mount -t tmpfs tmpfs /run && mkdir -p /run/xrdp/sockdir && exec /usr/sbin/xrdp --nodaemon --config $dir/xrdp-$p.ini"
  done

  # ---- RabbitMQ (AMQP 0-9-1) on 5672 and 10672; its Erlang node and epmd stay inside
  # the namespace
  local rmq=$dir/rabbitmq
  owned rabbitmq "$rmq"
  cat >"$rmq/rabbitmq.conf" <<CONF
listeners.tcp.1 = $TARGET_IP:5672
listeners.tcp.2 = $TARGET_IP:10672
log.console = true
log.file = false
CONF
  echo "[]." >"$rmq/enabled_plugins"
  run rabbitmq $(as rabbitmq) env HOME="$rmq" RABBITMQ_NODENAME=rabbit@localhost \
    RABBITMQ_CONFIG_FILE="$rmq/rabbitmq.conf" RABBITMQ_ENABLED_PLUGINS_FILE="$rmq/enabled_plugins" \
    RABBITMQ_MNESIA_BASE="$rmq/mnesia" RABBITMQ_LOG_BASE="$rmq/log" RABBITMQ_PID_FILE="$rmq/pid" \
    RABBITMQ_DIST_PORT=25672 ERL_EPMD_ADDRESS=127.0.0.1 \
    /usr/lib/rabbitmq/bin/rabbitmq-server

  # ---- OpenSMTPD on the third address: 25 and 2525 (unpacked: it conflicts with the
  # first bed's postfix). Its spool, chroot and control socket are compiled in
  # (/var/spool/smtpd, /var/lib/opensmtpd/empty, /run/smtpd.sock): it gets empty ones
  # in a private mount namespace, and the host's stay untouched.
  cat >"$dir/smtpd.conf" <<CONF
listen on $TARGET3_IP port 25
listen on $TARGET3_IP port 2525
action "local" mbox
match from any for local action "local"
CONF
  run opensmtpd unshare -m --propagation private sh -c \
    "mount -t tmpfs tmpfs /run && mount -t tmpfs tmpfs /var/spool && mount -t tmpfs tmpfs /var/lib && mkdir -p /var/lib/opensmtpd/empty && exec $UNPACKED/opensmtpd/usr/sbin/smtpd -d -f $dir/smtpd.conf"

  # ---- INN's reader daemon (nnrpd) on the second address: 119 and 1119 (unpacked: it
  # conflicts with the first bed's leafnode). INNCONF points it at a news tree in DIR:
  # one group, and an empty overview that makehistory creates.
  local inn=$dir/inn innroot=$UNPACKED/inn2
  mkdir -p "$inn"/{etc,db,spool,log,run,tmp,overview,http}
  cat >"$inn/etc/inn.conf" <<CONF
mta:          "/bin/false %s"
organization: "portolan test bed 3"
ovmethod:     tradindexed
hismethod:    hisv6
pathhost:     news.portolan.test
domain:       portolan.test
server:       $TARGET2_IP
pathnews:     $innroot/usr/lib/news
pathbin:      $innroot/usr/lib/news/bin
pathcontrol:  $innroot/usr/lib/news/bin/control
pathfilter:   $innroot/etc/news/filter
pathdb:       $inn/db
pathetc:      $inn/etc
pathhttp:     $inn/http
pathlog:      $inn/log
pathrun:      $inn/run
pathspool:    $inn/spool
patharticles: $inn/spool/articles
patharchive:  $inn/spool/archive
pathincoming: $inn/spool/incoming
pathoutgoing: $inn/spool/outgoing
pathoverview: $inn/overview
pathtmp:      $inn/tmp
CONF
  cat >"$inn/etc/readers.conf" <<CONF
auth "bed" {
  hosts: "*"
  default: "<bed>"
}
access "bed" {
  users: "*"
  newsgroups: "*"
  access: R
}
CONF
  printf 'method tradspool {\n  newsgroups: *\n  class: 0\n}\n' >"$inn/etc/storage.conf"
  printf 'junk 0000000000 0000000001 n\n' >"$inn/db/active"
  : >"$inn/db/newsgroups"
  chown -R news:news "$inn"
  local innenv="INNCONF=$inn/etc/inn.conf LD_LIBRARY_PATH=$innroot/usr/lib/news"
  # shellcheck disable=SC2086
  env $innenv $(as news) "$innroot/usr/lib/news/bin/makehistory" -O -x >"$dir/makehistory.out" 2>&1 || true
  for p in 119 1119; do
    # shellcheck disable=SC2086
    run "nnrpd-$p" env $innenv "$innroot/usr/lib/news/bin/nnrpd" -D -f -b "$TARGET2_IP" -p "$p"
  done

  # ---- Sendmail on the second address: 25 and 2525 (unpacked: it conflicts with the
  # first bed's postfix), its sendmail.cf made by m4 from the unpacked sendmail-cf. It
  # wants a qualified host name of its own: a UTS namespace gives it one.
  local sm=$dir/sendmail smroot=$UNPACKED/sendmail
  mkdir -p "$sm/mqueue"
  chmod 700 "$sm/mqueue"
  : >"$sm/local-host-names"
  printf 'hosts files\naliases files\n' >"$sm/service.switch"
  cat >"$sm/sendmail.mc" <<CONF
divert(0)dnl
include(\`$smroot/usr/share/sendmail/cf/m4/cf.m4')dnl
VERSIONID(\`portolan test bed 3')dnl
OSTYPE(\`linux')dnl
define(\`confDOMAIN_NAME', \`testbed3.portolan.test')dnl
define(\`confSERVICE_SWITCH_FILE', \`$sm/service.switch')dnl
define(\`confHOST_STATUS_DIRECTORY', \`')dnl
define(\`confDONT_PROBE_INTERFACES', \`True')dnl
define(\`confPID_FILE', \`$sm/sendmail.pid')dnl
define(\`QUEUE_DIR', \`$sm/mqueue')dnl
define(\`STATUS_FILE', \`$sm/statistics')dnl
define(\`ALIAS_FILE', \`')dnl
define(\`confCW_FILE', \`-o $sm/local-host-names')dnl
define(\`confHELP_FILE', \`')dnl
define(\`confDEF_USER_ID', \`nobody:nogroup')dnl
FEATURE(\`no_default_msa')dnl
DAEMON_OPTIONS(\`Family=inet, Name=MTA, Port=25, Addr=$TARGET2_IP')dnl
DAEMON_OPTIONS(\`Family=inet, Name=MTA2, Port=2525, Addr=$TARGET2_IP')dnl
MAILER(\`local')dnl
MAILER(\`smtp')dnl
CONF
  m4 "$sm/sendmail.mc" >"$sm/sendmail.cf"
  run sendmail unshare --uts sh -c \
    "hostname testbed3.portolan.test && exec $smroot/usr/libexec/sendmail/sendmail -C $sm/sendmail.cf -bD -q30m"

  # ---- Cyrus IMAP and POP3 on the third address: 143, 1143, 110, 1110 (unpacked: it
  # conflicts with the first bed's dovecot), under its master process (whose service
  # names take letters and digits only)
  local cy=$dir/cyrus cybin=$UNPACKED/cyrus/usr/lib/cyrus/bin
  mkdir -p "$cy"/{conf,spool,run}
  chown -R cyrus:mail "$cy"
  cat >"$cy/imapd.conf" <<CONF
configdirectory: $cy/conf
partition-default: $cy/spool
servername: testbed3.portolan.test
admins: cyrus
allowplaintext: no
sasl_pwcheck_method: auxprop
sasl_mech_list: PLAIN
idlesocket: $cy/run/idle
notifysocket: $cy/run/notify
lmtpsocket: $cy/run/lmtp
mboxname_lockpath: $cy/run/lock
proc_path: $cy/run/proc
CONF
  cat >"$cy/cyrus.conf" <<CONF
START {
  recover cmd="$cybin/ctl_cyrusdb -C $cy/imapd.conf -r"
}
SERVICES {
  imap cmd="$cybin/imapd -C $cy/imapd.conf" listen="$TARGET3_IP:143" prefork=0
  imapmoved cmd="$cybin/imapd -C $cy/imapd.conf" listen="$TARGET3_IP:1143" prefork=0
  pop3 cmd="$cybin/pop3d -C $cy/imapd.conf" listen="$TARGET3_IP:110" prefork=0
  pop3moved cmd="$cybin/pop3d -C $cy/imapd.conf" listen="$TARGET3_IP:1110" prefork=0
}
EVENTS {
}
CONF
  run cyrus env LD_LIBRARY_PATH="$UNPACKED/cyrus/usr/lib/x86_64-linux-gnu" "$cybin/master" -D \
    -L "$cy/master.log" -C "$cy/imapd.conf" -M "$cy/cyrus.conf" -p "$cy/run/master.pid"

  # ---- Courier IMAP and POP3 on the second address: 143, 1143, 110, 1110 (unpacked: it
  # conflicts with the first bed's dovecot). couriertcpd runs the login programs, which
  # greet before any authentication, with the settings of Debian's /etc/courier files
  # (read from the unpacked copies). It forks into the background once it listens:
  # setsid -w waits for that, and the PID it writes is the one recorded. It drops the
  # connections of an address past -maxperip (Debian: 20 for IMAP, 4 for POP3); the
  # scanner is one address, and `scan --detect` opens some 25 connections to each
  # couriertcpd (two ports), many at once: both get 40.
  local cr=$UNPACKED/courier
  mkdir -p "$dir/courier"
  local svc conf ports login next
  for svc in imap pop3; do
    if [ "$svc" = imap ]; then
      conf=imapd ports=143,1143 login=imaplogin next=/usr/bin/imapd
    else
      conf=pop3d ports=110,1110 login=courierpop3login next=$cr/usr/lib/courier/courier/courierpop3d
    fi
    $T setsid -w env -i LD_LIBRARY_PATH="$cr/usr/lib" sh -c "set -a && . $cr/etc/courier/$conf && exec $cr/usr/sbin/couriertcpd -address=$TARGET2_IP -maxprocs=\$MAXDAEMONS -maxperip=40 -pid=$dir/courier/$svc.pid -stderr=$dir/courier/$svc.log -nodnslookup -noidentlookup $ports $cr/usr/lib/courier/courier/$login $next Maildir" \
      >"$dir/courier-$svc.out" 2>&1 </dev/null
    echo "$(cat "$dir/courier/$svc.pid") courier-$svc" >>"$dir/pids"
  done

  # ---- Squid again on the second address, 3128 and 13128, that asks for a password
  # (Basic, checked by basic_ncsa_auth against a file) before it relays anything
  local sq=$dir/squid-auth
  owned proxy "$sq"
  # the password "bed3-secret", MD5-crypted
  echo 'bed:$apr1$portolan$SUK9.uKg2ylLRia.nYizM1' >"$sq/passwd"
  chmod 644 "$sq/passwd"
  cat >"$dir/squid-auth.conf" <<CONF
http_port $TARGET2_IP:3128
http_port $TARGET2_IP:13128
auth_param basic program /usr/lib/squid/basic_ncsa_auth $sq/passwd
auth_param basic children 1 startup=1 idle=1
auth_param basic realm portolan test bed 3
acl users proxy_auth REQUIRED
http_access allow users
http_access deny all
cache_effective_user proxy
cache_effective_group proxy
pid_filename $sq/squid.pid
cache_log $sq/cache.log
access_log none
netdb_filename none
cache deny all
cache_mem 8 MB
coredump_dir $sq
CONF
  run squid-auth /usr/sbin/squid -N -f "$dir/squid-auth.conf"

  # ---- 389 Directory Server on 389 and 1389, holding dc=portolan,dc=test with dscreate's
  # sample entries, which its default access rules let anonymous clients read. dscreate
  # makes the instance from an INF file and stops it; a copy of it, with another port, is
  # the moved one; another, on TARGET2_IP:389, serves anonymous clients the root DSE only
  # (nsslapd-allow-anonymous-access: rootdse). Each sees the instance at the paths
  # compiled in (/etc/dirsrv, /var/lib/dirsrv, /var/log/dirsrv, /run, /dev/shm), which are
  # directories in DIR mounted there in private mount namespaces, and a defaults.inf that
  # says there is no systemd: the host's stay untouched.
  local ds=$dir/389ds
  mkdir -p "$ds"
  cat >"$ds/bed3.inf" <<CONF
[general]
full_machine_name = testbed3.portolan.test
selinux = False
systemd = False
start = False
[slapd]
instance_name = bed3
port = 389
root_password = portolan-bed3
self_sign_cert = False
[backend-userroot]
suffix = dc=portolan,dc=test
sample_entries = yes
CONF
  sed 's/^with_systemd = 1$/with_systemd = 0/' /usr/share/dirsrv/inf/defaults.inf >"$ds/defaults.inf"
  # shm: the database's environment, where it is not kept with the database (outside
  # containers, dscreate puts it under /dev/shm)
  mkdir -p "$ds/389/etc" "$ds/389/lib" "$ds/389/log" "$ds/389/run" "$ds/389/shm"
  cp -a /etc/dirsrv/config /etc/dirsrv/schema "$ds/389/etc/"
  chown -R dirsrv:dirsrv "$ds/389"
  ds_mounts() { # the mounts that show instance copy $1 at the compiled-in paths
    echo "mount --bind $ds/$1/etc /etc/dirsrv && mount --bind $ds/$1/lib /var/lib/dirsrv &&" \
      "mount --bind $ds/$1/log /var/log/dirsrv && mount --bind $ds/$1/run /run &&" \
      "mount --bind $ds/$1/shm /dev/shm && mount --bind $ds/defaults.inf /usr/share/dirsrv/inf/defaults.inf &&" \
      "mkdir -p /run/lock"
  }
  $T unshare -m --propagation private sh -c "$(ds_mounts 389) && exec dscreate from-file $ds/bed3.inf" \
    >"$ds/dscreate.out" 2>&1 </dev/null || die "dscreate failed: $(tail -5 "$ds/dscreate.out")"
  sed -i "s/^nsslapd-port: 389\$/nsslapd-port: 389\nnsslapd-listenhost: $TARGET_IP/" "$ds/389/etc/slapd-bed3/dse.ldif"
  cp -a "$ds/389" "$ds/1389"
  sed -i 's/^nsslapd-port: 389$/nsslapd-port: 1389/' "$ds/1389/etc/slapd-bed3/dse.ldif"
  cp -a "$ds/389" "$ds/rootdse"
  # (dscreate writes no nsslapd-allow-anonymous-access: the default, on)
  sed -i -e '/^nsslapd-allow-anonymous-access:/d' \
    -e "s/^nsslapd-listenhost: $TARGET_IP\$/nsslapd-listenhost: $TARGET2_IP\nnsslapd-allow-anonymous-access: rootdse/" \
    "$ds/rootdse/etc/slapd-bed3/dse.ldif"
  grep -q '^nsslapd-allow-anonymous-access: rootdse$' "$ds/rootdse/etc/slapd-bed3/dse.ldif" ||
    die "389 DS: nsslapd-allow-anonymous-access not set in dse.ldif"
  for p in 389 1389 rootdse; do
    # -d: in the foreground, with the default error log level
    run "389ds-$p" unshare -m --propagation private sh -c \
      "$(ds_mounts "$p") && exec /usr/sbin/ns-slapd -D /etc/dirsrv/slapd-bed3 -d 266354688"
  done

  # Address by address: most ports listen on two or three of them, each another daemon.
  wait_at 600 "$TARGET_IP" 80 8080 53 5353 3128 13128 2379 12379 3389 13389 5672 10672 389 1389
  wait_at 300 "$TARGET2_IP" 80 8080 53 5353 25 2525 119 1119 143 1143 110 1110 3128 13128 389
  wait_at 300 "$TARGET3_IP" 53 5353 25 2525 143 1143 110 1110
  bed_wait udp 100 53 5353
}

# wait_at TENTHS ADDRESS PORT...: bed_wait_at for the ports of one address.
wait_at() {
  local tries=$1 ip=$2 p
  shift 2
  local at=()
  for p in "$@"; do at+=("$ip:$p"); done
  bed_wait_at "$tries" "${at[@]}"
}

stop() {
  bed_kill "$1"
}

bed_main "$@"
