#!/usr/bin/env bash
# Installs the daemons of the fourth detection test bed (container APIs and X servers:
# Docker Engine, Podman, Xvfb) without starting any of them: a policy-rc.d that exits
# 101 stops every postinst from starting its service (docker.io's and containerd's).
# Idempotent, and quick when everything is there.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
# shellcheck source=tests/testbed/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../testbed/lib.sh"

PACKAGES=(docker.io containerd runc podman xvfb iproute2 openssl)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  install_quietly "${missing[@]}"
fi
