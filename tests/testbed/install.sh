#!/usr/bin/env bash
# Installs the daemons of the detection test bed without starting any of them: a
# policy-rc.d that exits 101 stops every postinst from starting its service in the root
# namespace. The test bed (run.sh) starts them itself, inside a network namespace.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

PACKAGES=(
  vsftpd openssh-server inetutils-telnetd openbsd-inetd postfix
  dnsmasq tftpd-hpa nginx-light openssl
  dovecot-pop3d dovecot-imapd leafnode chrony
  samba snmpd slapd ldap-utils iproute2
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

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

echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
echo "slapd slapd/no_configuration boolean false" | debconf-set-selections
echo "slapd slapd/domain string portolan.test" | debconf-set-selections
echo "slapd shared/organization string portolan" | debconf-set-selections

apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
