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

out="$(mktemp)"
trap 'rm -f "${out}"' EXIT

# fuzz_once runs one target; -parallel 2: the machine's cores are shared.
fuzz_once() {
  go test -run '^$' -fuzz "^$2\$" -fuzztime "${FUZZ_TIME}" -parallel 2 "$1" 2>&1 | tee "${out}"
}

failed=()
for t in ${FUZZ_TARGETS}; do
  pkg="${t%%:*}" name="${t##*:}"
  echo "== ${pkg} ${name} (${FUZZ_TIME})" >&2
  if fuzz_once "${pkg}" "${name}"; then
    continue
  fi
  # Go's fuzzing engine sometimes fails a run that found nothing with
  # "context deadline exceeded" as -fuzztime ends (seen with 2s runs).
  # A finding always writes its input; without one, run the target once
  # more, and a second failure of any kind counts.
  if ! grep -q 'Failing input written to' "${out}" && grep -q 'context deadline exceeded' "${out}"; then
    echo "== ${pkg} ${name}: ended with a deadline error and no failing input; once more" >&2
    if fuzz_once "${pkg}" "${name}"; then
      continue
    fi
  fi
  failed+=("${pkg} ${name}")
done
if ((${#failed[@]})); then
  printf 'fuzz: failed: %s\n' "${failed[@]}" >&2
  exit 1
fi
