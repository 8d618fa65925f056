#!/usr/bin/env bash
# install-versitygw.sh — build the S3-compatible server the s3 driver is
# tested against (versitygw, posix backend) at the version pinned in
# hack/versitygw/go.mod into bin/. Idempotent (the binary is named after
# the version and built once); prints the binary's path.
#
# Why versitygw and not MinIO: versitygw publishes semver releases on the Go
# module proxy and builds with a plain `go build`; MinIO's module has no
# semver versions there (its releases are RELEASE.* tags), so it could only
# be pinned to a pseudo-version of an untagged commit.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
MOD="${ROOT}/hack/versitygw"
PKG="github.com/versity/versitygw/cmd/versitygw"

VERSION="$(cd "${MOD}" && go list -m -f '{{.Version}}' github.com/versity/versitygw)"
BIN="${ROOT}/bin/versitygw-${VERSION}"

if [[ ! -x "${BIN}" ]]; then
  echo "install-versitygw: go build ${PKG}@${VERSION}" >&2
  mkdir -p "${ROOT}/bin"
  tmp="${BIN}.tmp.$$"
  trap 'rm -f "${tmp}"' EXIT
  (cd "${MOD}" && CGO_ENABLED=0 go build -trimpath -o "${tmp}" "${PKG}")
  mv "${tmp}" "${BIN}"
fi
echo "${BIN}"
