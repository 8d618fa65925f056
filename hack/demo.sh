#!/usr/bin/env bash
# demo.sh — `make demo`: Berth from nothing to an image pushed and pulled
# through a Berth-managed registry running in pods.
#
#  1. a cluster: the one in KUBECONFIG when it answers, else the local one
#     (make cluster-up, docs/local-cluster.md);
#  2. make images load-images deploy with IMG and REGISTRYD_IMG (the
#     Makefile passes its own; the import is skipped when the cluster is not
#     the local one, which must then have the images already);
#  3. the sample config/samples/berth_v1alpha1_registry_htpasswd.yaml (users
#     alice and bob, passwords in Secrets) in namespace DEMO_NAMESPACE, waited
#     on until Ready;
#  4. a kubectl port-forward to its Service on 127.0.0.1:DEMO_PORT, started
#     and stopped by PID, and hack/pushpull pushing a random image as alice
#     and pulling it back byte for byte, then making garbage (images whose
#     manifests it deletes);
#  5. a GarbageCollection of that registry, waited on, and `kubectl get gc`
#     with the bytes freed and how long writes were refused;
#  6. how to reach it. The registry stays; `make cluster-down` removes it all.
set -euo pipefail
# shellcheck source=hack/cluster-lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/cluster-lib.sh"

IMG="${IMG:?set IMG (make demo passes it)}"
REGISTRYD_IMG="${REGISTRYD_IMG:?set REGISTRYD_IMG (make demo passes it)}"
DEMO_NAMESPACE="${DEMO_NAMESPACE:-berth-demo}"
DEMO_PORT="${DEMO_PORT:-5000}"
SAMPLE="${ROOT}/config/samples/berth_v1alpha1_registry_htpasswd.yaml"
REG=private # the sample's Registry
KUBECTL="${KUBECTL:-${K8S_BIN}/kubectl}"
[[ -x "${KUBECTL}" ]] || KUBECTL=kubectl
kc() { "${KUBECTL}" "$@"; }
step() { echo "==> $*" >&2; }
START="${SECONDS}"

if [[ -n "${KUBECONFIG:-}" ]] && kc get --raw /readyz >/dev/null 2>&1; then
  step "using the cluster in KUBECONFIG=${KUBECONFIG}"
else
  step "bringing up the local cluster (make cluster-up)"
  KUBECONFIG="$(make -s -C "${ROOT}" cluster-up CLUSTER_DIR="${CLUSTER_DIR}")"
  export KUBECONFIG
fi

targets=(images load-images deploy)
if ! pid_of containerd >/dev/null || [[ "$(realpath "${KUBECONFIG}")" != "$(realpath "${KUBECONFIG_ADMIN}")" ]]; then
  log "KUBECONFIG is not the local cluster in ${CLUSTER_DIR}: not importing images; it must have ${IMG} and ${REGISTRYD_IMG}"
  targets=(images deploy)
fi
step "make ${targets[*]} (IMG=${IMG} REGISTRYD_IMG=${REGISTRYD_IMG})"
make -s -C "${ROOT}" "${targets[@]}" IMG="${IMG}" REGISTRYD_IMG="${REGISTRYD_IMG}" CLUSTER_DIR="${CLUSTER_DIR}" >&2
kc -n berth-system wait --for=condition=Available deployment --all --timeout=180s >&2

step "applying ${SAMPLE#"${ROOT}"/} in namespace ${DEMO_NAMESPACE}"
kc create namespace "${DEMO_NAMESPACE}" --dry-run=client -o yaml | kc apply -f - >/dev/null
kc -n "${DEMO_NAMESPACE}" apply -f "${SAMPLE}" >&2
if ! kc -n "${DEMO_NAMESPACE}" wait --for=condition=Ready "registry/${REG}" --timeout=180s >&2; then
  kc -n "${DEMO_NAMESPACE}" get registry "${REG}" -o yaml >&2
  die "Registry ${REG} did not become Ready"
fi
kc -n "${DEMO_NAMESPACE}" get registries >&2

