#!/usr/bin/env bash
# install-fake-gcs-server.sh — build the Google Cloud Storage emulator the
# gcs driver is tested against (fake-gcs-server) at the version pinned in
# hack/fake-gcs-server/go.mod into bin/. Idempotent (the binary is named
# after the version and built once); prints the binary's path.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
MOD="${ROOT}/hack/fake-gcs-server"
PKG="github.com/fsouza/fake-gcs-server"

VERSION="$(cd "${MOD}" && go list -m -f '{{.Version}}' "${PKG}")"
BIN="${ROOT}/bin/fake-gcs-server-${VERSION}"

if [[ ! -x "${BIN}" ]]; then
  echo "install-fake-gcs-server: go build ${PKG}@${VERSION}" >&2
  mkdir -p "${ROOT}/bin"
  tmp="${BIN}.tmp.$$"
  trap 'rm -f "${tmp}"' EXIT
  (cd "${MOD}" && CGO_ENABLED=0 go build -trimpath -o "${tmp}" "${PKG}")
  mv "${tmp}" "${BIN}"
fi
echo "${BIN}"
