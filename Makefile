# Berth — build, generate, test.
#
# Every tool is installed at a pinned version from the Go module proxy into
# bin/ (git-ignored) on first use; nothing needs installing by hand.

# Version stamped into both binaries.
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
# Kubernetes version of the envtest and local-cluster binaries: hack/k8s-version
# is the one place it is written (the scripts, the e2e suite and the packaging
# test read it; test/packaging checks go.mod's k8s.io libraries match).
K8S_VERSION ?= $(shell cat hack/k8s-version)
# Image the manager deploys registryd with (passed as --registryd-image / REGISTRYD_IMAGE).
REGISTRYD_IMG ?= berth/registryd:$(VERSION)
# Manager image `make deploy` installs.
IMG ?= berth/manager:$(VERSION)
# kubectl for deploy/undeploy: the cluster build's when it exists, else PATH's.
KUBECTL ?= $(shell k=$(LOCALBIN)/k8s/$(K8S_VERSION)/kubectl; [ -x $$k ] && echo $$k || echo kubectl)

LOCALBIN ?= $(CURDIR)/bin
CONTROLLER_TOOLS_VERSION ?= v0.18.0
GOLANGCI_LINT_VERSION ?= v2.15.0
CONTROLLER_GEN ?= $(LOCALBIN)/controller-gen-$(CONTROLLER_TOOLS_VERSION)
GOLANGCI_LINT ?= $(LOCALBIN)/golangci-lint-$(GOLANGCI_LINT_VERSION)
KUSTOMIZE_VERSION ?= v5.8.2
HELM_VERSION ?= v3.18.6
KUSTOMIZE ?= $(LOCALBIN)/kustomize-$(KUSTOMIZE_VERSION)
HELM ?= $(LOCALBIN)/helm-$(HELM_VERSION)

GO ?= go
LDFLAGS := -s -w -X github.com/berth-dev/berth/internal/version.Version=$(VERSION)
# go test's 10-minute default per package is too tight for the packages
# that run the OCI conformance program on five drivers or the object-store
# collections on two loaded cores; a hung test still ends the run.
GO_TEST_FLAGS ?= -timeout 30m
# Packages `make test` runs under the race detector: registryd and the
# controllers, where the concurrency is.
RACE_PKGS ?= ./registryd/... ./controllers/...
# -fuzztime of each fuzz target in `make fuzz` (hack/fuzz.sh lists them),
# and in `make test` (which also runs every seed corpus as ordinary tests;
# TEST_FUZZ_TIME=0 skips the fuzzing there).
FUZZ_TIME ?= 1m
TEST_FUZZ_TIME ?= 2s

SHELL := /usr/bin/env bash -o pipefail
.SHELLFLAGS := -ec

.PHONY: all
all: build

##@ General

.PHONY: help
help: ## Show the targets.
	@awk 'BEGIN {FS = ":.*##"} /^[a-zA-Z_0-9-]+:.*?##/ { printf "  %-16s %s\n", $$1, $$2 } /^##@/ { printf "\n%s\n", substr($$0, 5) }' $(MAKEFILE_LIST)

##@ Development

