#!/usr/bin/env bash
# cluster-down.sh — stop the cluster hack/cluster-up.sh started and leave the
# machine as it was: no process, mount, network namespace, interface,
# iptables rule or cgroup of the cluster remains. Then CLUSTER_DIR is
# removed (KEEP_STATE=1 keeps it, e.g. to read the logs). Safe to run twice,
# and on a cluster that never came fully up.
set -euo pipefail
# shellcheck source=hack/cluster-lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/cluster-lib.sh"

[[ "$(id -u)" == 0 ]] || die "needs root"
KEEP_STATE="${KEEP_STATE:-0}"

# stop NAME [SECONDS]: SIGTERM, up to SECONDS (15) to exit, then SIGKILL; by
# PID file only.
stop() {
  local name=$1 grace=${2:-15} pid i
  pid="$(pid_of "${name}")" || { rm -f "${PIDS}/${name}.pid"; return 0; }
  log "stopping ${name} (pid ${pid})"
  kill -TERM "${pid}" 2>/dev/null || true
  for ((i = 0; i < grace * 10; i++)); do
    [[ -e "/proc/${pid}" ]] || break
    sleep 0.1
  done
  if [[ -e "/proc/${pid}" ]]; then
    log "${name} ignored SIGTERM; killing it"
    kill -KILL "${pid}" 2>/dev/null || true
    while [[ -e "/proc/${pid}" ]]; do sleep 0.1; done
  fi
  rm -f "${PIDS}/${name}.pid"
}

# remove_containers asks our containerd to kill and delete every container
# (pods and their sandboxes), so each shim exits and unmounts its rootfs.
remove_containers() {
  pid_of containerd >/dev/null || return 0
  local id status
  for id in $(ctr_ tasks list -q 2>/dev/null || true); do
    ctr_ tasks kill --all --signal SIGKILL "${id}" >/dev/null 2>&1 || true
  done
  # A killed task is deleted by us once STOPPED, or by containerd itself when
  # it sees its shim go; wait until none is left.
  for _ in {1..50}; do
    local left=0
    while read -r id _ status; do
      left=1
      if [[ "${status}" == STOPPED ]]; then ctr_ tasks delete "${id}" >/dev/null 2>&1 || true; fi
    done < <(ctr_ tasks list 2>/dev/null | tail -n +2)
    ((left)) || break
    sleep 0.2
  done
  for id in $(ctr_ containers list -q 2>/dev/null || true); do
    ctr_ containers delete "${id}" >/dev/null 2>&1 || true
    # No CNI DEL runs for a sandbox removed this way: drop libcni's cached result.
    rm -f /var/lib/cni/results/*-"${id}"-*
  done
}

# cgroup_pids prints every process in the cluster's cgroup tree.
cgroup_pids() {
  local h
  for h in /sys/fs/cgroup/*/"${CGROUP_ROOT#/}"; do
    [[ -d "${h}" ]] && find "${h}" -name cgroup.procs -exec cat {} + 2>/dev/null
  done | sort -un
}

# our_shims prints the PIDs of the containerd shims that serve our containerd.
our_shims() {
  local p
  for p in /proc/[0-9]*; do
    tr '\0' ' ' 2>/dev/null < "${p}/cmdline" | grep -q -- "-address ${CONTAINERD_SOCK} " && echo "${p#/proc/}"
  done
  return 0
}

# kill_pids SIGNAL PIDS...: tolerate processes that already exited.
kill_pids() {
  local sig=$1
  shift
  (($#)) || return 0
  kill "-${sig}" "$@" 2>/dev/null || true
}

# mounts_under DIR prints the mount points below DIR, deepest first.
mounts_under() {
  awk -v d="$1/" 'index($5, d) == 1 { print length($5), $5 }' /proc/self/mountinfo | sort -rn | cut -d' ' -f2-
}

[[ -d "${CLUSTER_DIR}" ]] || log "no state in ${CLUSTER_DIR}; cleaning up what may be left of ${NETNS}"

# The kubelet first, so nothing restarts what we remove; containerd and etcd last.
for c in local-volumes kube-proxy kubelet kube-scheduler kube-controller-manager; do stop "${c}"; done
# Once its clients are gone the apiserver stops serving at once but lingers
# well past 15 s before it exits; it keeps no state of its own.
stop kube-apiserver 3
remove_containers
stop containerd
stop etcd

# Whatever the containerd could not remove: container processes by cgroup,
# then shims by the socket they serve.
# shellcheck disable=SC2046
kill_pids KILL $(cgroup_pids)
# shellcheck disable=SC2046
kill_pids KILL $(our_shims)
for _ in {1..50}; do
  [[ -z "$(cgroup_pids)$(our_shims)" ]] && break
  sleep 0.1
done

# Mounts: volumes, secrets, container root file systems, pod network namespaces.
while read -r m; do
  [[ -n "${m}" ]] || continue
  umount "${m}" 2>/dev/null || umount -l "${m}"
done < <(mounts_under "${CLUSTER_DIR}")

# cgroups, deepest first.
for h in /sys/fs/cgroup/*/"${CGROUP_ROOT#/}"; do
  [[ -d "${h}" ]] && find "${h}" -depth -type d -exec rmdir {} + 2>/dev/null || true
done

# The node's network: its namespace holds the pod bridge, the pods' veths and
# every iptables rule kube-proxy wrote.
ip link del "${HOST_VETH}" 2>/dev/null || true
[[ -e "/run/netns/${NETNS}" ]] && ip netns delete "${NETNS}"

# The kubelet links container logs into /var/log/containers.
if [[ -d /var/log/containers ]]; then
  find /var/log/containers -maxdepth 1 -type l -lname "${CLUSTER_DIR}/*" -delete
fi

# Machine-wide directories this cluster created, if nothing else uses them now.
if [[ -f "${CLUSTER_DIR}/created-dirs" ]]; then
  while read -r d; do
    # The kubelet's device-plugin socket ignores --root-dir.
    if [[ "${d}" == /var/lib/kubelet ]]; then rm -f /var/lib/kubelet/device-plugins/kubelet.sock; fi
    if [[ -d "${d}" ]]; then find "${d}" -depth -type d -empty -delete; fi
  done < "${CLUSTER_DIR}/created-dirs"
fi

left=""
[[ -n "$(cgroup_pids)$(our_shims)" ]] && left+=" processes"
[[ -n "$(mounts_under "${CLUSTER_DIR}")" ]] && left+=" mounts"
ls -d /sys/fs/cgroup/*/"${CGROUP_ROOT#/}" >/dev/null 2>&1 && left+=" cgroups"
[[ -e "/run/netns/${NETNS}" ]] && left+=" netns"
[[ -n "${left}" ]] && die "could not remove:${left}"

if [[ "${KEEP_STATE}" != 1 && -d "${CLUSTER_DIR}" ]]; then
  rm -rf --one-file-system "${CLUSTER_DIR}"
fi
log "cluster ${CLUSTER_NAME} is down"
