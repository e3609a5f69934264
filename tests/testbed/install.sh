#!/usr/bin/env bash
# Installs the daemons of the detection test bed without starting any of them: a
# policy-rc.d that exits 101 stops every postinst from starting its service in the root
# namespace. The test bed (run.sh) starts them itself, inside a network namespace.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
# shellcheck source=tests/testbed/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

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

echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
echo "slapd slapd/no_configuration boolean false" | debconf-set-selections
echo "slapd slapd/domain string portolan.test" | debconf-set-selections
echo "slapd shared/organization string portolan" | debconf-set-selections

install_quietly "${missing[@]}"
