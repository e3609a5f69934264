#!/usr/bin/env bash
# Installs the daemons of the third detection test bed (the implementations that the
# first two beds lack: Apache, Caddy, BIND, Knot, PowerDNS, Squid, etcd, xrdp, RabbitMQ,
# ...) without starting any of them: a policy-rc.d that exits 101 stops every postinst
# from starting its service. Packages that conflict with the first bed's daemons are
# unpacked into /opt/portolan-testbed3/root instead (their libraries are installed), as
# tests/testbed2/install.sh does. Idempotent, and quick when everything is there.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

PACKAGES=(
  apache2-bin caddy bind9 knot pdns-server pdns-backend-bind squid etcd-server xrdp
  rabbitmq-server iproute2 openssl
)
UNPACK_DIR=/opt/portolan-testbed3
UNPACK=()

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
unpack=()
for p in "${UNPACK[@]}"; do
  [ -s "$UNPACK_DIR/.$p" ] || unpack+=("$p")
done
[ ${#missing[@]} -eq 0 ] && [ ${#unpack[@]} -eq 0 ] && exit 0

if [ ${#missing[@]} -gt 0 ]; then
  policy=/usr/sbin/policy-rc.d
  saved=""
  if [ -e "$policy" ]; then
    saved=$(mktemp)
    cp -p "$policy" "$saved"
  fi
  restore() {
    if [ -n "$saved" ]; then mv "$saved" "$policy"; else rm -f "$policy"; fi
  }
  trap restore EXIT
  printf '#!/bin/sh\nexit 101\n' >"$policy"
  chmod 755 "$policy"
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Unpacked packages: each one's version (from its control file) is kept in
# $UNPACK_DIR/.PACKAGE, for the test to compare with what the daemon says.
if [ ${#unpack[@]} -gt 0 ]; then
  mkdir -p "$UNPACK_DIR"
  tmp=$(mktemp -d)
  chmod 755 "$tmp" # apt-get download runs as _apt
  (cd "$tmp" && apt-get download -qq "${unpack[@]}" >/dev/null)
  for p in "${unpack[@]}"; do
    deb=$(ls "$tmp/${p}"_*.deb)
    dpkg-deb -x "$deb" "$UNPACK_DIR/root"
    dpkg-deb -f "$deb" Version >"$UNPACK_DIR/.$p"
  done
  rm -rf "$tmp"
fi
