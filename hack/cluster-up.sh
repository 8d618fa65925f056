#!/usr/bin/env bash
# cluster-up.sh — a real single-node Kubernetes cluster on this machine, with
# no Docker, no kind and no downloads beyond the Go module proxy and Debian's
# packages. See docs/local-cluster.md for what runs where.
#
# The node is a network namespace (berth-<CLUSTER_NAME>) joined to the host by
# a veth pair: the host end has HOST_IP, the node end NODE_IP. Every
# component runs as a plain process inside that namespace, so the pod bridge,
# kube-proxy's iptables rules and every listening port belong to the cluster,
# not to the machine, and `ip netns delete` takes them all away. Processes
# share the host's mount namespace (volumes mounted by the kubelet are seen by
# containerd) and put pods under their own cgroup root, /berth-<CLUSTER_NAME>.
#
# Idempotent: a second run starts only what is not running and rewrites a
# configuration only when its content changed. All state lives under
# CLUSTER_DIR. Needs root. Prints the admin kubeconfig's path on stdout.
set -euo pipefail
# shellcheck source=hack/cluster-lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/cluster-lib.sh"

[[ "$(id -u)" == 0 ]] || die "needs root (network namespaces, cgroups, containerd)"
START="${SECONDS}"

# --- prerequisites ---------------------------------------------------------

