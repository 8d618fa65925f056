#!/usr/bin/env bash
# install-distribution.sh — install the CNCF Distribution registry at a pinned
# version from the Go module proxy into bin/, for the compatibility tests and
# benchmarks that run registryd beside it, built as registryd is for them
# (CGO_ENABLED=0, -trimpath, -ldflags "-s -w"; see internal/testutil). Idempotent;
# prints the binary's path.
set -euo pipefail

DISTRIBUTION_VERSION="${DISTRIBUTION_VERSION:-v3.1.2}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# The name says how it was built, so that a binary built otherwise before is
# not taken for it.
BIN="${ROOT}/bin/distribution-registry-${DISTRIBUTION_VERSION}-trimpath-s-w"

if [[ ! -x "${BIN}" ]]; then
  echo "install-distribution: go install github.com/distribution/distribution/v3/cmd/registry@${DISTRIBUTION_VERSION}" >&2
  tmp="$(mktemp -d)"
  trap 'rm -rf "${tmp}"' EXIT
  (cd "${tmp}" && GOBIN="${tmp}" CGO_ENABLED=0 go install -trimpath -ldflags "-s -w" "github.com/distribution/distribution/v3/cmd/registry@${DISTRIBUTION_VERSION}")
  mkdir -p "${ROOT}/bin"
  mv "${tmp}/registry" "${BIN}"
fi
echo "${BIN}"
