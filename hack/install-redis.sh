#!/usr/bin/env bash
# install-redis.sh — provide redis-server for the tests of registryd's redis
# blob descriptor cache: Debian's redis-server package, installed with apt
# when the machine has none. Idempotent; prints the binary's path.
#
# The tests start their own redis-server on a free loopback port (never the
# system service), so the service the package may start is stopped again.
set -euo pipefail

log() { echo "install-redis: $*" >&2; }

if ! command -v redis-server >/dev/null 2>&1; then
  log "installing Debian's redis-server package"
  SUDO=""; [[ "$(id -u)" == 0 ]] || SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  ${SUDO} apt-get install -y -q redis-server >&2 || { ${SUDO} apt-get update -q >&2 && ${SUDO} apt-get install -y -q redis-server >&2; }
  if command -v systemctl >/dev/null 2>&1; then ${SUDO} systemctl disable --now redis-server >/dev/null 2>&1 || true; fi
fi

bin="$(command -v redis-server)"
"${bin}" --version >&2
echo "${bin}"