ensure_packages() {
  local need=() p
  command -v containerd >/dev/null || need+=(containerd)
  command -v runc >/dev/null || need+=(runc)
  [[ -x /usr/lib/cni/bridge ]] || need+=(containernetworking-plugins)
  command -v iptables >/dev/null || need+=(iptables)
  command -v conntrack >/dev/null || need+=(conntrack)
  command -v openssl >/dev/null || need+=(openssl)
  command -v nsenter >/dev/null || need+=(util-linux)
  ((${#need[@]})) || return 0
  log "installing Debian packages: ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q "${need[@]}" >&2 || { apt-get update -q >&2 && apt-get install -y -q "${need[@]}" >&2; }
  # The containerd package may start a system containerd; ours is separate, but leave the machine as it was.
  for p in containerd; do
    if command -v systemctl >/dev/null 2>&1; then systemctl disable --now "${p}" >/dev/null 2>&1 || true; fi
  done
}

ensure_binaries() {
  # One `go build` for all components (shared compile), through the same
  # wrapper module as envtest's kube-apiserver.
  K8S_VERSION="${K8S_VERSION}" \
    K8S_COMPONENTS="kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl" \
    "${ROOT}/hack/setup-envtest.sh" >/dev/null
  if [[ ! -x "${COREDNS_BIN}" ]]; then
    log "building CoreDNS ${COREDNS_VERSION} from the Go module proxy"
    mkdir -p "$(dirname "${COREDNS_BIN}")"
    (cd "${ROOT}" && GOFLAGS=-mod=mod CGO_ENABLED=0 GOBIN="$(dirname "${COREDNS_BIN}")" \
      go install -trimpath -ldflags "-s -w" "github.com/coredns/coredns@${COREDNS_VERSION}")
  fi
  (cd "${ROOT}" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o bin/pause ./hack/images/pause \
    && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o bin/local-volumes ./hack/local-volumes \
    && go build -o bin/imgbuild ./hack/imgbuild)
  "${ROOT}/bin/imgbuild" -tag "${PAUSE_IMG}" -o "${IMAGES_DIR}/pause.tar" \
    -add "${ROOT}/bin/pause:/pause" -entrypoint /pause -user 65535 -ca "" >&2
  "${ROOT}/bin/imgbuild" -tag "${COREDNS_IMG}" -o "${IMAGES_DIR}/coredns.tar" \
    -add "${COREDNS_BIN}:/coredns" -entrypoint /coredns -port 1053/udp -port 1053/tcp >&2
}

# --- certificates ----------------------------------------------------------

# cert NAME CN [O] [SANS]: a key and a certificate signed by the cluster CA.
cert() {
  local name=$1 cn=$2 org=${3:-} sans=${4:-}
  [[ -f "${PKI}/${name}.crt" ]] && return 0
  local subj="/CN=${cn}"
  [[ -n "${org}" ]] && subj="/O=${org}${subj}"
  openssl ecparam -name prime256v1 -genkey -noout -out "${PKI}/${name}.key" 2>/dev/null
  openssl req -new -key "${PKI}/${name}.key" -subj "${subj}" -out "${PKI}/${name}.csr" 2>/dev/null
  {
    echo "basicConstraints=critical,CA:FALSE"
    echo "keyUsage=critical,digitalSignature,keyEncipherment"
    echo "extendedKeyUsage=clientAuth,serverAuth"
    [[ -n "${sans}" ]] && echo "subjectAltName=${sans}"
  } > "${PKI}/${name}.ext"
  openssl x509 -req -in "${PKI}/${name}.csr" -CA "${PKI}/ca.crt" -CAkey "${PKI}/ca.key" -CAcreateserial \
    -days 3650 -sha256 -extfile "${PKI}/${name}.ext" -out "${PKI}/${name}.crt" 2>/dev/null
  rm -f "${PKI}/${name}.csr" "${PKI}/${name}.ext"
}

# kubeconfig NAME CERT: a kubeconfig for the identity in pki/CERT.{crt,key}.
kubeconfig() {
  local file=$1 id=$2
  [[ -f "${file}" ]] && return 0
  cat > "${file}.tmp" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: ${CLUSTER_NAME}
  cluster:
    server: https://${NODE_IP}:${APISERVER_PORT}
    certificate-authority-data: $(base64 -w0 < "${PKI}/ca.crt")
users:
- name: ${id}
  user:
    client-certificate-data: $(base64 -w0 < "${PKI}/${id}.crt")
    client-key-data: $(base64 -w0 < "${PKI}/${id}.key")
contexts:
- name: ${CLUSTER_NAME}
  context: {cluster: ${CLUSTER_NAME}, user: ${id}}
current-context: ${CLUSTER_NAME}
EOF
  chmod 600 "${file}.tmp"
  mv "${file}.tmp" "${file}"
}

ensure_pki() {
  mkdir -p "${PKI}"
  chmod 700 "${PKI}"
  if [[ ! -f "${PKI}/ca.crt" ]]; then
    openssl ecparam -name prime256v1 -genkey -noout -out "${PKI}/ca.key" 2>/dev/null
    openssl req -x509 -new -key "${PKI}/ca.key" -subj "/CN=berth-local-ca-${CLUSTER_NAME}" -days 3650 -sha256 \
      -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature" \
      -out "${PKI}/ca.crt" 2>/dev/null
  fi
  if [[ ! -f "${PKI}/sa.key" ]]; then
    openssl ecparam -name prime256v1 -genkey -noout -out "${PKI}/sa.key" 2>/dev/null
    openssl ec -in "${PKI}/sa.key" -pubout -out "${PKI}/sa.pub" 2>/dev/null
  fi
  local svc="DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.${CLUSTER_DOMAIN}"
  cert apiserver kube-apiserver "" "${svc},DNS:localhost,IP:${NODE_IP},IP:${KUBERNETES_SVC_IP},IP:127.0.0.1"
  cert apiserver-kubelet-client kube-apiserver-kubelet-client system:masters
  cert admin kubernetes-admin system:masters
  cert kube-controller-manager system:kube-controller-manager
  cert kube-scheduler system:kube-scheduler
  cert kube-proxy system:kube-proxy
  cert kubelet-client "system:node:${NODE_NAME}" system:nodes
  cert kubelet "${NODE_NAME}" "" "DNS:${NODE_NAME},IP:${NODE_IP}"
  cert local-volumes system:berth:local-volumes
  kubeconfig "${KUBECONFIG_ADMIN}" admin
  local c
  for c in kube-controller-manager kube-scheduler kube-proxy kubelet-client local-volumes; do
    kubeconfig "${CLUSTER_DIR}/${c}.kubeconfig" "${c}"
  done
}

# --- node network and cgroups ----------------------------------------------

ensure_netns() {
  [[ -e "/run/netns/${NETNS}" ]] || ip netns add "${NETNS}"
  if ! ip link show "${HOST_VETH}" >/dev/null 2>&1; then
    ip link add "${HOST_VETH}" type veth peer name node0 netns "${NETNS}"
    ip addr add "${HOST_IP}/${LINK_PREFIX}" dev "${HOST_VETH}"
    ip link set "${HOST_VETH}" up
  fi
  ip -n "${NETNS}" link set lo up
  ip -n "${NETNS}" addr replace "${NODE_IP}/${LINK_PREFIX}" dev node0
  ip -n "${NETNS}" link set node0 up
  # No default route on purpose: pods reach the node and each other, never
  # the network outside the machine.
  in_ns sysctl -qw net.ipv4.ip_forward=1 net.bridge.bridge-nf-call-iptables=1
  # Pods reach the host end of the link too (a peer a test runs on the
  # machine, e.g. an S3 server): the host has no route to the pod range,
  # so their packets leave the node with the node's address.
  local masq=(POSTROUTING -s "${POD_CIDR}" -d "${HOST_IP}/32" -j MASQUERADE)
  in_ns iptables -t nat -C "${masq[@]}" 2>/dev/null || in_ns iptables -t nat -A "${masq[@]}"
}

in_ns() { nsenter --net="/run/netns/${NETNS}" -- "$@"; }

ensure_cgroups() {
  local h
  for h in /sys/fs/cgroup/*/; do
    [[ -f "${h}cgroup.procs" ]] || continue
    mkdir -p "${h}${CGROUP_ROOT#/}"
    if [[ -f "${h}cpuset.cpus" && ! -s "${h}${CGROUP_ROOT#/}/cpuset.cpus" ]]; then
      cat "${h}cpuset.cpus" > "${h}${CGROUP_ROOT#/}/cpuset.cpus"
      cat "${h}cpuset.mems" > "${h}${CGROUP_ROOT#/}/cpuset.mems"
    fi
  done
}

# --- configuration files ---------------------------------------------------

# put FILE: write stdin to FILE when the content differs; fail if it differs
# and the component that reads it ($2) is running (kube-proxy exits when its
# configuration file changes under it; the others would silently keep the
# old one).
put() {
  local file=$1 reader=${2:-} tmp
  tmp="$(mktemp "${file}.XXXX")"
  cat > "${tmp}"
  if [[ -f "${file}" ]] && cmp -s "${tmp}" "${file}"; then rm -f "${tmp}"; return 0; fi
  if [[ -n "${reader}" ]] && pid_of "${reader}" >/dev/null; then
    rm -f "${tmp}"
    die "${file} would change while ${reader} runs; run hack/cluster-down.sh first"
  fi
  mv "${tmp}" "${file}"
}

write_configs() {
  mkdir -p "${CLUSTER_DIR}"/{containerd,cni/net.d,cni/ipam,kubelet,pod-logs,volumes,etcd} "${LOGS}" "${PIDS}"
  chmod 700 "${CLUSTER_DIR}/etcd"

  put "${CLUSTER_DIR}/containerd/config.toml" containerd <<EOF
version = 2
root = "${CLUSTER_DIR}/containerd/root"
state = "${CLUSTER_DIR}/containerd/state"
oom_score = 0
[grpc]
  address = "${CONTAINERD_SOCK}"
[ttrpc]
  address = "${CONTAINERD_SOCK}.ttrpc"
[plugins."io.containerd.internal.v1.opt"]
  path = "${CLUSTER_DIR}/containerd/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "docker.io/${PAUSE_IMG}"
  # CAP_SYS_RESOURCE is not ours: runc cannot set a negative oom_score_adj.
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  disable_apparmor = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        BinaryName = "$(command -v runc)"
        Root = "${CLUSTER_DIR}/containerd/runc"
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "${CLUSTER_DIR}/cni/net.d"
    max_conf_num = 1
EOF

  put "${CLUSTER_DIR}/cni/net.d/10-berth.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "berth-${CLUSTER_NAME}",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "cni0",
      "isGateway": true,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "dataDir": "${CLUSTER_DIR}/cni/ipam",
        "ranges": [[{"subnet": "${POD_CIDR}"}]],
        "routes": [{"dst": "0.0.0.0/0"}]
      }
    },
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
EOF

  # Pods with dnsPolicy Default (CoreDNS itself) get this file: no upstream
  # name server of the machine leaks into the cluster.
  put "${CLUSTER_DIR}/resolv.conf" <<EOF
nameserver ${UPSTREAM_DNS:-127.0.0.1}
EOF

  put "${CLUSTER_DIR}/kubelet/config.yaml" kubelet <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: ${PKI}/ca.crt}
authorization: {mode: Webhook}
address: ${NODE_IP}
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
tlsCertFile: ${PKI}/kubelet.crt
tlsPrivateKeyFile: ${PKI}/kubelet.key
containerRuntimeEndpoint: unix://${CONTAINERD_SOCK}
cgroupDriver: cgroupfs
cgroupRoot: ${CGROUP_ROOT}
# These machines run cgroup v1; kubelet 1.33 still supports it when asked.
failCgroupV1: false
clusterDNS: [${CLUSTER_DNS_IP}]
clusterDomain: ${CLUSTER_DOMAIN}
resolvConf: ${CLUSTER_DIR}/resolv.conf
podLogsDir: ${CLUSTER_DIR}/pod-logs
failSwapOn: false
# A development disk fills up; do not evict the cluster for it.
evictionHard: {memory.available: 100Mi, nodefs.available: 1%, imagefs.available: 1%}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
serializeImagePulls: false
volumePluginDir: ${CLUSTER_DIR}/kubelet/volume-plugins
EOF

  put "${CLUSTER_DIR}/kube-proxy.yaml" kube-proxy <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection:
  kubeconfig: ${CLUSTER_DIR}/kube-proxy.kubeconfig
hostnameOverride: ${NODE_NAME}
mode: iptables
clusterCIDR: ${POD_CIDR}
bindAddress: ${NODE_IP}
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
nodePortAddresses: [${NODE_IP}/32]
# Leave the machine-wide conntrack sysctls alone.
conntrack:
  maxPerCore: 0
  min: 0
  tcpEstablishedTimeout: 0s
  tcpCloseWaitTimeout: 0s
EOF
}

# note_machine_dirs records the machine-wide directories the kubelet,
# containerd and the CNI plugins create if missing, so cluster-down removes
# them again when they are empty.
note_machine_dirs() {
  local d
  for d in "${MACHINE_DIRS[@]}"; do
    if [[ ! -e "${d}" ]] && ! grep -qxF "${d}" "${CLUSTER_DIR}/created-dirs" 2>/dev/null; then
      echo "${d}" >> "${CLUSTER_DIR}/created-dirs"
    fi
  done
}

# --- processes -------------------------------------------------------------

# start NAME BINARY ARGS...: run BINARY inside the node's network namespace,
# unless NAME already runs. The PID file holds the PID and the binary, so a
# reused PID is never taken for ours.
start() {
  local name=$1 bin=$2
  shift 2
  if pid_of "${name}" >/dev/null; then return 0; fi
  log "starting ${name}"
  nsenter --net="/run/netns/${NETNS}" -- "${bin}" "$@" </dev/null >>"${LOGS}/${name}.log" 2>&1 &
  echo "$! $(readlink -f "${bin}")" > "${PIDS}/${name}.pid"
}

# wait_for WHAT SECONDS COMMAND...: poll COMMAND until it succeeds.
wait_for() {
  local what=$1 timeout=$2 deadline
  shift 2
  deadline=$((SECONDS + timeout))
  until "$@" >/dev/null 2>&1; do
    if ((SECONDS >= deadline)); then
      die "timed out after ${timeout}s waiting for ${what} (logs: ${LOGS})"
    fi
    sleep 0.5
  done
}

start_components() {
  local K="${K8S_BIN}"
  start etcd "${K}/etcd" --name "${NODE_NAME}" --data-dir "${CLUSTER_DIR}/etcd" \
    --listen-client-urls http://127.0.0.1:2379 --advertise-client-urls http://127.0.0.1:2379 \
    --listen-peer-urls http://127.0.0.1:2380 --initial-advertise-peer-urls http://127.0.0.1:2380 \
    --initial-cluster "${NODE_NAME}=http://127.0.0.1:2380" --listen-metrics-urls http://127.0.0.1:2381

  start containerd "$(command -v containerd)" --config "${CLUSTER_DIR}/containerd/config.toml"

  start kube-apiserver "${K}/kube-apiserver" \
    --advertise-address "${NODE_IP}" --secure-port "${APISERVER_PORT}" \
    --etcd-servers http://127.0.0.1:2379 \
    --service-cluster-ip-range "${SERVICE_CIDR}" \
    --client-ca-file "${PKI}/ca.crt" \
    --tls-cert-file "${PKI}/apiserver.crt" --tls-private-key-file "${PKI}/apiserver.key" \
    --kubelet-client-certificate "${PKI}/apiserver-kubelet-client.crt" \
    --kubelet-client-key "${PKI}/apiserver-kubelet-client.key" \
    --kubelet-certificate-authority "${PKI}/ca.crt" \
    --kubelet-preferred-address-types InternalIP \
    --service-account-issuer "https://kubernetes.default.svc.${CLUSTER_DOMAIN}" \
    --service-account-key-file "${PKI}/sa.pub" \
    --service-account-signing-key-file "${PKI}/sa.key" \
    --authorization-mode Node,RBAC \
    --enable-admission-plugins NodeRestriction \
    --allow-privileged=true \
    --profiling=false

  wait_for "containerd" 60 ctr_ version
  log "importing ${PAUSE_IMG} and ${COREDNS_IMG}"
  ctr_ images import "${IMAGES_DIR}/pause.tar" >/dev/null
  ctr_ images import "${IMAGES_DIR}/coredns.tar" >/dev/null

  wait_for "kube-apiserver" 120 kubectl_ get --raw /readyz
  apply_addons

  start kube-controller-manager "${K}/kube-controller-manager" \
    --kubeconfig "${CLUSTER_DIR}/kube-controller-manager.kubeconfig" \
    --authentication-kubeconfig "${CLUSTER_DIR}/kube-controller-manager.kubeconfig" \
    --authorization-kubeconfig "${CLUSTER_DIR}/kube-controller-manager.kubeconfig" \
    --bind-address 127.0.0.1 \
    --cluster-signing-cert-file "${PKI}/ca.crt" --cluster-signing-key-file "${PKI}/ca.key" \
    --root-ca-file "${PKI}/ca.crt" \
    --service-account-private-key-file "${PKI}/sa.key" \
    --use-service-account-credentials=true \
    --service-cluster-ip-range "${SERVICE_CIDR}" \
    --flex-volume-plugin-dir "${CLUSTER_DIR}/kube-controller-manager/volume-plugins" \
    --leader-elect=false

  start kube-scheduler "${K}/kube-scheduler" \
    --kubeconfig "${CLUSTER_DIR}/kube-scheduler.kubeconfig" \
    --authentication-kubeconfig "${CLUSTER_DIR}/kube-scheduler.kubeconfig" \
    --authorization-kubeconfig "${CLUSTER_DIR}/kube-scheduler.kubeconfig" \
    --bind-address 127.0.0.1 --leader-elect=false

  start kubelet "${K}/kubelet" \
    --config "${CLUSTER_DIR}/kubelet/config.yaml" \
    --kubeconfig "${CLUSTER_DIR}/kubelet-client.kubeconfig" \
    --root-dir "${CLUSTER_DIR}/kubelet" \
    --hostname-override "${NODE_NAME}" --node-ip "${NODE_IP}"

  start kube-proxy "${K}/kube-proxy" --config "${CLUSTER_DIR}/kube-proxy.yaml"

  start local-volumes "${ROOT}/bin/local-volumes" \
    --kubeconfig "${CLUSTER_DIR}/local-volumes.kubeconfig" \
    --node "${NODE_NAME}" --root "${CLUSTER_DIR}/volumes"
}

# --- add-ons ---------------------------------------------------------------

apply_addons() {
  local corefile_forward=""
  [[ -n "${UPSTREAM_DNS}" ]] && corefile_forward="forward . ${UPSTREAM_DNS}"
  sed -e "s|@COREDNS_IMG@|${COREDNS_IMG}|g" -e "s|@CLUSTER_DNS_IP@|${CLUSTER_DNS_IP}|g" \
    -e "s|@CLUSTER_DOMAIN@|${CLUSTER_DOMAIN}|g" -e "s|@FORWARD@|${corefile_forward}|g" \
    "${ROOT}/hack/cluster/addons.yaml" | kubectl_ apply --server-side --force-conflicts -f - >/dev/null
}

ensure_packages
ensure_binaries
save_env
ensure_pki
write_configs
ensure_netns
ensure_cgroups
note_machine_dirs
start_components
log "binaries ready, components started in $((SECONDS - START))s; waiting for the node"
wait_for "node ${NODE_NAME} Ready" 180 kubectl_ wait --for=condition=Ready "node/${NODE_NAME}" --timeout=5s
log "node ${NODE_NAME} Ready after $((SECONDS - START))s"
wait_for "CoreDNS" 180 kubectl_ -n kube-system rollout status deployment/coredns --timeout=5s
log "cluster up in $((SECONDS - START))s; use: export KUBECONFIG=${KUBECONFIG_ADMIN}"
echo "${KUBECONFIG_ADMIN}"
