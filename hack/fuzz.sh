#!/usr/bin/env bash
# Runs every fuzz target for FUZZ_TIME each (default 1m): `make fuzz`.
# A failure leaves its input in the package's testdata/fuzz/<target>/,
# where `go test` (and so `make test`) runs it from then on, beside the
# committed seed corpus; commit it with the fix.
#
# Environment:
#   FUZZ_TIME     -fuzztime of each target (default 1m)
#   FUZZ_TARGETS  space-separated package:Target pairs (default: all below)
set -euo pipefail
cd "$(dirname "$0")/.."

FUZZ_TIME="${FUZZ_TIME:-1m}"
FUZZ_TARGETS="${FUZZ_TARGETS:-
  ./registryd/configuration:FuzzParseWithEnv
  ./registryd/storage:FuzzParseManifest
  ./registryd/storage:FuzzReadLink
  ./registryd/storage:FuzzWalkPaths
  ./registryd/routes:FuzzParse
  ./registryd/handlers:FuzzRequest
  ./registryd/auth:FuzzParseHtpasswd
  ./registryd/auth:FuzzTokenVerify
}"

failed=()
for t in ${FUZZ_TARGETS}; do
  pkg="${t%%:*}" name="${t##*:}"
  echo "== ${pkg} ${name} (${FUZZ_TIME})" >&2
  # -parallel 2: the machine's cores are shared.
  if ! go test -run '^$' -fuzz "^${name}\$" -fuzztime "${FUZZ_TIME}" -parallel 2 "${pkg}"; then
    failed+=("${pkg} ${name}")
  fi
done
if ((${#failed[@]})); then
  printf 'fuzz: failed: %s\n' "${failed[@]}" >&2
  exit 1
fi
