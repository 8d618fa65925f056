//go:build e2e

package e2e

import (
	"net"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/utils/ptr"

	berthv1alpha1 "github.com/berth-dev/berth/api/v1alpha1"
)

// helmTimeout bounds helm install --wait and helm uninstall --wait.
const helmTimeout = 2 * time.Minute

var crdGVK = schema.GroupVersionKind{Group: "apiextensions.k8s.io", Version: "v1", Kind: "CustomResourceDefinition"}

// The second install path: the Helm chart in charts/berth, with the images
// `make load-images` imported. It installs and removes its own copy of
// Berth (the kustomize container does the same), so it needs the cluster
// free of another install: it refuses to start while berth-system exists.
// Helm never deletes CRDs, so the uninstall spec deletes the chart's CRDs
// itself and leaves the cluster as it found it.
var _ = Describe("Berth installed with Helm", Ordered, func() {
	const (
		release  = "berth"
		systemNS = "berth-system"
		regName  = "helm"
		repo     = "e2e/helm"
	)
	var (
		helm  string
		chart string
		ns    string
		// The chart's CRDs (charts/berth/crds), by name.
		crds = []string{"registries.berth.dev", "garbagecollections.berth.dev"}
		// The manager Deployment: the release's full name, "berth".
		manager = types.NamespacedName{Namespace: systemNS, Name: release}
	)

	// crdGet gets the CRD named crd: nil while it exists.
	crdGet := func(crd string) func() error {
		return func() error {
			obj := &metav1.PartialObjectMetadata{}
			obj.SetGroupVersionKind(crdGVK)
			return k8sClient.Get(suiteCtx, types.NamespacedName{Name: crd}, obj)
		}
	}

	// The removal is idempotent: the last spec's steps, and the safety net
	// when a spec fails half way. Order matters: the Registry namespace goes
	// first (in its spec's DeferCleanup) while the manager can still remove
	// finalizers, then the release, then the CRDs, then the namespace.
	deleteCRDsAndNamespace := func() {
		GinkgoHelper()
		run(kubectl, "delete", "--ignore-not-found", "--timeout="+helmTimeout.String(), "-f", filepath.Join(chart, "crds"))
		run(kubectl, "delete", "namespace", systemNS, "--ignore-not-found", "--timeout="+helmTimeout.String())
	}

	BeforeAll(func() {
		helm = helmBinary()
		chart = filepath.Join(root, "charts", "berth")
		Expect(k8sClient.Get(suiteCtx, types.NamespacedName{Name: systemNS}, &corev1.Namespace{})).
			To(Satisfy(apierrors.IsNotFound), "namespace %s exists: another install of Berth is still there", systemNS)
		DeferCleanup(func() {
			By("removing the Helm release, the chart's CRDs and " + systemNS + " (if still there)")
			run(helm, "uninstall", release, "-n", systemNS, "--ignore-not-found", "--wait", "--timeout", helmTimeout.String())
			deleteCRDsAndNamespace()
		})
	})

	It("installs the chart and the manager Deployment becomes Available", func() {
		mgrRepo, mgrTag := splitImage(managerImg)
		regRepo, regTag := splitImage(registryd)
		By("helm install " + release + " charts/berth")
		run(helm, "install", release, chart, "-n", systemNS, "--create-namespace",
			"--set-string", "image.repository="+mgrRepo, "--set-string", "image.tag="+mgrTag,
			"--set-string", "registryd.image.repository="+regRepo, "--set-string", "registryd.image.tag="+regTag,
			"--wait", "--timeout", helmTimeout.String())

		dep := &appsv1.Deployment{}
		Expect(k8sClient.Get(suiteCtx, manager, dep)).To(Succeed())
		Expect(deploymentAvailable(dep)).To(BeTrue(), "%+v", dep.Status.Conditions)
		Expect(dep.Labels).To(HaveKeyWithValue("app.kubernetes.io/managed-by", "Helm"))
		c := dep.Spec.Template.Spec.Containers[0]
		Expect(c.Image).To(Equal(managerImg))
		Expect(c.Env).To(ContainElement(corev1.EnvVar{Name: "REGISTRYD_IMAGE", Value: registryd}))
		for _, crd := range crds {
			Expect(crdGet(crd)()).To(Succeed(), "CRD %s", crd)
		}
	})

	It("runs a Registry on emptyDir storage that takes a push and a pull byte for byte", func() {
		ns = "berth-e2e-helm-" + rand.String(5)
		By("creating namespace " + ns)
		Expect(k8sClient.Create(suiteCtx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})).To(Succeed())
		DeferCleanup(func() {
			// While the manager runs, so the Registry's finalizer is honoured.
			run(kubectl, "delete", "namespace", ns, "--ignore-not-found", "--timeout="+readyTimeout.String())
		})

		key := types.NamespacedName{Namespace: ns, Name: regName}
		Expect(k8sClient.Create(suiteCtx, &berthv1alpha1.Registry{
			ObjectMeta: metav1.ObjectMeta{Name: regName, Namespace: ns},
			Spec: berthv1alpha1.RegistrySpec{
				Replicas: ptr.To[int32](1),
				Storage:  berthv1alpha1.RegistryStorage{EmptyDir: &berthv1alpha1.EmptyDirStorage{}},
				Service:  berthv1alpha1.RegistryService{Type: corev1.ServiceTypeNodePort},
			},
		})).To(Succeed())
		Eventually(func(g Gomega) { registryReady(g, key) }).WithTimeout(readyTimeout).WithPolling(poll).Should(Succeed())

		svc := &corev1.Service{}
		Expect(k8sClient.Get(suiteCtx, key, svc)).To(Succeed())
		Expect(svc.Spec.Ports).NotTo(BeEmpty())
		Expect(svc.Spec.Ports[0].NodePort).NotTo(BeZero())
		host := net.JoinHostPort(nodeInternalIP().String(), strconv.Itoa(int(svc.Spec.Ports[0].NodePort)))

		img, err := random.Image(64*1024, 2)
		Expect(err).NotTo(HaveOccurred())
		// No TLS, no auth: plain HTTP, anonymous.
		ref, err := name.ParseReference(host+"/"+repo+":v1", name.Insecure)
		Expect(err).NotTo(HaveOccurred())
		opts := []remote.Option{remote.WithContext(suiteCtx)}
		Expect(remote.Write(ref, img, opts...)).To(Succeed())
		expectSameImage(img, ref, opts...)
	})

	It("uninstalls: the manager is gone; the CRDs Helm keeps are deleted explicitly", func() {
		run(helm, "uninstall", release, "-n", systemNS, "--wait", "--timeout", helmTimeout.String())
		Eventually(func() error {
			return k8sClient.Get(suiteCtx, manager, &appsv1.Deployment{})
		}).WithTimeout(installTimeout).WithPolling(poll).Should(Satisfy(apierrors.IsNotFound), "manager Deployment")
		Expect(output(helm, "list", "-n", systemNS, "-q")).To(BeEmpty())

		By("finding the CRDs still there (Helm never deletes them), then deleting them")
		for _, crd := range crds {
			Expect(crdGet(crd)()).To(Succeed(), "CRD %s", crd)
		}
		deleteCRDsAndNamespace()
		for _, crd := range crds {
			Eventually(crdGet(crd)).WithTimeout(installTimeout).WithPolling(poll).Should(Satisfy(apierrors.IsNotFound), "CRD %s", crd)
		}
		Eventually(func() error {
			return k8sClient.Get(suiteCtx, types.NamespacedName{Name: systemNS}, &corev1.Namespace{})
		}).WithTimeout(installTimeout).WithPolling(poll).Should(Satisfy(apierrors.IsNotFound), "namespace %s", systemNS)
	})
})

// helmBinary is the pinned helm of the Makefile (`make -s helm-path`
// builds it on first use), or HELM when set.
func helmBinary() string {
	GinkgoHelper()
	if h := envOr("HELM", ""); h != "" {
		return h
	}
	out := strings.TrimSpace(output("make", "-s", "--no-print-directory", "-C", root, "helm-path"))
	lines := strings.Split(out, "\n")
	h := strings.TrimSpace(lines[len(lines)-1])
	_, err := exec.LookPath(h)
	Expect(err).NotTo(HaveOccurred(), "helm from make helm-path: %q", out)
	return h
}

// splitImage splits an image reference into repository and tag (the part
// after the last colon that follows the last slash; "latest" when none).
func splitImage(ref string) (repository, tag string) {
	i := strings.LastIndex(ref, ":")
	if i < 0 || strings.Contains(ref[i:], "/") {
		return ref, "latest"
	}
	return ref[:i], ref[i+1:]
}

func deploymentAvailable(dep *appsv1.Deployment) bool {
	for _, c := range dep.Status.Conditions {
		if c.Type == appsv1.DeploymentAvailable {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}
