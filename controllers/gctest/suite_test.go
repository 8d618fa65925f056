// Package gctest runs the GarbageCollection controller against a real
// kube-apiserver and etcd (envtest) with real registryd servers as the
// replicas. It is a suite of its own, not part of controllers' suite,
// because its specs stop and restart the manager mid-run: each spec runs
// its own manager, scoped to its own namespace.
package gctest

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/berth-dev/berth/controllers"
	"github.com/berth-dev/berth/internal/testutil/kubetest"
)

var (
	cfg       *rest.Config
	k8sClient client.Client
	testEnv   *envtest.Environment
)

func TestGarbageCollection(t *testing.T) {
	kubetest.RunSpecs(t, "GarbageCollection Suite", 30*time.Second)
}

var _ = BeforeSuite(func() {
	testEnv, cfg, k8sClient = kubetest.Start()
})

var _ = AfterSuite(func() {
	Expect(testEnv.Stop()).To(Succeed())
})

var nsCounter int

// newNamespace creates a namespace for one spec.
func newNamespace(ctx context.Context) string {
	nsCounter++
	ns := fmt.Sprintf("gc-%d-%d", GinkgoParallelProcess(), nsCounter)
	Expect(k8sClient.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})).To(Succeed())
	return ns
}

// manager is one running manager process: both controllers, as main.go
// wires them, scoped to one namespace.
type manager struct {
	cancel context.CancelFunc
	done   chan struct{}
}

// startManager starts a manager for namespace ns whose probes reach the
// replicas kl runs.
func startManager(ns string, kl *kubelet) *manager {
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:  scheme.Scheme,
		Metrics: metricsserver.Options{BindAddress: "0"},
		Cache:   cache.Options{DefaultNamespaces: map[string]cache.Config{ns: {}}},
		// Each spec starts several managers; they must not share the
		// controller names' metrics registration.
		Controller: controllerConfig(),
	})
	Expect(err).NotTo(HaveOccurred())
	prober := &controllers.HTTPProber{Client: &http.Client{Timeout: 2 * time.Second}, Address: kl.Address}
	Expect((&controllers.RegistryReconciler{
		Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(), Prober: prober,
		RegistrydImage: "registryd:test", ManagerImage: "manager:test",
	}).SetupWithManager(mgr)).To(Succeed())
	Expect((&controllers.GarbageCollectionReconciler{
		Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(), Prober: prober,
		Recorder: mgr.GetEventRecorderFor("garbagecollection-controller"), RegistrydImage: "registryd:test",
	}).SetupWithManager(mgr)).To(Succeed())
	ctx, cancel := context.WithCancel(context.Background())
	m := &manager{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer GinkgoRecover()
		defer close(m.done)
		Expect(mgr.Start(ctx)).To(Succeed())
	}()
	return m
}

// Stop stops the manager and waits until it has.
func (m *manager) Stop() {
	m.cancel()
	Eventually(m.done).Should(BeClosed())
}
