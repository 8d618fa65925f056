# cluster-lib.sh — settings and helpers shared by hack/cluster-up.sh,
# hack/cluster-down.sh and hack/load-images.sh. Sourced, not run.
#
# Every setting is an environment variable with a default. cluster-up.sh
# records the values it used in ${CLUSTER_DIR}/cluster.env; the other scripts
# read that file, so `make cluster-down` needs only the same CLUSTER_DIR.
#
# Two clusters on one machine need a different CLUSTER_DIR, CLUSTER_NAME and
# NODE_IP/HOST_IP pair; everything else lives inside the cluster's own
# network namespace and cannot clash.

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CLUSTER_DIR="${CLUSTER_DIR:-${ROOT}/bin/cluster}"
if [[ -f "${CLUSTER_DIR}/cluster.env" ]]; then
  # shellcheck disable=SC1091
  source "${CLUSTER_DIR}/cluster.env"
fi

K8S_VERSION="${K8S_VERSION:-$(<"${ROOT}/hack/k8s-version")}"
COREDNS_VERSION="${COREDNS_VERSION:-v1.15.0}"
# Short name: the network namespace is berth-<name>, the host end of the veth
# pair bh-<name> (interface names are limited to 15 bytes).
CLUSTER_NAME="${CLUSTER_NAME:-berth}"
NODE_NAME="${NODE_NAME:-${CLUSTER_NAME}}"
# The node's address (inside the namespace) and the host's end of the link.
HOST_IP="${HOST_IP:-10.211.0.1}"
NODE_IP="${NODE_IP:-10.211.0.2}"
LINK_PREFIX="${LINK_PREFIX:-30}"
APISERVER_PORT="${APISERVER_PORT:-6443}"
# Pod and Service ranges exist only inside the namespace.
POD_CIDR="${POD_CIDR:-10.244.0.0/24}"
SERVICE_CIDR="${SERVICE_CIDR:-10.96.0.0/16}"
KUBERNETES_SVC_IP="${KUBERNETES_SVC_IP:-10.96.0.1}"
CLUSTER_DNS_IP="${CLUSTER_DNS_IP:-10.96.0.10}"
CLUSTER_DOMAIN="${CLUSTER_DOMAIN:-cluster.local}"
# CoreDNS answers cluster names only; set to e.g. "192.0.2.53" to forward the rest.
UPSTREAM_DNS="${UPSTREAM_DNS:-}"
PAUSE_IMG="${PAUSE_IMG:-berth/pause:dev}"
COREDNS_IMG="${COREDNS_IMG:-berth/coredns:${COREDNS_VERSION}}"

NETNS="berth-${CLUSTER_NAME}"
HOST_VETH="bh-${CLUSTER_NAME:0:12}"
CGROUP_ROOT="/berth-${CLUSTER_NAME}"
K8S_BIN="${ROOT}/bin/k8s/${K8S_VERSION}"
COREDNS_BIN="${ROOT}/bin/coredns-${COREDNS_VERSION}/coredns"
IMAGES_DIR="${IMAGES_DIR:-${ROOT}/bin/images}"
PKI="${CLUSTER_DIR}/pki"
LOGS="${CLUSTER_DIR}/logs"
PIDS="${CLUSTER_DIR}/pids"
CONTAINERD_SOCK="${CLUSTER_DIR}/containerd/containerd.sock"
KUBECONFIG_ADMIN="${CLUSTER_DIR}/kubeconfig"
# Outside CLUSTER_DIR, made by the kubelet (/var/lib/kubelet even with
# another root dir, and the container log links), containerd's shims (their
# sockets) and libcni (its result cache). Which of them one cluster created
# is recorded in CLUSTER_DIR/created-dirs.
MACHINE_DIRS=(/var/lib/kubelet /var/log/containers /run/containerd /var/lib/cni)
# Order matters: cluster-down stops them in reverse.
COMPONENTS=(etcd containerd kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy local-volumes)

log() { echo "$(basename "$0"): $*" >&2; }
die() { log "$*"; exit 1; }

# save_env records the settings of this cluster for the other scripts.
save_env() {
  mkdir -p "${CLUSTER_DIR}"
  local v
  for v in K8S_VERSION COREDNS_VERSION CLUSTER_NAME NODE_NAME HOST_IP NODE_IP LINK_PREFIX \
    APISERVER_PORT POD_CIDR SERVICE_CIDR KUBERNETES_SVC_IP CLUSTER_DNS_IP CLUSTER_DOMAIN \
    UPSTREAM_DNS PAUSE_IMG COREDNS_IMG; do
    printf '%s=%q\n' "${v}" "${!v}"
  done > "${CLUSTER_DIR}/cluster.env"
}

# pid_of prints the PID of a running component, or fails. A PID file whose
# process is gone, or now runs another program, does not count.
pid_of() {
  local f="${PIDS}/$1.pid" pid exe
  [[ -f "${f}" ]] || return 1
  read -r pid exe < "${f}" || return 1
  [[ -n "${pid}" && -e "/proc/${pid}" ]] || return 1
  # A binary rebuilt while it runs shows as "<path> (deleted)": still ours.
  local now
  now="$(readlink "/proc/${pid}/exe" 2>/dev/null)" || return 1
  [[ "${now% (deleted)}" == "${exe}" ]] || return 1
  echo "${pid}"
}

# ctr_ runs ctr against this cluster's containerd, in the Kubernetes namespace.
ctr_() { ctr --address "${CONTAINERD_SOCK}" --namespace k8s.io "$@"; }

# kubectl_ runs kubectl as the cluster admin.
kubectl_() { "${K8S_BIN}/kubectl" --kubeconfig "${KUBECONFIG_ADMIN}" --cache-dir "${CLUSTER_DIR}/kubectl-cache" "$@"; }
