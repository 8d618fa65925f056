// Package kubetest starts the kube-apiserver and etcd (envtest) the
// controllers' Ginkgo suites run against, with Berth's CRDs installed. It
// is a package of its own so that testutil, which every registryd test
// imports, does not pull in controller-runtime and Ginkgo.
package kubetest

import (
	"os"
	"path/filepath"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	berthv1alpha1 "github.com/berth-dev/berth/api/v1alpha1"
	"github.com/berth-dev/berth/internal/testutil"
)

// Start is a suite's BeforeSuite: it logs controller-runtime to the
// GinkgoWriter, registers Berth's API types in client-go's scheme, starts
// the control plane found in KUBEBUILDER_ASSETS (`make test` sets it) with
// the CRDs of config/crd/bases, and returns it, its config and a client.
// The suite's AfterSuite stops the environment.
func Start() (*envtest.Environment, *rest.Config, client.Client) {
	logf.SetLogger(zap.New(zap.WriteTo(GinkgoWriter), zap.UseDevMode(true)))
	Expect(os.Getenv("KUBEBUILDER_ASSETS")).NotTo(BeEmpty(),
		"KUBEBUILDER_ASSETS must name the kube-apiserver and etcd directory: run `make test`, or export KUBEBUILDER_ASSETS=$(hack/setup-envtest.sh)")
	Expect(berthv1alpha1.AddToScheme(scheme.Scheme)).To(Succeed())
	env := &envtest.Environment{
		CRDDirectoryPaths:     []string{filepath.Join(testutil.RepoRoot(GinkgoT()), "config", "crd", "bases")},
		ErrorIfCRDPathMissing: true,
		// A loaded 2-core machine can take longer than the 20 s default.
		ControlPlaneStartTimeout: 2 * time.Minute,
	}
	cfg, err := env.Start()
	Expect(err).NotTo(HaveOccurred())
	c, err := client.New(cfg, client.Options{Scheme: scheme.Scheme})
	Expect(err).NotTo(HaveOccurred())
	return env, cfg, c
}
