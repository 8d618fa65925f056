#!/usr/bin/env bash
# conformance.sh — build the OCI Distribution Spec conformance suite at the
# version pinned in hack/conformance/go.mod into bin/, for the test in
# test/conformance. Idempotent (the binary is named after the version and
# built once); prints the binary's path.
#
# At this version the suite is a program (package main; its `go test`
# entry point is a deprecated shim), so it is built with `go build`, as its
# README says.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
MOD="${ROOT}/hack/conformance"
PKG="github.com/opencontainers/distribution-spec/conformance"

VERSION="$(cd "${MOD}" && go list -m -f '{{.Version}}' "${PKG}")"
BIN="${ROOT}/bin/oci-conformance-${VERSION}"

if [[ ! -x "${BIN}" ]]; then
  echo "conformance: go build ${PKG}@${VERSION}" >&2
  mkdir -p "${ROOT}/bin"
  tmp="${BIN}.tmp.$$"
  trap 'rm -f "${tmp}"' EXIT
  (cd "${MOD}" && CGO_ENABLED=0 go build -o "${tmp}" "${PKG}")
  mv "${tmp}" "${BIN}"
fi
echo "${BIN}"
