#!/usr/bin/env bash
# install-pebble.sh — build Let's Encrypt's ACME test server (pebble) and
# its DNS/challenge companion (pebble-challtestsrv) at a pinned version from
# the Go module proxy into bin/, for the test of registryd's
# http.tls.letsencrypt. Idempotent; prints the directory holding both.
set -euo pipefail

PEBBLE_VERSION="${PEBBLE_VERSION:-v2.10.1}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DIR="${ROOT}/bin/pebble-${PEBBLE_VERSION}"

if [[ ! -x "${DIR}/pebble" || ! -x "${DIR}/pebble-challtestsrv" ]]; then
  echo "install-pebble: go install github.com/letsencrypt/pebble/v2/cmd/{pebble,pebble-challtestsrv}@${PEBBLE_VERSION}" >&2
  tmp="$(mktemp -d)"
  trap 'rm -rf "${tmp}"' EXIT
  (cd "${tmp}" && GOBIN="${tmp}" CGO_ENABLED=0 go install \
    "github.com/letsencrypt/pebble/v2/cmd/pebble@${PEBBLE_VERSION}" \
    "github.com/letsencrypt/pebble/v2/cmd/pebble-challtestsrv@${PEBBLE_VERSION}")
  mkdir -p "${DIR}"
  mv "${tmp}/pebble" "${tmp}/pebble-challtestsrv" "${DIR}/"
fi
echo "${DIR}"
