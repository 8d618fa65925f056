package controllers

import (
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	berthv1alpha1 "github.com/berth-dev/berth/api/v1alpha1"
	"github.com/berth-dev/berth/controllers/builders"
)

func TestDiffers(t *testing.T) {
	obj := func(kv ...any) map[string]any {
		m := map[string]any{}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i].(string)] = kv[i+1]
		}
		return m
	}
	list := func(v ...any) []any { return v }
	tests := map[string]struct {
		want, got any
		path      string
	}{
		"equal scalars":                     {want: "a", got: "a"},
		"changed scalar":                    {want: obj("image", "a"), got: obj("image", "b"), path: ".image"},
		"missing field":                     {want: obj("image", "a"), got: obj(), path: ".image"},
		"field added by the server":         {want: obj("a", 1.0), got: obj("a", 1.0, "clusterIP", "10.0.0.1")},
		"unset typed field":                 {want: obj("a", "", "b", nil), got: obj("a", "TCP")},
		"false is a value":                  {want: obj("a", false), got: obj("a", true), path: ".a"},
		"objects in another order":          {want: list(obj("name", "a"), obj("name", "b")), got: list(obj("name", "b", "x", 1.0), obj("name", "a"))},
		"object changed in a list":          {want: list(obj("name", "a", "value", "1")), got: list(obj("name", "a", "value", "2")), path: "[0]"},
		"object added to a list by hand":    {want: list(obj("name", "a")), got: list(obj("name", "a"), obj("name", "hand")), path: ""},
		"object removed from a list":        {want: list(obj("name", "a"), obj("name", "b")), got: list(obj("name", "a")), path: ""},
		"scalar list reordered":             {want: list("serve", "/etc/config.yml"), got: list("/etc/config.yml", "serve"), path: ""},
		"type changed":                      {want: obj("a", obj("b", "c")), got: obj("a", "c"), path: ".a"},
		"nested in a list of objects":       {want: obj("containers", list(obj("name", "r", "env", list(obj("name", "A", "value", "1"))))), got: obj("containers", list(obj("name", "r", "env", list(obj("name", "A", "value", "2"))))), path: ".containers[0]"},
		"number kept by the server":         {want: obj("port", 5000.0), got: obj("port", 5000.0)},
		"number changed by hand":            {want: obj("port", 5000.0), got: obj("port", 6000.0), path: ".port"},
		"empty list wanted, empty list got": {want: obj("a", list()), got: obj("a", list())},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			if got := differs("", tt.want, tt.got); got != tt.path {
				t.Errorf("differs = %q, want %q", got, tt.path)
			}
		})
	}
}

// handEdit changes a live child as `kubectl edit` would (an update by
// another field manager), retrying on conflicts with the controller.
func handEdit(obj client.Object, ns, name string, edit func()) {
	Eventually(func() error {
		if err := k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, obj); err != nil {
			return err
		}
		edit()
		return k8sClient.Update(ctx, obj, client.FieldOwner("kubectl-edit"))
	}).Should(Succeed())
}

// waitLong bounds the waits of the drift specs: the operator's reaction
// to an edit takes a few reconciles, and the machine may be loaded.
const waitLong = 30 * time.Second

