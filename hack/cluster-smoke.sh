#!/usr/bin/env bash
# cluster-smoke.sh — prove the local cluster (hack/cluster-up.sh) works end to
# end with images built here: registryd (REGISTRYD_IMG, from `make images`)
# runs as a non-root Deployment on a PersistentVolumeClaim behind a Service;
# a busybox pod (Debian's static busybox packed by hack/imgbuild) resolves the
# Service through CoreDNS, reaches it through kube-proxy and starts an upload,
# which lands in the claim's directory on the node. Deleting the namespace
# releases the claim and the provisioner removes its volume.
set -euo pipefail
# shellcheck source=hack/cluster-lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/cluster-lib.sh"

REGISTRYD_IMG="${REGISTRYD_IMG:?set REGISTRYD_IMG to the tag make images built}"
BUSYBOX_IMG="${BUSYBOX_IMG:-berth/busybox:dev}"
NS=berth-smoke
pid_of kubelet >/dev/null || die "no cluster in ${CLUSTER_DIR}; run make cluster-up first"

if [[ ! -x /bin/busybox ]]; then
  log "installing Debian's busybox-static"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q busybox-static >&2
fi
(cd "${ROOT}" && go run ./hack/imgbuild -tag "${BUSYBOX_IMG}" -o "${IMAGES_DIR}/busybox.tar" \
  -add /bin/busybox:/bin/busybox -entrypoint /bin/busybox >&2)
"${ROOT}/hack/load-images.sh" "${IMAGES_DIR}/busybox.tar" "${IMAGES_DIR}/registryd.tar"

kubectl_ delete namespace "${NS}" --ignore-not-found --wait >/dev/null
kubectl_ apply -f - >/dev/null <<EOF
apiVersion: v1
kind: Namespace
metadata: {name: ${NS}}
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: registry, namespace: ${NS}}
spec:
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: 1Gi}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: registryd, namespace: ${NS}}
spec:
  selector: {matchLabels: {app: registryd}}
  template:
    metadata: {labels: {app: registryd}}
    spec:
      securityContext: {runAsNonRoot: true}
      containers:
      - name: registryd
        image: ${REGISTRYD_IMG}
        ports: [{containerPort: 5000}]
        readinessProbe: {httpGet: {path: /v2/, port: 5000}}
        volumeMounts: [{name: data, mountPath: /var/lib/registry}]
      volumes:
      - name: data
        persistentVolumeClaim: {claimName: registry}
---
apiVersion: v1
kind: Service
metadata: {name: registryd, namespace: ${NS}}
spec:
  selector: {app: registryd}
  ports: [{port: 5000}]
EOF
kubectl_ -n "${NS}" rollout status deployment/registryd --timeout=120s >&2
kubectl_ -n "${NS}" get pvc registry >&2

kubectl_ apply -f - >/dev/null <<EOF
apiVersion: v1
kind: Pod
metadata: {name: client, namespace: ${NS}}
spec:
  restartPolicy: Never
  securityContext: {runAsNonRoot: true}
  containers:
  - name: client
    image: ${BUSYBOX_IMG}
    args:
    - sh
    - -ec
    - |
      /bin/busybox nslookup registryd.${NS}.svc.${CLUSTER_DOMAIN}
      /bin/busybox wget -q -O- http://registryd:5000/v2/
      echo
      /bin/busybox wget -q -S -O- --post-data= http://registryd:5000/v2/smoke/blobs/uploads/ 2>&1 | /bin/busybox grep -i '^ *location'
EOF
kubectl_ -n "${NS}" wait --for=jsonpath='{.status.phase}'=Succeeded pod/client --timeout=120s >&2 || {
  kubectl_ -n "${NS}" logs client >&2 || true
  die "client pod did not succeed"
}
kubectl_ -n "${NS}" logs client >&2

pv="$(kubectl_ -n "${NS}" get pvc registry -o jsonpath='{.spec.volumeName}')"
uploads="${CLUSTER_DIR}/volumes/${pv}/docker/registry/v2/repositories/smoke/_uploads"
[[ -d "${uploads}" ]] || die "no upload in the claim's directory ${uploads}"
log "upload landed on the volume: ${uploads}/$(ls "${uploads}")"

kubectl_ delete namespace "${NS}" --wait --timeout=120s >/dev/null
for _ in {1..60}; do
  kubectl_ get pv "${pv}" >/dev/null 2>&1 || break
  sleep 1
done
kubectl_ get pv "${pv}" >/dev/null 2>&1 && die "volume ${pv} was not deleted after its claim"
[[ -e "${CLUSTER_DIR}/volumes/${pv}" ]] && die "directory of ${pv} was not removed"
log "smoke test passed: image, DNS, Service, PVC, volume reclaim"
