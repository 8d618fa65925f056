#!/usr/bin/env bash
# load-images.sh TARBALL... — import image tarballs (from `make images`) into
# the containerd of the cluster hack/cluster-up.sh started, where the kubelet
# finds them: a pod using the image's tag with imagePullPolicy IfNotPresent
# (the default for any tag but latest) runs it without a registry.
set -euo pipefail
# shellcheck source=hack/cluster-lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/cluster-lib.sh"

(($#)) || die "usage: $0 TARBALL..."
pid_of containerd >/dev/null || die "no cluster in ${CLUSTER_DIR}; run make cluster-up first"
for t in "$@"; do
  log "importing ${t}"
  ctr_ images import "${t}" >&2
done
