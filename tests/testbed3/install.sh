#!/usr/bin/env bash
# Installs the daemons of the third detection test bed (the implementations that the
# first two beds lack: Apache, Caddy, BIND, Knot, PowerDNS, Squid, etcd, xrdp, RabbitMQ,
# 389 Directory Server, ...) without starting any of them: a policy-rc.d that exits 101 stops every postinst
# from starting its service. Packages that conflict with the first bed's daemons are
# unpacked into /opt/portolan-testbed3/root instead (their libraries are installed), as
# tests/testbed2/install.sh does. Idempotent, and quick when everything is there.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
# shellcheck source=tests/testbed/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../testbed/lib.sh"

PACKAGES=(
  apache2-bin caddy bind9 knot pdns-server pdns-backend-bind squid etcd-server xrdp
  rabbitmq-server 389-ds-base iproute2 openssl
  # the libraries of the unpacked daemons below
  libcanlock3 liblockfile1 m4 libical3 libxapian30 libcourier-unicode4
)
# Unpacked, not installed, each group into /opt/portolan-testbed3/GROUP: they conflict
# with the first bed's postfix (mail-transport-agent), leafnode (news-transport-system)
# and dovecot (imap-server, pop3-server). Courier's login programs greet before any
# authentication: its authdaemon is not needed, nor the libraries of its imapd proper.
UNPACK_DIR=/opt/portolan-testbed3
UNPACK=(
  "opensmtpd:opensmtpd"
  "inn2:inn2 inn2-inews"
  "sendmail:sendmail-bin sendmail-base sendmail-cf"
  "cyrus:cyrus-common cyrus-imapd cyrus-pop3d"
  "courier:courier-authlib courier-base courier-imap courier-pop"
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
unpack=()
for g in "${UNPACK[@]}"; do
  for p in ${g#*:}; do
    [ -s "$UNPACK_DIR/.$p" ] || { unpack+=("$g"); break; }
  done
done
users() { # the system users that the unpacked daemons look up at start
  local u
  for u in opensmtpd opensmtpq; do
    getent group "$u" >/dev/null || groupadd --system "$u"
    getent passwd "$u" >/dev/null || useradd --system --gid "$u" --no-create-home \
      --home-dir /nonexistent --shell /usr/sbin/nologin "$u"
  done
  # Cyrus's services switch to their compiled-in user, in group mail as Debian has it.
  getent passwd cyrus >/dev/null || useradd --system --gid mail --no-create-home \
    --home-dir /nonexistent --shell /usr/sbin/nologin cyrus
}
if [ ${#missing[@]} -eq 0 ] && [ ${#unpack[@]} -eq 0 ]; then
  users
  exit 0
fi

if [ ${#missing[@]} -gt 0 ]; then
  install_quietly "${missing[@]}"
fi

# Unpacked packages: each one's version (from its control file) is kept in
# $UNPACK_DIR/.PACKAGE, for the test to compare with what the daemon says.
if [ ${#unpack[@]} -gt 0 ]; then
  mkdir -p "$UNPACK_DIR"
  tmp=$(mktemp -d)
  chmod 755 "$tmp" # apt-get download runs as _apt
  for g in "${unpack[@]}"; do
    group=${g%%:*}
    # shellcheck disable=SC2086
    (cd "$tmp" && apt-get download -qq ${g#*:} >/dev/null)
    for p in ${g#*:}; do
      deb=$(ls "$tmp/${p}"_*.deb)
      dpkg-deb -x "$deb" "$UNPACK_DIR/$group"
      dpkg-deb -f "$deb" Version >"$UNPACK_DIR/.$p"
    done
    rm -f "$tmp"/*.deb
  done
  rm -rf "$tmp"
fi
users