port="$(kc -n "${DEMO_NAMESPACE}" get service "${REG}" -o jsonpath='{.spec.ports[0].port}')"
user=alice
password="$(kc -n "${DEMO_NAMESPACE}" get secret alice-password -o jsonpath='{.data.password}' | base64 -d)"

step "port-forward 127.0.0.1:${DEMO_PORT} -> service/${REG}:${port}"
pflog="$(mktemp)"
# Not through kc: a backgrounded function is a subshell, and its PID is not kubectl's.
"${KUBECTL}" -n "${DEMO_NAMESPACE}" port-forward --address 127.0.0.1 "service/${REG}" "${DEMO_PORT}:${port}" >"${pflog}" 2>&1 &
pf=$!
cleanup() { kill "${pf}" 2>/dev/null || true; wait "${pf}" 2>/dev/null || true; rm -f "${pflog}"; }
trap cleanup EXIT
for _ in {1..50}; do
  code="$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:${DEMO_PORT}/v2/" || true)"
  [[ "${code}" == 401 ]] && break
  kill -0 "${pf}" 2>/dev/null || { cat "${pflog}" >&2; die "kubectl port-forward exited"; }
  sleep 0.2
done
[[ "${code}" == 401 ]] || { cat "${pflog}" >&2; die "no answer through the port-forward (last status ${code})"; }
log "anonymous GET /v2/ is refused: ${code}"

step "pushing and pulling an image as ${user}, then making garbage"
(cd "${ROOT}" && PUSHPULL_PASSWORD="${password}" go run ./hack/pushpull \
  -ref "127.0.0.1:${DEMO_PORT}/demo/hello:v1" -user "${user}" -insecure -garbage 3)

cleanup
trap - EXIT

# The garbage is seconds old: the default grace period (1h) would keep it,
# as it keeps the layers of a push that straddles a run, so this run says 0s.
gc="demo-gc-$(date +%s)"
step "collecting garbage: GarbageCollection ${gc} (gracePeriod 0s)"
printf 'apiVersion: berth.dev/v1alpha1\nkind: GarbageCollection\nmetadata: {name: %s}\nspec: {registryName: %s, gracePeriod: 0s}\n' \
  "${gc}" "${REG}" | kc -n "${DEMO_NAMESPACE}" create -f - >&2
phase=""
for _ in {1..600}; do
  phase="$(kc -n "${DEMO_NAMESPACE}" get garbagecollection "${gc}" -o jsonpath='{.status.phase}')"
  [[ "${phase}" == Succeeded || "${phase}" == Failed ]] && break
  sleep 0.5
done
kc -n "${DEMO_NAMESPACE}" get garbagecollections >&2
[[ "${phase}" == Succeeded ]] || { kc -n "${DEMO_NAMESPACE}" get garbagecollection "${gc}" -o yaml >&2; die "GarbageCollection ${gc}: ${phase:-no phase}"; }
log "$(kc -n "${DEMO_NAMESPACE}" get garbagecollection "${gc}" -o jsonpath='{.status.message}; writes were refused for {.status.writeOutage.duration}; the collector ran {.status.summary.duration}')"
kc -n "${DEMO_NAMESPACE}" get registries >&2
cat <<EOF2

Berth is running a registry for you ($((SECONDS - START)) s). Reach it with:

  export KUBECONFIG=${KUBECONFIG}
  ${KUBECTL} -n ${DEMO_NAMESPACE} port-forward service/${REG} ${DEMO_PORT}:${port}
  # then, in another shell: URL http://127.0.0.1:${DEMO_PORT}/v2/
  #   users (passwords in Secrets alice-password and bob-password):
  #   alice / ${password}
  curl -u alice:${password} http://127.0.0.1:${DEMO_PORT}/v2/_catalog
  PUSHPULL_PASSWORD=${password} go run ./hack/pushpull -ref 127.0.0.1:${DEMO_PORT}/demo/hello:v2 -user alice -insecure

  ${KUBECTL} -n ${DEMO_NAMESPACE} get registries
  ${KUBECTL} -n ${DEMO_NAMESPACE} get garbagecollections   # get gc -w to watch a run
  make cluster-down     # when done: removes the cluster and everything in it
EOF2
