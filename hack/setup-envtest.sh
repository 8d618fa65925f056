#!/usr/bin/env bash
# setup-envtest.sh — provide kube-apiserver and etcd for envtest without
# downloading prebuilt binaries.
#
# kube-apiserver is compiled from the Go module proxy: `go install
# k8s.io/kubernetes/cmd/kube-apiserver@vX` is refused because k8s.io/kubernetes
# has replace directives in its go.mod, so we generate a tiny wrapper module
# that requires k8s.io/kubernetes vX and replaces each staging repository
# (k8s.io/api, k8s.io/apiserver, ...) with its published v0.Y.Z twin.
# etcd comes from Debian's etcd-server package (3.4.x), installed with apt when
# missing.
#
# Everything lands in bin/k8s/<version>/ and the script prints that directory
# (use it as KUBEBUILDER_ASSETS). A second run finds the binaries and returns
# in well under a second. Progress goes to stderr; stdout carries only the path.
#
# Environment:
#   K8S_VERSION        Kubernetes version to build (default: hack/k8s-version)
#   K8S_COMPONENTS     cmd/ packages to build (default: kube-apiserver)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
K8S_VERSION="${K8S_VERSION:-$(<"${ROOT}/hack/k8s-version")}"
K8S_COMPONENTS="${K8S_COMPONENTS:-kube-apiserver}"
DEST="${ROOT}/bin/k8s/${K8S_VERSION}"
BUILD="${ROOT}/bin/k8s/build-${K8S_VERSION}"

log() { echo "setup-envtest: $*" >&2; }

missing=()
for c in ${K8S_COMPONENTS}; do
  [[ -x "${DEST}/${c}" ]] || missing+=("${c}")
done

if ((${#missing[@]})); then
  log "building ${missing[*]} v${K8S_VERSION} from the Go module proxy (cold: several minutes)"
  mkdir -p "${BUILD}" "${DEST}"
  minor="${K8S_VERSION#*.}"; minor="${minor%%.*}"
  staging_version="v0.${K8S_VERSION#*.}"
  gomod="$(cd "${BUILD}" && GOFLAGS=-mod=mod go mod download -json "k8s.io/kubernetes@v${K8S_VERSION}" | sed -n 's/.*"GoMod": "\(.*\)",/\1/p')"
  {
    echo "module berth.dev/hack/k8s-build"
    echo
    echo "go 1.24"
    echo
    echo "require k8s.io/kubernetes v${K8S_VERSION}"
    echo
    # Every `k8s.io/foo => ./staging/src/k8s.io/foo` becomes `k8s.io/foo => k8s.io/foo v0.Y.Z`.
    sed -n 's#^[[:space:]]*\(k8s\.io/[^[:space:]]*\)[[:space:]]*=>[[:space:]]*\./staging/.*#replace \1 => \1 '"${staging_version}"'#p' "${gomod}"
  } > "${BUILD}/go.mod.new"
  if ! grep -q '^replace ' "${BUILD}/go.mod.new"; then
    log "found no staging replace directives in ${gomod}"; exit 1
  fi
  mv "${BUILD}/go.mod.new" "${BUILD}/go.mod"
  pkgs=()
  for c in "${missing[@]}"; do pkgs+=("k8s.io/kubernetes/cmd/${c}"); done
  ldflags="-s -w"
  ldflags+=" -X k8s.io/component-base/version.gitVersion=v${K8S_VERSION}"
  ldflags+=" -X k8s.io/component-base/version.gitMajor=1"
  ldflags+=" -X k8s.io/component-base/version.gitMinor=${minor}"
  ldflags+=" -X k8s.io/component-base/version.gitTreeState=clean"
  ldflags+=" -X k8s.io/component-base/version.buildDate=1970-01-01T00:00:00Z"
  # One `go build` of several main packages shares the compile of their common deps.
  (cd "${BUILD}" && CGO_ENABLED=0 GOFLAGS=-mod=mod go build -trimpath -ldflags "${ldflags}" -o "${DEST}/" "${pkgs[@]}")
fi

if [[ ! -x "${DEST}/etcd" ]]; then
  if ! command -v etcd >/dev/null 2>&1 && [[ ! -x /usr/bin/etcd ]]; then
    log "installing etcd from Debian's etcd-server package"
    SUDO=""; [[ "$(id -u)" == 0 ]] || SUDO="sudo"
    export DEBIAN_FRONTEND=noninteractive
    ${SUDO} apt-get install -y -q etcd-server >&2 || { ${SUDO} apt-get update -q >&2 && ${SUDO} apt-get install -y -q etcd-server >&2; }
    # The package starts a system etcd on :2379; envtest picks free ports, but stop it anyway.
    if command -v systemctl >/dev/null 2>&1; then ${SUDO} systemctl disable --now etcd >/dev/null 2>&1 || true; fi
  fi
  mkdir -p "${DEST}"
  cp "$(command -v etcd || echo /usr/bin/etcd)" "${DEST}/etcd"
fi

"${DEST}/kube-apiserver" --version >&2
echo "${DEST}"
