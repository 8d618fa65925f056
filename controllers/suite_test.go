package controllers

import (
	"context"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/berth-dev/berth/internal/testutil/kubetest"
)

// The suite runs against a real kube-apiserver and etcd built by
// hack/setup-envtest.sh; `make test` sets KUBEBUILDER_ASSETS to them.

var (
	cfg       *rest.Config
	k8sClient client.Client
	testEnv   *envtest.Environment
	ctx       context.Context
	cancel    context.CancelFunc
	recorder  *requestRecorder
)

func TestControllers(t *testing.T) {
	// Generous: under -race on two shared cores a reconcile can take
	// seconds; a spec that never converges still fails, only later.
	kubetest.RunSpecs(t, "Controller Suite", 20*time.Second)
}

var _ = BeforeSuite(func() {
	ctx, cancel = context.WithCancel(context.TODO())
	testEnv, cfg, k8sClient = kubetest.Start()

	// The manager's requests are recorded for the RBAC check (rbac_test.go).
	mgrCfg := rest.CopyConfig(cfg)
	recorder = &requestRecorder{seen: map[apiRequest]bool{}}
	mgrCfg.Wrap(recorder.wrap)
	mgr, err := ctrl.NewManager(mgrCfg, ctrl.Options{
		Scheme:  scheme.Scheme,
		Metrics: metricsserver.Options{BindAddress: "0"},
	})
	Expect(err).NotTo(HaveOccurred())
	// No registryd pod runs here (no kubelet): the probes find none. The
	// GarbageCollection state machine with real replicas is tested in
	// controllers/gctest.
	prober := &HTTPProber{}
	Expect((&RegistryReconciler{Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(), Prober: prober,
		RegistrydImage: "registryd:test", ManagerImage: "manager:test"}).SetupWithManager(mgr)).To(Succeed())
	Expect((&GarbageCollectionReconciler{Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(), Prober: prober,
		Recorder: mgr.GetEventRecorderFor("garbagecollection-controller"), RegistrydImage: "registryd:test"}).SetupWithManager(mgr)).To(Succeed())
	go func() {
		defer GinkgoRecover()
		Expect(mgr.Start(ctx)).To(Succeed())
	}()
})

var _ = AfterSuite(func() {
	cancel()
	checkRBAC(recorder)
	Expect(testEnv.Stop()).To(Succeed())
})