.PHONY: manifests
manifests: controller-gen ## Generate CRDs and RBAC from the markers in api/ and controllers/.
	$(CONTROLLER_GEN) rbac:roleName=manager-role crd paths="./api/..." paths="./controllers/..." output:crd:artifacts:config=config/crd/bases
	@# Helm reads nothing outside the chart: it ships copies (test/packaging checks them).
	rm -f charts/berth/crds/*.yaml && cp config/crd/bases/*.yaml charts/berth/crds/
	cp config/rbac/role.yaml charts/berth/files/rbac/role.yaml

.PHONY: generate
generate: controller-gen ## Generate deepcopy methods for api/.
	$(CONTROLLER_GEN) object:headerFile="hack/boilerplate.go.txt" paths="./api/..."

.PHONY: fmt
fmt: ## go fmt the tree.
	$(GO) fmt ./...

.PHONY: vet
vet: ## go vet the tree.
	$(GO) vet ./...

.PHONY: lint
lint: golangci-lint ## Run golangci-lint (.golangci.yml) over the tree, tests and e2e included.
	$(GOLANGCI_LINT) run ./...

.PHONY: verify
verify: manifests generate ## Regenerate (deepcopy, CRDs, RBAC, chart copies), go mod tidy, gofmt; fail if the tree changed.
	$(GO) mod tidy
	gofmt -w $$(git ls-files '*.go')
	@changed="$$(git status --porcelain)"; \
	if [ -n "$$changed" ]; then \
	  echo "make verify: these files differ from what generation, go mod tidy and gofmt produce (or are uncommitted):" >&2; \
	  echo "$$changed" >&2; \
	  exit 1; \
	fi

.PHONY: setup-envtest
setup-envtest: ## Build kube-apiserver and fetch etcd for envtest into bin/k8s/<version> (cached).
	@K8S_VERSION=$(K8S_VERSION) hack/setup-envtest.sh

.PHONY: test
test: manifests generate vet helm kustomize ## Run every unit, driver (object stores against their emulators), compatibility, OCI conformance, packaging and envtest suite (RACE_PKGS under -race; every fuzz target for TEST_FUZZ_TIME).
	assets="$$(K8S_VERSION=$(K8S_VERSION) hack/setup-envtest.sh)"; \
	dist="$$(hack/install-distribution.sh)"; \
	conformance="$$(hack/conformance.sh)"; \
	redis="$$(hack/install-redis.sh)"; \
	pebble="$$(hack/install-pebble.sh)"; \
	versitygw="$$(hack/install-versitygw.sh)"; \
	fakegcs="$$(hack/install-fake-gcs-server.sh)"; \
	azurite="$$(hack/install-azurite.sh)"; \
	race="$$($(GO) list $(RACE_PKGS))"; \
	rest="$$($(GO) list ./... | grep -vxF -f <(echo "$$race"))"; \
	export KUBEBUILDER_ASSETS="$$assets" DISTRIBUTION_REGISTRY="$$dist" OCI_CONFORMANCE="$$conformance" \
	  REDIS_SERVER="$$redis" PEBBLE_DIR="$$pebble" \
	  VERSITYGW="$$versitygw" FAKE_GCS_SERVER="$$fakegcs" AZURITE="$$azurite" \
	  HELM="$(HELM)" KUSTOMIZE="$(KUSTOMIZE)"; \
	$(GO) test $(GO_TEST_FLAGS) $$rest; \
	$(GO) test -race $(GO_TEST_FLAGS) $$race
	if [ "$(TEST_FUZZ_TIME)" != 0 ]; then FUZZ_TIME=$(TEST_FUZZ_TIME) hack/fuzz.sh; fi

.PHONY: fuzz
fuzz: ## Run every fuzz target for FUZZ_TIME each (make test runs their seed corpora).
	FUZZ_TIME=$(FUZZ_TIME) hack/fuzz.sh

.PHONY: test-e2e
test-e2e: ## Run the end-to-end suite against the cluster in KUBECONFIG.
	$(GO) test -tags e2e -count=1 -timeout 60m ./test/e2e/... -v

# BENCH selects benchmarks by regular expression (Registry, GarbageCollect,
# Referrers, OperatorScale, PushPull); docs/benchmarks.md lists the BERTH_BENCH_*
# sizes. Run from the package directory so that progress streams.
BENCH ?= .
.PHONY: bench
bench: ## Run the benchmarks: registryd beside the Distribution registry, GC, referrers, operator scale, push/pull per storage driver (docs/benchmarks.md); table and bin/bench/*.json.
	assets="$$(K8S_VERSION=$(K8S_VERSION) hack/setup-envtest.sh)"; \
	dist="$$(hack/install-distribution.sh)"; \
	gnutime="$$(hack/install-gnu-time.sh)"; \
	versitygw="$$(hack/install-versitygw.sh)"; \
	fakegcs="$$(hack/install-fake-gcs-server.sh)"; \
	azurite="$$(hack/install-azurite.sh)"; \
	cd test/bench && KUBEBUILDER_ASSETS="$$assets" DISTRIBUTION_REGISTRY="$$dist" GNU_TIME="$$gnutime" \
		VERSITYGW="$$versitygw" FAKE_GCS_SERVER="$$fakegcs" AZURITE="$$azurite" \
		$(GO) test -run '^$$' -bench '$(BENCH)' -benchmem -timeout 120m .

##@ Build

.PHONY: build
build: ## Build bin/manager and bin/registryd.
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $(LOCALBIN)/manager .
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $(LOCALBIN)/registryd ./registryd

.PHONY: run
run: manifests generate ## Run the manager against the cluster in KUBECONFIG.
	REGISTRYD_IMAGE=$(REGISTRYD_IMG) $(GO) run ./main.go

.PHONY: serve
serve: build ## Run registryd on its embedded default configuration (filesystem storage, :5000).
	$(LOCALBIN)/registryd serve

##@ Local cluster (docs/local-cluster.md)

IMAGES_DIR ?= $(LOCALBIN)/images
CLUSTER_DIR ?= $(LOCALBIN)/cluster

.PHONY: images
images: build ## Pack bin/manager and bin/registryd into image tarballs (IMG, REGISTRYD_IMG) in IMAGES_DIR, without Docker.
	$(GO) run ./hack/imgbuild -tag "$(IMG)" -o $(IMAGES_DIR)/manager.tar -add $(LOCALBIN)/manager:/manager -entrypoint /manager
	$(GO) run ./hack/imgbuild -tag "$(REGISTRYD_IMG)" -o $(IMAGES_DIR)/registryd.tar -add $(LOCALBIN)/registryd:/registryd -entrypoint /registryd -arg serve -port 5000/tcp

.PHONY: load-images
load-images: images ## Import the image tarballs into the local cluster's containerd.
	CLUSTER_DIR=$(CLUSTER_DIR) hack/load-images.sh $(IMAGES_DIR)/manager.tar $(IMAGES_DIR)/registryd.tar

.PHONY: cluster-up
cluster-up: ## Start a single-node cluster on this machine (root; state in CLUSTER_DIR); prints the kubeconfig path.
	@CLUSTER_DIR=$(CLUSTER_DIR) K8S_VERSION=$(K8S_VERSION) hack/cluster-up.sh

.PHONY: cluster-smoke
cluster-smoke: load-images ## Prove the local cluster: registryd on a PVC behind a Service, reached by name from a pod.
	CLUSTER_DIR=$(CLUSTER_DIR) REGISTRYD_IMG=$(REGISTRYD_IMG) hack/cluster-smoke.sh

.PHONY: cluster-down
cluster-down: ## Stop the local cluster; leave no process, mount, netns, iptables rule or cgroup behind.
	CLUSTER_DIR=$(CLUSTER_DIR) hack/cluster-down.sh

.PHONY: demo
demo: ## Cluster up (unless KUBECONFIG answers), images, deploy, a sample Registry with htpasswd users; push and pull through it.
	CLUSTER_DIR=$(CLUSTER_DIR) IMG=$(IMG) REGISTRYD_IMG=$(REGISTRYD_IMG) hack/demo.sh

##@ Deployment

.PHONY: deploy
deploy: manifests kustomize ## Install CRDs, RBAC and the manager (IMG, REGISTRYD_IMG) with kustomize into the cluster in KUBECONFIG.
	KUSTOMIZE=$(KUSTOMIZE) hack/kustomize-build.sh "$(IMG)" "$(REGISTRYD_IMG)" | $(KUBECTL) apply --server-side --force-conflicts -f -

.PHONY: undeploy
undeploy: kustomize ## Remove what `make deploy` installed, CRDs (so every Registry) included.
	$(KUSTOMIZE) build config/default | $(KUBECTL) delete --ignore-not-found -f -

.PHONY: helm-lint
helm-lint: helm ## helm lint the chart in charts/berth.
	$(HELM) lint --strict charts/berth

.PHONY: helm-template
helm-template: helm ## Render the chart (CRDs included) with IMG and REGISTRYD_IMG.
	img="$(IMG)"; reg="$(REGISTRYD_IMG)"; \
	$(HELM) template berth charts/berth --namespace berth-system --include-crds --kube-version $(K8S_VERSION) \
		--set image.repository="$${img%:*}",image.tag="$${img##*:}" \
		--set registryd.image.repository="$${reg%:*}",registryd.image.tag="$${reg##*:}"

##@ Tools

.PHONY: controller-gen
controller-gen: $(CONTROLLER_GEN)
$(CONTROLLER_GEN):
	$(call go-install-tool,$(CONTROLLER_GEN),sigs.k8s.io/controller-tools/cmd/controller-gen,$(CONTROLLER_TOOLS_VERSION))

.PHONY: golangci-lint
golangci-lint: $(GOLANGCI_LINT)
$(GOLANGCI_LINT):
	$(call go-install-tool,$(GOLANGCI_LINT),github.com/golangci/golangci-lint/v2/cmd/golangci-lint,$(GOLANGCI_LINT_VERSION))

# `make -s helm-path` / `kustomize-path` install the tool and print its path (tests use them).
.PHONY: kustomize kustomize-path
kustomize: $(KUSTOMIZE)
kustomize-path: kustomize
	@echo $(KUSTOMIZE)
$(KUSTOMIZE):
	$(call go-install-tool,$(KUSTOMIZE),sigs.k8s.io/kustomize/kustomize/v5,$(KUSTOMIZE_VERSION))

# helm builds in about 10 minutes on 2 cores on first use (cached in bin/ after).
.PHONY: helm helm-path
helm: $(HELM)
helm-path: helm
	@echo $(HELM)
$(HELM):
	$(call go-install-tool,$(HELM),helm.sh/helm/v3/cmd/helm,$(HELM_VERSION))

# go-install-tool installs $(2)@$(3) as $(1): the version is part of the file
# name, so bumping a pin installs the new version beside the old. A command
# path ending in a major version (.../kustomize/v5) builds the binary named by
# the element before it.
define go-install-tool
@set -e; pkg=$(2)@$(3); echo "installing $${pkg}"; \
mkdir -p $(LOCALBIN); \
GOBIN=$(LOCALBIN) $(GO) install $${pkg}; \
name=$$(basename $(2)); case $${name} in v[0-9]*) name=$$(basename $$(dirname $(2)));; esac; \
mv $(LOCALBIN)/$${name} $(1)
endef
