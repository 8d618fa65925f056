//go:build e2e

// Package e2e is the end-to-end suite (`make test-e2e`): it runs against
// the cluster in KUBECONFIG — normally the local one from `make
// cluster-up` (docs/local-cluster.md) — and is built only with -tags e2e.
//
// The suite installs Berth itself: `make load-images deploy` with the tags
// in E2E_IMG and E2E_REGISTRYD_IMG (default berth/manager:e2e and
// berth/registryd:e2e, so build, import and deploy agree whatever the tree
// state), and `make undeploy` at the end. E2E_SKIP_LOAD_IMAGES=1 skips the
// import, for a cluster that is not the local one and already has the
// images. Every spec works in its own namespace, deleted at the end.
//
// A Registry's PersistentVolumeClaim is one of its children, owned by it:
// deleting the Registry deletes the claim, and with the local cluster's
// StorageClass (reclaim policy Delete) the data with it. A user who wants
// to keep the data uses a StorageClass with reclaim policy Retain (or sets
// the bound PersistentVolume's persistentVolumeReclaimPolicy to Retain):
// the volume then outlives the claim. The suite checks this policy.
package e2e
