// Package packaging tests Berth's two install paths without a cluster: the
// kustomize tree under config/default (what `make deploy` applies) and the
// Helm chart under charts/berth. Each is rendered with the pinned tool the
// Makefile installs (HELM, KUSTOMIZE; `make -s helm-path` / `kustomize-path`
// when unset) and the rendered objects are parsed and checked: images and
// flags come from the inputs, and the CRDs and RBAC rules are exactly what
// controller-gen generated into config/.
package packaging
