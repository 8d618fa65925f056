//go:build e2e

package e2e

import (
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/rand"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// createNamespace creates a namespace named prefix and five random
// characters for the specs of one container, and returns its name; the
// cleanup deletes it and waits until it is gone.
func createNamespace(prefix string) string {
	GinkgoHelper()
	ns := prefix + rand.String(5)
	By("creating namespace " + ns)
	Expect(k8sClient.Create(suiteCtx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})).To(Succeed())
	DeferCleanup(func() {
		Expect(client.IgnoreNotFound(k8sClient.Delete(suiteCtx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}))).To(Succeed())
		Eventually(func() error {
			return k8sClient.Get(suiteCtx, types.NamespacedName{Name: ns}, &corev1.Namespace{})
		}).WithTimeout(readyTimeout).WithPolling(poll).Should(Satisfy(apierrors.IsNotFound))
	})
	return ns
}
