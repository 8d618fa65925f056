#!/usr/bin/env bash
# install-azurite.sh — install Azurite, the Azure Storage emulator the azure
# driver is tested against, from the npm registry at the version and
# dependency tree pinned by hack/azurite/package-lock.json into
# bin/azurite-<version>/ (npm ci: exactly the locked packages, checked
# against their integrity hashes). Idempotent; prints the path of the blob
# service's executable (azurite-blob). Needs Node.js 20 or later (Azurite
# 3.36 and later need Node 21+, hence the pin to 3.35).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SRC="${ROOT}/hack/azurite"
VERSION="$(sed -n 's/.*"azurite": *"\([^"]*\)".*/\1/p' "${SRC}/package.json" | head -n1)"
DIR="${ROOT}/bin/azurite-${VERSION}"
BIN="${DIR}/node_modules/.bin/azurite-blob"
STAMP="${DIR}/.installed"

command -v npm >/dev/null || { echo "install-azurite: npm (Node.js 20+) is required" >&2; exit 1; }
lock_sum="$(sha256sum "${SRC}/package-lock.json" | cut -d' ' -f1)"
if [[ ! -x "${BIN}" || "$(cat "${STAMP}" 2>/dev/null)" != "${lock_sum}" ]]; then
  echo "install-azurite: npm ci azurite@${VERSION}" >&2
  tmp="${DIR}.tmp.$$"
  trap 'rm -rf "${tmp}"' EXIT
  rm -rf "${tmp}" && mkdir -p "${tmp}"
  cp "${SRC}/package.json" "${SRC}/package-lock.json" "${tmp}/"
  (cd "${tmp}" && npm ci --no-audit --no-fund --loglevel=error >&2)
  echo "${lock_sum}" > "${tmp}/.installed"
  rm -rf "${DIR}" && mv "${tmp}" "${DIR}"
fi
echo "${BIN}"
