#!/usr/bin/env bash
# kustomize-build.sh IMG REGISTRYD_IMG — render config/default (CRDs, RBAC,
# the manager Deployment) with the manager image (and its MANAGER_IMAGE env,
# which garbage collection CronJobs run) set to IMG and its REGISTRYD_IMAGE
# env to REGISTRYD_IMG, and print the manifests.
#
# The edits happen on a temporary copy of config/, so `make deploy` leaves the
# tree clean. KUSTOMIZE names the kustomize binary (the Makefile passes its
# pinned one).
set -euo pipefail

if [[ $# -ne 2 ]]; then
  echo "usage: $0 IMG REGISTRYD_IMG" >&2
  exit 2
fi
img="$1"
registryd_img="$2"
KUSTOMIZE="${KUSTOMIZE:-kustomize}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

tmp="$(mktemp -d)"
trap 'rm -rf "${tmp}"' EXIT
cp -r "${ROOT}/config" "${tmp}/"

# config/manager names the container image "manager"; config/default patches
# the env (a strategic merge patch, so the env entry is matched by name).
(cd "${tmp}/config/manager" && "${KUSTOMIZE}" edit set image "manager=${img}")
patch="$(printf '{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"controller-manager","namespace":"system"},"spec":{"template":{"spec":{"containers":[{"name":"manager","env":[{"name":"REGISTRYD_IMAGE","value":"%s"},{"name":"MANAGER_IMAGE","value":"%s"}]}]}}}}' "${registryd_img}" "${img}")"
(cd "${tmp}/config/default" && "${KUSTOMIZE}" edit add patch --patch "${patch}")

"${KUSTOMIZE}" build "${tmp}/config/default"
