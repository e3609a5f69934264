#!/usr/bin/env bash
# Installs the daemons of the second detection test bed (other implementations than
# tests/testbed's) without starting any of them: a policy-rc.d that exits 101 stops every
# postinst from starting its service. Packages that conflict with the first bed's daemons
# (proftpd and pure-ftpd with vsftpd, exim4 with postfix, ntpsec with chrony) are not
# installed, nor is atftpd, which takes over tftpd-hpa's /usr/sbin/in.tftpd: they are
# unpacked into /opt/portolan-testbed2/root and run from there (their libraries are
# installed). Idempotent, and quick when everything is there.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
# shellcheck source=tests/testbed/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../testbed/lib.sh"

PACKAGES=(
  dropbear-bin unbound lighttpd tinyproxy dante-server
  redis-server memcached postgresql mariadb-server mosquitto rpcbind rsync
  tigervnc-standalone-server isc-dhcp-server snmpd iproute2 openssl python3
  # the libraries of the unpacked daemons below
  libhiredis0.14 libmemcached11 libmemcachedutil2 libpcre2-posix3 libsodium23 libdb5.3
  libgnutls-dane0 libidn12 libnsl2 libbsd0 libwrap0
)
# Unpacked, not installed: they conflict with the first bed's vsftpd (ftp-server),
# postfix (mail-transport-agent) and chrony (time-daemon); atftpd takes over the
# first bed's /usr/sbin/in.tftpd (tftpd-hpa).
UNPACK_DIR=/opt/portolan-testbed2
UNPACK=(proftpd-core pure-ftpd exim4-daemon-light ntpsec atftpd)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
unpack=()
for p in "${UNPACK[@]}"; do
  [ -e "$UNPACK_DIR/.$p" ] || unpack+=("$p")
done
[ ${#missing[@]} -eq 0 ] && [ ${#unpack[@]} -eq 0 ] && getent passwd Debian-exim >/dev/null && exit 0

if [ ${#missing[@]} -gt 0 ]; then
  install_quietly "${missing[@]}"
fi

if [ ${#unpack[@]} -gt 0 ]; then
  mkdir -p "$UNPACK_DIR"
  tmp=$(mktemp -d)
  chmod 755 "$tmp" # apt-get download runs as _apt
  (cd "$tmp" && apt-get download -qq "${unpack[@]}" >/dev/null)
  for p in "${unpack[@]}"; do
    dpkg-deb -x "$tmp/${p}"_*.deb "$UNPACK_DIR/root"
    touch "$UNPACK_DIR/.$p"
  done
  rm -rf "$tmp"
fi

# The unpacked exim looks up its compiled-in user at start.
if ! getent passwd Debian-exim >/dev/null; then
  getent group Debian-exim >/dev/null || groupadd --system Debian-exim
  useradd --system --gid Debian-exim --no-create-home --home-dir /nonexistent \
    --shell /usr/sbin/nologin Debian-exim
fi
