// Package kubetest starts the kube-apiserver and etcd (envtest) the
// controllers' Ginkgo suites run against, with Berth's CRDs installed. It
// is a package of its own so that testutil, which every registryd test
// imports, does not pull in controller-runtime and Ginkgo.
package kubetest

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/onsi/ginkgo/v2"
	"github.com/onsi/gomega"
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
	logf.SetLogger(zap.New(zap.WriteTo(ginkgo.GinkgoWriter), zap.UseDevMode(true)))
	gomega.Expect(os.Getenv("KUBEBUILDER_ASSETS")).NotTo(gomega.BeEmpty(),
		"KUBEBUILDER_ASSETS must name the kube-apiserver and etcd directory: run `make test`, or export KUBEBUILDER_ASSETS=$(hack/setup-envtest.sh)")
	gomega.Expect(berthv1alpha1.AddToScheme(scheme.Scheme)).To(gomega.Succeed())
	env := &envtest.Environment{
		CRDDirectoryPaths:     []string{filepath.Join(testutil.RepoRoot(ginkgo.GinkgoT()), "config", "crd", "bases")},
		ErrorIfCRDPathMissing: true,
		// A loaded 2-core machine can take longer than the 20 s default.
		ControlPlaneStartTimeout: 2 * time.Minute,
	}
	cfg, err := env.Start()
	gomega.Expect(err).NotTo(gomega.HaveOccurred())
	c, err := client.New(cfg, client.Options{Scheme: scheme.Scheme})
	gomega.Expect(err).NotTo(gomega.HaveOccurred())
	return env, cfg, c
}

// RunSpecs runs the suite's specs; Eventually polls every 50 ms and gives
// up after timeout unless a spec says otherwise.
func RunSpecs(t *testing.T, name string, timeout time.Duration) {
	gomega.RegisterFailHandler(ginkgo.Fail)
	gomega.SetDefaultEventuallyTimeout(timeout)
	gomega.SetDefaultEventuallyPollingInterval(50 * time.Millisecond)
	ginkgo.RunSpecs(t, name)
}
