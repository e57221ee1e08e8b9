#!/usr/bin/env bash
# Install the Debian packages the suite's tests need, once. Idempotent and quiet when all are present.
set -euo pipefail
needed=()
[ -x /usr/bin/chromium ] || needed+=(chromium)
# SoftHSM2: the PKCS#11 token the vault tests run against (module /usr/lib/softhsm/libsofthsm2.so).
[ -e /usr/lib/softhsm/libsofthsm2.so ] || needed+=(softhsm2)
# The fault tests start private servers of their own: a Redis to stop, a PostgreSQL cluster to restart.
command -v redis-server >/dev/null 2>&1 || needed+=(redis-server)
[ -x "${SUITE_PG_BIN:-/usr/lib/postgresql/15/bin}/initdb" ] || needed+=(postgresql-15)
[ ${#needed[@]} -eq 0 ] && exit 0
if ! command -v apt-get >/dev/null 2>&1; then
  echo "Missing system packages: ${needed[*]} (and no apt-get here): install them, then rerun." >&2
  exit 1
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "Installing system packages: ${needed[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${needed[@]}" >/dev/null
echo "System packages installed."
