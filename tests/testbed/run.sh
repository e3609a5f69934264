#!/usr/bin/env bash
# The detection test bed: real daemons inside a network namespace.
#
#   run.sh start DIR   write configs into DIR, create the namespaces, start every daemon,
#                      wait until they listen; DIR/env then names the namespaces
#   run.sh stop DIR    stop every daemon by its recorded PID, delete the namespaces
#
# Two namespaces joined by a veth pair, no default route: the scanner side is
# 198.18.5.1, the daemons' side 198.18.5.2. Nothing listens in the root namespace.
# Needs root, iproute2, openssl and the packages that install.sh installs.
set -euo pipefail

SCANNER_IP=198.18.5.1
TARGET_IP=198.18.5.2
BED=testbed
# shellcheck source=tests/testbed/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

start() {
  bed_dir "$1"
  local dir=$BED_DIR
  local id="pd$$"
  bed_netns "$id" "$SCANNER_IP/24" "$TARGET_IP/24"
  bed_env SCANNER_IP TARGET_IP

  openssl req -x509 -newkey rsa:2048 -nodes -days 30 -keyout "$dir/key.pem" \
    -out "$dir/cert.pem" -subj "/CN=testbed.portolan.test/O=portolan test bed" 2>/dev/null
  chmod 644 "$dir/key.pem" "$dir/cert.pem"

  # ---- OpenSSH on 22 and 2222
  ssh-keygen -q -t ed25519 -N '' -f "$dir/ssh_host_ed25519_key"
  mkdir -p /run/sshd
  cat >"$dir/sshd_config" <<CONF
Port 22
Port 2222
ListenAddress $TARGET_IP
HostKey $dir/ssh_host_ed25519_key
PidFile none
UsePAM no
CONF
  run sshd /usr/sbin/sshd -D -e -f "$dir/sshd_config"

  # ---- vsftpd on 21 (AUTH TLS offered), 2121, and implicit TLS on 990
  mkdir -p /var/run/vsftpd/empty
  for p in 21 2121 990; do
    cat >"$dir/vsftpd-$p.conf" <<CONF
listen=YES
listen_ipv6=NO
listen_address=$TARGET_IP
listen_port=$p
background=NO
anonymous_enable=NO
local_enable=YES
seccomp_sandbox=NO
secure_chroot_dir=/var/run/vsftpd/empty
ssl_enable=YES
rsa_cert_file=$dir/cert.pem
rsa_private_key_file=$dir/key.pem
implicit_ssl=$([ "$p" = 990 ] && echo YES || echo NO)
CONF
    run "vsftpd-$p" /usr/sbin/vsftpd "$dir/vsftpd-$p.conf"
  done

  # ---- telnetd and leafnode (NNTP) under openbsd-inetd: 23, 2323, 119, 1119
  mkdir -p /etc/news/leafnode /var/spool/news
  if [ ! -e /etc/news/leafnode/config ]; then
    printf 'server = news.portolan.test\nexpire = 20\n' >/etc/news/leafnode/config
    echo created >"$dir/leafnode-config-created"
  fi
  cat >"$dir/inetd.conf" <<CONF
$TARGET_IP:23 stream tcp nowait root /usr/sbin/telnetd telnetd
$TARGET_IP:2323 stream tcp nowait root /usr/sbin/telnetd telnetd
$TARGET_IP:119 stream tcp nowait news /usr/sbin/leafnode leafnode
$TARGET_IP:1119 stream tcp nowait news /usr/sbin/leafnode leafnode
CONF
  # leafnode insists on a globally unique host name: give inetd (and so its children) a
  # UTS namespace of its own with one.
  run inetd unshare --uts sh -c "hostname news.portolan-testbed.org && exec /usr/sbin/inetd -i $dir/inetd.conf"

  # ---- Postfix on 25, 2525 (STARTTLS offered) and 465 (implicit TLS)
  mkdir -p "$dir/postfix" "$dir/postfix-data"
  chown postfix "$dir/postfix-data"
  cat >"$dir/postfix/main.cf" <<CONF
compatibility_level = 3.6
myhostname = testbed.portolan.test
inet_interfaces = $TARGET_IP
inet_protocols = ipv4
mydestination =
data_directory = $dir/postfix-data
maillog_file_prefixes = $dir
maillog_file = $dir/postfix.log
smtpd_tls_cert_file = $dir/cert.pem
smtpd_tls_key_file = $dir/key.pem
smtpd_tls_security_level = may
smtpd_banner = \$myhostname ESMTP \$mail_name (Debian/GNU)
CONF
  {
    echo "$TARGET_IP:25 inet n - n - - smtpd"
    echo "$TARGET_IP:2525 inet n - n - - smtpd"
    echo "$TARGET_IP:465 inet n - n - - smtpd -o smtpd_tls_wrappermode=yes"
    echo "$TARGET_IP:1465 inet n - n - - smtpd -o smtpd_tls_wrappermode=yes"
    for s in "pickup unix n - n 60 1 pickup" "cleanup unix n - n - 0 cleanup" \
      "qmgr unix n - n 300 1 qmgr" "tlsmgr unix - - n 1000? 1 tlsmgr" \
      "rewrite unix - - n - - trivial-rewrite" "bounce unix - - n - 0 bounce" \
      "defer unix - - n - 0 bounce" "trace unix - - n - 0 bounce" \
      "verify unix - - n - 1 verify" "flush unix n - n 1000? 0 flush" \
      "proxymap unix - - n - - proxymap" "smtp unix - - n - - smtp" \
      "relay unix - - n - - smtp" "showq unix n - n - - showq" \
      "error unix - - n - - error" "retry unix - - n - - error" \
      "discard unix - - n - - discard" "local unix - n n - - local" \
      "anvil unix - - n - 1 anvil" "scache unix - - n - 1 scache" \
      "postlog unix-dgram n - n - 1 postlogd"; do
      echo "$s"
    done
  } >"$dir/postfix/master.cf"
  postfix -c "$dir/postfix" check >"$dir/postfix-check.out" 2>&1 || true
  run postfix /usr/lib/postfix/sbin/master -c "$dir/postfix" -d

  # ---- dnsmasq: DNS on 53 (TCP and UDP) and DHCP on 67; a second one, DNS only, on 5353
  cat >"$dir/dnsmasq.conf" <<CONF
interface=${id}b
bind-interfaces
listen-address=$TARGET_IP
except-interface=lo
no-resolv
no-hosts
dhcp-range=198.18.5.100,198.18.5.200,1h
dhcp-leasefile=$dir/dnsmasq.leases
CONF
  run dnsmasq /usr/sbin/dnsmasq --keep-in-foreground --conf-file="$dir/dnsmasq.conf" \
    --pid-file="$dir/dnsmasq.pid"
  # DHCP moved to 1067 (replies to 1068), DNS off.
  run dnsmasq-1067 /usr/sbin/dnsmasq --keep-in-foreground --conf-file=/dev/null --port=0 \
    --interface="${id}b" --bind-interfaces --dhcp-alternate-port=1067,1068 \
    --dhcp-range=198.18.5.100,198.18.5.200,1h --dhcp-leasefile="$dir/dnsmasq-1067.leases" \
    --pid-file="$dir/dnsmasq-1067.pid"
  run dnsmasq-5353 /usr/sbin/dnsmasq --keep-in-foreground --conf-file=/dev/null \
    --port=5353 --listen-address="$TARGET_IP" --bind-interfaces --no-resolv --no-hosts \
    --pid-file="$dir/dnsmasq-5353.pid"

  # ---- tftpd-hpa on 69 and 6969
  mkdir -p "$dir/tftp"
  for p in 69 6969; do
    run "tftpd-$p" /usr/sbin/in.tftpd --foreground --listen --address "$TARGET_IP:$p" \
      --secure "$dir/tftp"
  done

  # ---- nginx: http on 80 and 8081, https on 443 and 4433
  mkdir -p "$dir/nginx"
  cat >"$dir/nginx.conf" <<CONF
pid $dir/nginx.pid;
error_log $dir/nginx-error.log;
worker_processes 1;
events { worker_connections 256; }
http {
  access_log off;
  client_body_temp_path $dir/nginx/body;
  proxy_temp_path $dir/nginx/proxy;
  fastcgi_temp_path $dir/nginx/fastcgi;
  uwsgi_temp_path $dir/nginx/uwsgi;
  scgi_temp_path $dir/nginx/scgi;
  server {
    listen $TARGET_IP:80;
    listen $TARGET_IP:8081;
    location / { return 200 "portolan test bed\n"; }
  }
  server {
    listen $TARGET_IP:443 ssl http2;
    listen $TARGET_IP:4433 ssl;
    ssl_certificate $dir/cert.pem;
    ssl_certificate_key $dir/key.pem;
    location / { return 200 "portolan test bed\n"; }
  }
}
CONF
  run nginx /usr/sbin/nginx -c "$dir/nginx.conf" -g 'daemon off;'

  # ---- Dovecot: pop3 110/1110, pop3s 995, imap 143/1143, imaps 993
  mkdir -p "$dir/dovecot-run" "$dir/dovecot-state"
  : >"$dir/dovecot-users"
  cat >"$dir/dovecot.conf" <<CONF
base_dir = $dir/dovecot-run
state_dir = $dir/dovecot-state
protocols = imap pop3
listen = $TARGET_IP
log_path = $dir/dovecot.log
ssl = yes
ssl_cert = <$dir/cert.pem
ssl_key = <$dir/key.pem
passdb {
  driver = passwd-file
  args = $dir/dovecot-users
}
userdb {
  driver = passwd-file
  args = $dir/dovecot-users
}
service imap-login {
  inet_listener imap {
    port = 143
  }
  inet_listener imap-moved {
    port = 1143
  }
  inet_listener imaps {
    port = 993
    ssl = yes
  }
  inet_listener imaps-moved {
    port = 1993
    ssl = yes
  }
}
service pop3-login {
  inet_listener pop3 {
    port = 110
  }
  inet_listener pop3-moved {
    port = 1110
  }
  inet_listener pop3s {
    port = 995
    ssl = yes
  }
  inet_listener pop3s-moved {
    port = 1995
    ssl = yes
  }
}
CONF
  run dovecot /usr/sbin/dovecot -F -c "$dir/dovecot.conf"

  # ---- chrony as an NTP server on 123 and 1123, never touching the clock (-x)
  for p in 123 1123; do
    cat >"$dir/chrony-$p.conf" <<CONF
bindaddress $TARGET_IP
port $p
allow all
local stratum 10
cmdport 0
pidfile $dir/chronyd-$p.pid
CONF
    run "chronyd-$p" /usr/sbin/chronyd -x -d -f "$dir/chrony-$p.conf"
  done

  # ---- Samba: nmbd (137/udp) and smbd (139, 445)
  mkdir -p "$dir/samba"/{lock,state,cache,private,pid,ncalrpc,log}
  cat >"$dir/smb.conf" <<CONF
[global]
  workgroup = PORTOLAN
  netbios name = TESTBED
  interfaces = $TARGET_IP/24
  bind interfaces only = yes
  smb ports = 445 139 1445
  server role = standalone server
  lock directory = $dir/samba/lock
  state directory = $dir/samba/state
  cache directory = $dir/samba/cache
  private dir = $dir/samba/private
  pid directory = $dir/samba/pid
  ncalrpc dir = $dir/samba/ncalrpc
  log file = $dir/samba/log/%m
  load printers = no
  disable spoolss = yes
CONF
  run nmbd /usr/sbin/nmbd --foreground --no-process-group -s "$dir/smb.conf"
  run smbd /usr/sbin/smbd --foreground --no-process-group -s "$dir/smb.conf"

  # ---- snmpd on 161 and 1161, community public
  cat >"$dir/snmpd.conf" <<CONF
rocommunity public default
sysLocation portolan test bed
sysContact nobody@portolan.test
CONF
  run snmpd /usr/sbin/snmpd -f -C -c "$dir/snmpd.conf" -Lf "$dir/snmpd.log" \
    "udp:$TARGET_IP:161" "udp:$TARGET_IP:1161"

  # ---- slapd: four directories, each holding dc=portolan,dc=test (two entries). Open to
  # anonymous clients (slapd's default access), on 389, 3389 and ldaps 636, 1636; one whose
  # access rules give anonymous clients nothing but binds, on 10389 and ldaps 10636; one
  # that requires authentication for everything (require authc: even the root DSE), on
  # 12389; and one that wants TLS first (security ssf=128), open inside StartTLS, on 11389.
  cat >"$dir/ldap-base.ldif" <<LDIF
dn: dc=portolan,dc=test
objectClass: dcObject
objectClass: organization
o: portolan test bed
dc: portolan

dn: ou=people,dc=portolan,dc=test
objectClass: organizationalUnit
ou: people
LDIF
  local ldap
  for ldap in open closed authc tls; do
    mkdir -p "$dir/ldap-$ldap"
    {
      echo "include /etc/ldap/schema/core.schema"
      echo "modulepath /usr/lib/ldap"
      echo "moduleload back_mdb"
      echo "pidfile $dir/slapd-$ldap.pid"
      echo "TLSCertificateFile $dir/cert.pem"
      echo "TLSCertificateKeyFile $dir/key.pem"
      case $ldap in
        authc) echo "require authc" ;;
        tls) echo "security ssf=128" ;;
      esac
      echo "database mdb"
      echo "suffix \"dc=portolan,dc=test\""
      echo "rootdn \"cn=admin,dc=portolan,dc=test\""
      echo "directory $dir/ldap-$ldap"
      if [ "$ldap" = closed ]; then echo "access to * by users read by anonymous auth"; fi
    } >"$dir/slapd-$ldap.conf"
    slapadd -q -f "$dir/slapd-$ldap.conf" -l "$dir/ldap-base.ldif" >"$dir/slapadd-$ldap.out" 2>&1 ||
      die "slapadd ($ldap) failed: $(tail -3 "$dir/slapadd-$ldap.out")"
  done
  run slapd /usr/sbin/slapd -d 0 -f "$dir/slapd-open.conf" \
    -h "ldap://$TARGET_IP:389/ ldap://$TARGET_IP:3389/ ldaps://$TARGET_IP:636/ ldaps://$TARGET_IP:1636/"
  run slapd-closed /usr/sbin/slapd -d 0 -f "$dir/slapd-closed.conf" \
    -h "ldap://$TARGET_IP:10389/ ldaps://$TARGET_IP:10636/"
  run slapd-authc /usr/sbin/slapd -d 0 -f "$dir/slapd-authc.conf" -h "ldap://$TARGET_IP:12389/"
  run slapd-tls /usr/sbin/slapd -d 0 -f "$dir/slapd-tls.conf" -h "ldap://$TARGET_IP:11389/"

  # Wait until every TCP port listens (UDP daemons bind before the TCP ones here).
  bed_wait tcp 100 21 22 23 25 80 110 119 139 143 389 443 445 465 636 990 993 995 1110 1119 1143 1445 1465 1636 1993 1995 2121 2222 2323 2525 3389 4433 5353 8081 10389 10636 11389 12389
  bed_wait udp 50 53 67 69 123 137 161 1067 1123 1161 5353 6969
}

stop() {
  local dir=$1
  bed_kill "$dir"
  if [ -f "$dir/leafnode-config-created" ]; then
    rm -f /etc/news/leafnode/config
  fi
}

bed_main "$@"
