//go:build e2e

// Package e2e is the end-to-end suite (`make test-e2e`): it runs against
// the cluster in KUBECONFIG — normally the local one from `make
// cluster-up` (docs/local-cluster.md) — and is built only with -tags e2e.
//
// The suite installs Berth itself, both ways, with the tags in E2E_IMG and
// E2E_REGISTRYD_IMG (default berth/manager:e2e and berth/registryd:e2e, so
// build, import and install agree whatever the tree state): `make
// load-images` once, then each install path in its own Ordered container,
// which installs and removes its own copy — kustomize (`make deploy`, `make
// undeploy`) for the Registry-lifecycle specs, and the Helm chart
// (charts/berth, the Makefile's pinned helm, or HELM) for an install, a
// push and pull through an emptyDir Registry, and an uninstall that also
// deletes the CRDs Helm leaves behind. Ginkgo may run the two containers
// in either order. E2E_SKIP_LOAD_IMAGES=1 skips the import, for a cluster
// that is not the local one and already has the images. Every Registry
// lives in its own namespace, deleted at the end.
//
// A Registry's PersistentVolumeClaim is one of its children, owned by it:
// deleting the Registry deletes the claim, and with the local cluster's
// StorageClass (reclaim policy Delete) the data with it. A user who wants
// to keep the data uses a StorageClass with reclaim policy Retain (or sets
// the bound PersistentVolume's persistentVolumeReclaimPolicy to Retain):
// the volume then outlives the claim. The suite checks this policy.
package e2e