var _ = Describe("Drift correction", func() {
	// A Registry with a child of each kind the operator writes for it: a
	// Deployment, a ConfigMap, a Service with two ports and (two replicas on
	// a shared volume) a PodDisruptionBudget.
	// settled reports the Deployment's current generation rolled out (a
	// put-back template bumps it) and waits for the Registry to be Ready,
	// so the no-write check that follows sees no status left to write. Ready
	// may already be true from before the edit while the manager still
	// handles the rollout it marked, so it also waits until one reconcile
	// finds nothing to write (a controller that always writes never gets
	// there; expectNoWrites then checks two more).
	settled := func(ns, name string) {
		markDeploymentReady(ns, name)
		Eventually(condition(ns, name, berthv1alpha1.ConditionReady)).WithTimeout(waitLong).Should(haveStatusReason(metav1.ConditionTrue, berthv1alpha1.ReasonAvailable))
		Eventually(func() int64 { return reconcileWrites(ns, name) }).WithTimeout(waitLong).Should(BeZero())
	}

	newRegistry := func() (string, *berthv1alpha1.Registry) {
		ns := newNamespace()
		reg := &berthv1alpha1.Registry{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "held"},
			Spec: berthv1alpha1.RegistrySpec{
				Replicas: ptr.To[int32](2),
				Storage: berthv1alpha1.RegistryStorage{Filesystem: &berthv1alpha1.FilesystemStorage{
					AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteMany}}},
				Metrics: &berthv1alpha1.RegistryMetrics{Enabled: true},
			},
		}
		Expect(k8sClient.Create(ctx, reg)).To(Succeed())
		Eventually(get(&policyv1.PodDisruptionBudget{}, ns, builders.PDBName(reg))).WithTimeout(waitLong).Should(Succeed())
		settled(ns, reg.Name)
		return ns, reg
	}
	It("puts back the Deployment's image, env and replicas", func() {
		ns, reg := newRegistry()
		dep := &appsv1.Deployment{}
		Expect(get(dep, ns, builders.DeploymentName(reg))()).To(Succeed())
		want := dep.Spec.Template.Spec.Containers[0]
		handEdit(dep, ns, builders.DeploymentName(reg), func() {
			c := &dep.Spec.Template.Spec.Containers[0]
			c.Image = "example.com/other:1"
			c.Env = append(c.Env, corev1.EnvVar{Name: "HAND", Value: "edited"})
			for i := range c.Env {
				if c.Env[i].ValueFrom == nil {
					c.Env[i].Value += "-edited"
					break
				}
			}
			dep.Spec.Replicas = ptr.To[int32](5)
		})
		Eventually(func(g Gomega) {
			g.Expect(get(dep, ns, builders.DeploymentName(reg))()).To(Succeed())
			g.Expect(dep.Spec.Template.Spec.Containers[0].Image).To(Equal(want.Image))
			g.Expect(dep.Spec.Template.Spec.Containers[0].Env).To(Equal(want.Env))
			g.Expect(*dep.Spec.Replicas).To(Equal(int32(2)))
		}).WithTimeout(waitLong).Should(Succeed())
		settled(ns, reg.Name)
		expectNoWrites(ns, reg.Name)
	})

	It("puts back the ConfigMap's config.yml", func() {
		ns, reg := newRegistry()
		want := configYML(ns, reg.Name)()
		cm := &corev1.ConfigMap{}
		handEdit(cm, ns, builders.ConfigMapName(reg), func() {
			cm.Data[builders.ConfigFile] = "version: 0.1\nstorage: {inmemory: {}}\n"
		})
		Eventually(configYML(ns, reg.Name)).WithTimeout(waitLong).Should(Equal(want))
		settled(ns, reg.Name)
		expectNoWrites(ns, reg.Name)
	})

	It("puts back the Service's ports, leaving what the API server allocated", func() {
		ns, reg := newRegistry()
		svc := &corev1.Service{}
		Expect(get(svc, ns, builders.ServiceName(reg))()).To(Succeed())
		want, clusterIP := svc.Spec.Ports, svc.Spec.ClusterIP
		Expect(want).To(HaveLen(2))
		handEdit(svc, ns, builders.ServiceName(reg), func() {
			svc.Spec.Ports[0].Port = 6000
			svc.Spec.Ports[1].TargetPort = intstr.FromInt32(9999)
		})
		Eventually(func(g Gomega) {
			g.Expect(get(svc, ns, builders.ServiceName(reg))()).To(Succeed())
			g.Expect(svc.Spec.Ports).To(ConsistOf(want))
		}).WithTimeout(waitLong).Should(Succeed())
		Expect(svc.Spec.ClusterIP).To(Equal(clusterIP))
		settled(ns, reg.Name)
		expectNoWrites(ns, reg.Name)
	})

	It("puts back the PodDisruptionBudget, leaving a label the operator does not set", func() {
		ns, reg := newRegistry()
		pdb := &policyv1.PodDisruptionBudget{}
		handEdit(pdb, ns, builders.PDBName(reg), func() {
			pdb.Spec.MaxUnavailable = ptr.To(intstr.FromInt32(2))
			pdb.Labels["hand"] = "edited"
		})
		Eventually(func(g Gomega) {
			g.Expect(get(pdb, ns, builders.PDBName(reg))()).To(Succeed())
			g.Expect(pdb.Spec.MaxUnavailable.IntValue()).To(Equal(1))
		}).WithTimeout(waitLong).Should(Succeed())
		Expect(pdb.Labels).To(HaveKeyWithValue("hand", "edited"), "a label the operator does not set stays")
		settled(ns, reg.Name)
		expectNoWrites(ns, reg.Name)
	})
})
