package controllers

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"golang.org/x/crypto/bcrypt"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	berthv1alpha1 "github.com/berth-dev/berth/api/v1alpha1"
	"github.com/berth-dev/berth/controllers/builders"
)

// countingClient counts every write a reconciler issues.
type countingClient struct {
	client.Client
	writes atomic.Int64
}

func (c *countingClient) Create(ctx context.Context, o client.Object, opts ...client.CreateOption) error {
	c.writes.Add(1)
	return c.Client.Create(ctx, o, opts...)
}
func (c *countingClient) Update(ctx context.Context, o client.Object, opts ...client.UpdateOption) error {
	c.writes.Add(1)
	return c.Client.Update(ctx, o, opts...)
}
func (c *countingClient) Patch(ctx context.Context, o client.Object, p client.Patch, opts ...client.PatchOption) error {
	c.writes.Add(1)
	return c.Client.Patch(ctx, o, p, opts...)
}
func (c *countingClient) Delete(ctx context.Context, o client.Object, opts ...client.DeleteOption) error {
	c.writes.Add(1)
	return c.Client.Delete(ctx, o, opts...)
}
func (c *countingClient) DeleteAllOf(ctx context.Context, o client.Object, opts ...client.DeleteAllOfOption) error {
	c.writes.Add(1)
	return c.Client.DeleteAllOf(ctx, o, opts...)
}
func (c *countingClient) Status() client.SubResourceWriter {
	return &countingStatus{SubResourceWriter: c.Client.Status(), n: &c.writes}
}

type countingStatus struct {
	client.SubResourceWriter
	n *atomic.Int64
}

func (s *countingStatus) Create(ctx context.Context, o client.Object, sub client.Object, opts ...client.SubResourceCreateOption) error {
	s.n.Add(1)
	return s.SubResourceWriter.Create(ctx, o, sub, opts...)
}
func (s *countingStatus) Update(ctx context.Context, o client.Object, opts ...client.SubResourceUpdateOption) error {
	s.n.Add(1)
	return s.SubResourceWriter.Update(ctx, o, opts...)
}
func (s *countingStatus) Patch(ctx context.Context, o client.Object, p client.Patch, opts ...client.SubResourcePatchOption) error {
	s.n.Add(1)
	return s.SubResourceWriter.Patch(ctx, o, p, opts...)
}

var nsCounter int

func newNamespace() string {
	nsCounter++
	name := fmt.Sprintf("reg-test-%d", nsCounter)
	Expect(k8sClient.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}})).To(Succeed())
	return name
}

// applySample creates every object of a sample file in ns and returns the
// Registries' names.
func applySample(path, ns string) []string {
	data, err := os.ReadFile(path)
	Expect(err).NotTo(HaveOccurred())
	var registries []string
	for _, doc := range strings.Split(string(data), "\n---\n") {
		if strings.TrimSpace(doc) == "" {
			continue
		}
		u := &unstructured.Unstructured{}
		Expect(yaml.Unmarshal([]byte(doc), &u.Object)).To(Succeed())
		u.SetNamespace(ns)
		Expect(k8sClient.Create(ctx, u)).To(Succeed(), "creating %s %s from %s", u.GetKind(), u.GetName(), path)
		if u.GetKind() == "Registry" {
			registries = append(registries, u.GetName())
		}
	}
	return registries
}

func getRegistry(ns, name string) *berthv1alpha1.Registry {
	reg := &berthv1alpha1.Registry{}
	Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, reg)).To(Succeed())
	return reg
}

// updateRegistry changes a Registry's spec, retrying on conflicts with the
// controller's status writes.
func updateRegistry(ns, name string, change func(*berthv1alpha1.Registry)) {
	Eventually(func() error {
		reg := getRegistry(ns, name)
		change(reg)
		return k8sClient.Update(ctx, reg)
	}).Should(Succeed())
}

func condition(ns, name, typ string) func() *metav1.Condition {
	return func() *metav1.Condition {
		reg := &berthv1alpha1.Registry{}
		if err := k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, reg); err != nil {
			return nil
		}
		return meta.FindStatusCondition(reg.Status.Conditions, typ)
	}
}

func haveStatusReason(status metav1.ConditionStatus, reason string) OmegaMatcher {
	return And(Not(BeNil()),
		WithTransform(func(c *metav1.Condition) metav1.ConditionStatus { return c.Status }, Equal(status)),
		WithTransform(func(c *metav1.Condition) string { return c.Reason }, Equal(reason)))
}

func get(obj client.Object, ns, name string) func() error {
	return func() error { return k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, obj) }
}

func podChecksum(ns, name string) func() string {
	return func() string {
		dep := &appsv1.Deployment{}
		if err := k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, dep); err != nil {
			return ""
		}
		return dep.Spec.Template.Annotations[builders.ConfigChecksumAnnotation]
	}
}

func configYML(ns, name string) func() string {
	return func() string {
		cm := &corev1.ConfigMap{}
		if err := k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: name + "-config"}, cm); err != nil {
			return ""
		}
		return cm.Data[builders.ConfigFile]
	}
}

// markDeploymentReady plays kube-controller-manager, which envtest lacks:
// it reports every replica of the current generation ready.
func markDeploymentReady(ns, name string) {
	Eventually(func() error {
		dep := &appsv1.Deployment{}
		if err := k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, dep); err != nil {
			return err
		}
		n := *dep.Spec.Replicas
		dep.Status = appsv1.DeploymentStatus{
			ObservedGeneration: dep.Generation, Replicas: n, UpdatedReplicas: n, ReadyReplicas: n, AvailableReplicas: n,
		}
		return k8sClient.Status().Update(ctx, dep)
	}).Should(Succeed())
}

func setSecret(ns, name string, data map[string]string) {
	sec := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	err := k8sClient.Get(ctx, client.ObjectKeyFromObject(sec), sec)
	sec.StringData = data
	if apierrors.IsNotFound(err) {
		Expect(k8sClient.Create(ctx, sec)).To(Succeed())
		return
	}
	Expect(err).NotTo(HaveOccurred())
	Expect(k8sClient.Update(ctx, sec)).To(Succeed())
}

func ownedBy(reg *berthv1alpha1.Registry) OmegaMatcher {
	return WithTransform(func(o client.Object) bool { return metav1.IsControlledBy(o, reg) }, BeTrue())
}

var _ = Describe("Registry controller", func() {
	samples, _ := filepath.Glob(filepath.Join("..", "config", "samples", "berth_v1alpha1_registry*.yaml"))

	It("has Registry samples to check", func() {
		Expect(samples).NotTo(BeEmpty())
	})

	// unsupported are the samples that need a feature this release's
	// registryd does not implement yet (each says which in its comment),
	// with the keys the Registry's status must name. When registryd
	// implements one, its sample moves to the other branch.
	unsupported := map[string][]string{}

	for _, sample := range samples {
		if keys, ok := unsupported[filepath.Base(sample)]; ok {
			It("reports "+filepath.Base(sample)+" as Degraded/UnsupportedConfig and runs nothing", func() {
				ns := newNamespace()
				for _, name := range applySample(sample, ns) {
					Eventually(condition(ns, name, berthv1alpha1.ConditionDegraded)).Should(haveStatusReason(metav1.ConditionTrue, berthv1alpha1.ReasonUnsupportedConfig))
					Expect(condition(ns, name, berthv1alpha1.ConditionReady)()).To(haveStatusReason(metav1.ConditionFalse, berthv1alpha1.ReasonUnsupportedConfig))
					msg := condition(ns, name, berthv1alpha1.ConditionDegraded)().Message
					for _, key := range keys {
						Expect(msg).To(ContainSubstring(key))
					}
					reg := getRegistry(ns, name)
					Expect(reg.Status.ObservedGeneration).To(Equal(reg.Generation))
					Expect(get(&corev1.ConfigMap{}, ns, name+"-config")()).NotTo(Succeed(), "no config.yml registryd would refuse")
					Expect(get(&appsv1.Deployment{}, ns, name)()).NotTo(Succeed(), "no pods to crash-loop")
				}
			})
			continue
		}
		It("reconciles "+filepath.Base(sample)+" to its children", func() {
			ns := newNamespace()
			for _, name := range applySample(sample, ns) {
				reg := getRegistry(ns, name)
				children := []client.Object{&corev1.ConfigMap{}, &corev1.Secret{}, &appsv1.Deployment{}, &corev1.Service{}}
				names := []string{name + "-config", name + "-http-secret", name, name}
				if reg.Spec.Storage.Filesystem != nil {
					children = append(children, &corev1.PersistentVolumeClaim{})
					names = append(names, name+"-data")
				}
				if reg.Spec.Auth != nil && reg.Spec.Auth.Htpasswd != nil && len(reg.Spec.Auth.Htpasswd.Users) > 0 {
					children = append(children, &corev1.Secret{})
					names = append(names, name+"-htpasswd")
				}
				if builders.Replicas(reg) > 1 {
					children = append(children, &policyv1.PodDisruptionBudget{})
					names = append(names, name)
				}
				for i, obj := range children {
					Eventually(get(obj, ns, names[i])).Should(Succeed(), "%T %s", obj, names[i])
					Expect(obj).To(ownedBy(reg), "%T %s is owned by the Registry", obj, names[i])
				}
				if builders.Replicas(reg) <= 1 {
					Consistently(get(&policyv1.PodDisruptionBudget{}, ns, name), "200ms").ShouldNot(Succeed())
				}

				dep := &appsv1.Deployment{}
				Expect(get(dep, ns, name)()).To(Succeed())
				Expect(dep.Spec.Template.Spec.Containers[0].Image).To(Equal("registryd:test"))
				Expect(dep.Spec.Template.Annotations).To(HaveKey(builders.ConfigChecksumAnnotation))

				markDeploymentReady(ns, name)
				Eventually(condition(ns, name, berthv1alpha1.ConditionReady)).Should(haveStatusReason(metav1.ConditionTrue, berthv1alpha1.ReasonAvailable))
				reg = getRegistry(ns, name)
				Expect(reg.Status.ObservedGeneration).To(Equal(reg.Generation))
				Expect(reg.Status.URL).To(Equal(fmt.Sprintf("http://%s.%s.svc:5000", name, ns)))
				Expect(reg.Status.Storage).To(Equal(builders.StorageKind(reg)))
				Expect(meta.IsStatusConditionFalse(reg.Status.Conditions, berthv1alpha1.ConditionDegraded)).To(BeTrue())
			}
		})
	}

	It("updates the children on a spec change and rolls the pods only for what registryd cannot reload", func() {
		ns := newNamespace()
		reg := &berthv1alpha1.Registry{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "changing"},
			Spec:       berthv1alpha1.RegistrySpec{Storage: berthv1alpha1.RegistryStorage{EmptyDir: &berthv1alpha1.EmptyDirStorage{}}},
		}
		Expect(k8sClient.Create(ctx, reg)).To(Succeed())
		Eventually(podChecksum(ns, "changing")).ShouldNot(BeEmpty())
		first := podChecksum(ns, "changing")()

		By("changing the log level: new config, new checksum")
		updateRegistry(ns, "changing", func(reg *berthv1alpha1.Registry) {
			reg.Spec.Log = &berthv1alpha1.RegistryLog{Level: "debug"}
		})
		Eventually(configYML(ns, "changing")).Should(ContainSubstring("level: debug"))
		Eventually(podChecksum(ns, "changing")).ShouldNot(Equal(first))
		second := podChecksum(ns, "changing")()

		By("entering read-only mode: new config, same checksum (registryd reloads it)")
		updateRegistry(ns, "changing", func(reg *berthv1alpha1.Registry) { reg.Spec.ReadOnly = true })
		Eventually(configYML(ns, "changing")).Should(ContainSubstring("readonly:\n      enabled: true"))
		Consistently(podChecksum(ns, "changing"), "300ms").Should(Equal(second))
		Eventually(func() bool { return getRegistry(ns, "changing").Status.ReadOnly }).Should(BeTrue())
		Eventually(condition(ns, "changing", berthv1alpha1.ConditionReadOnly)).Should(haveStatusReason(metav1.ConditionTrue, berthv1alpha1.ReasonSpecReadOnly))
	})

	It("reports a missing Secret as Degraded/SecretNotFound and recovers when it appears", func() {
		ns := newNamespace()
		reg := &berthv1alpha1.Registry{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "notify"},
			Spec: berthv1alpha1.RegistrySpec{
				Storage: berthv1alpha1.RegistryStorage{EmptyDir: &berthv1alpha1.EmptyDirStorage{}},
				Notifications: &berthv1alpha1.RegistryNotifications{Endpoints: []berthv1alpha1.NotificationEndpoint{{
					Name: "audit", URL: "https://audit.example.com/events",
					HeadersFrom: []berthv1alpha1.HeaderFromSecret{{Name: "Authorization",
						SecretRef: berthv1alpha1.SecretKeyRef{Name: "token", Key: "header"}}},
				}}},
			},
		}
		Expect(k8sClient.Create(ctx, reg)).To(Succeed())
		Eventually(condition(ns, "notify", berthv1alpha1.ConditionDegraded)).Should(haveStatusReason(metav1.ConditionTrue, berthv1alpha1.ReasonSecretNotFound))
		Expect(condition(ns, "notify", berthv1alpha1.ConditionDegraded)().Message).To(ContainSubstring("spec.notifications.endpoints[0].headersFrom[0].secretRef"))
		Expect(get(&appsv1.Deployment{}, ns, "notify")()).NotTo(Succeed(), "nothing runs without its credentials")

		setSecret(ns, "token", map[string]string{"header": "Bearer a"})
		Eventually(condition(ns, "notify", berthv1alpha1.ConditionDegraded)).Should(haveStatusReason(metav1.ConditionFalse, berthv1alpha1.ReasonAsExpected))
		Eventually(get(&appsv1.Deployment{}, ns, "notify")).Should(Succeed())
		before := podChecksum(ns, "notify")()

		By("rotating the header's Secret: the pods roll")
		setSecret(ns, "token", map[string]string{"header": "Bearer b"})
		Eventually(podChecksum(ns, "notify")).ShouldNot(Equal(before))
	})

	It("keeps the last good config running when a change needs a feature registryd does not implement yet", func() {
		ns := newNamespace()
		reg := &berthv1alpha1.Registry{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "staged"},
			Spec:       berthv1alpha1.RegistrySpec{Storage: berthv1alpha1.RegistryStorage{EmptyDir: &berthv1alpha1.EmptyDirStorage{}}},
		}
		Expect(k8sClient.Create(ctx, reg)).To(Succeed())
		Eventually(podChecksum(ns, "staged")).ShouldNot(BeEmpty())
		markDeploymentReady(ns, "staged")
		Eventually(condition(ns, "staged", berthv1alpha1.ConditionReady)).Should(haveStatusReason(metav1.ConditionTrue, berthv1alpha1.ReasonAvailable))
		sum, config := podChecksum(ns, "staged")(), configYML(ns, "staged")()

		By("adding a registry middleware through extraConfig, which registryd does not implement")
		updateRegistry(ns, "staged", func(reg *berthv1alpha1.Registry) {
			reg.Spec.ExtraConfig = &apiextensionsv1.JSON{Raw: []byte(`{"middleware":{"registry":[{"name":"example"}]}}`)}
		})
		Eventually(condition(ns, "staged", berthv1alpha1.ConditionDegraded)).Should(haveStatusReason(metav1.ConditionTrue, berthv1alpha1.ReasonUnsupportedConfig))
		Expect(condition(ns, "staged", berthv1alpha1.ConditionDegraded)().Message).To(ContainSubstring(`middleware.registry[0].name: "example" not supported yet`))
		Consistently(podChecksum(ns, "staged"), "300ms").Should(Equal(sum), "the running pods are not rolled")
		Expect(configYML(ns, "staged")()).To(Equal(config), "config.yml keeps the last good configuration")

		By("dropping the middleware again: the registry recovers")
		updateRegistry(ns, "staged", func(reg *berthv1alpha1.Registry) { reg.Spec.ExtraConfig = nil })
		Eventually(condition(ns, "staged", berthv1alpha1.ConditionDegraded)).Should(haveStatusReason(metav1.ConditionFalse, berthv1alpha1.ReasonAsExpected))
		Expect(podChecksum(ns, "staged")()).To(Equal(sum))
	})

	It("regenerates htpasswd when a password Secret changes, without rolling the pods", func() {
		ns := newNamespace()
		applySample(filepath.Join("..", "config", "samples", "berth_v1alpha1_registry_htpasswd.yaml"), ns)
		htpasswd := func() string {
			s := &corev1.Secret{}
			if err := k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: "private-htpasswd"}, s); err != nil {
				return ""
			}
			return string(s.Data[builders.HTPasswdSecretKey])
		}
		Eventually(htpasswd).Should(ContainSubstring("bob:"))
		first := htpasswd()
		Eventually(podChecksum(ns, "private")).ShouldNot(BeEmpty())
		sum := podChecksum(ns, "private")()

		setSecret(ns, "alice-password", map[string]string{"password": "a-new-password"})
		Eventually(htpasswd).ShouldNot(Equal(first))
		lines := map[string]string{}
		for _, l := range strings.Split(strings.TrimSpace(htpasswd()), "\n") {
			user, hash, _ := strings.Cut(l, ":")
			lines[user] = hash
		}
		Expect(bcrypt.CompareHashAndPassword([]byte(lines["alice"]), []byte("a-new-password"))).To(Succeed())
		Expect(first).To(ContainSubstring("bob:"+lines["bob"]), "bob's unchanged password keeps its hash")
		Consistently(podChecksum(ns, "private"), "300ms").Should(Equal(sum))
	})

	It("reports extraConfig that registryd refuses as Degraded/InvalidConfig naming the key", func() {
		ns := newNamespace()
		reg := &berthv1alpha1.Registry{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "extra"},
			Spec: berthv1alpha1.RegistrySpec{
				Storage:     berthv1alpha1.RegistryStorage{InMemory: &berthv1alpha1.InMemoryStorage{}},
				ExtraConfig: &apiextensionsv1.JSON{Raw: []byte(`{"storage":{"tag":{"concurency":4}}}`)},
			},
		}
		Expect(k8sClient.Create(ctx, reg)).To(Succeed())
		Eventually(condition(ns, "extra", berthv1alpha1.ConditionDegraded)).Should(haveStatusReason(metav1.ConditionTrue, berthv1alpha1.ReasonInvalidConfig))
		Expect(condition(ns, "extra", berthv1alpha1.ConditionDegraded)().Message).To(ContainSubstring("storage.tag.concurency"))
	})

	It("deletes the PodDisruptionBudget and the schedule's CronJob and RBAC when the spec no longer asks for them", func() {
		ns := newNamespace()
		reg := &berthv1alpha1.Registry{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "shrinking"},
			Spec: berthv1alpha1.RegistrySpec{Replicas: ptr.To[int32](2),
				Storage: berthv1alpha1.RegistryStorage{Filesystem: &berthv1alpha1.FilesystemStorage{
					AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteMany}}},
				GarbageCollection: &berthv1alpha1.GarbageCollectionPolicy{Schedule: "@daily"}},
		}
		Expect(k8sClient.Create(ctx, reg)).To(Succeed())
		trigger := builders.GCTriggerName(reg)
		children := []struct {
			obj  client.Object
			name string
		}{
			{&policyv1.PodDisruptionBudget{}, builders.PDBName(reg)},
			{&batchv1.CronJob{}, builders.GCCronJobName(reg)},
			{&corev1.ServiceAccount{}, trigger},
			{&rbacv1.Role{}, trigger},
			{&rbacv1.RoleBinding{}, trigger},
		}
		for _, c := range children {
			Eventually(get(c.obj, ns, c.name)).Should(Succeed(), "%T %s", c.obj, c.name)
		}

		updateRegistry(ns, "shrinking", func(reg *berthv1alpha1.Registry) {
			reg.Spec.Replicas = ptr.To[int32](1)
			reg.Spec.GarbageCollection = nil
		})
		for _, c := range children {
			Eventually(func() bool { return apierrors.IsNotFound(get(c.obj, ns, c.name)()) }).Should(BeTrue(), "%T %s is deleted", c.obj, c.name)
		}
	})

	It("issues no write when it reconciles an unchanged Registry", func() {
		ns := newNamespace()
		name := "steady"
		setSecret(ns, "token", map[string]string{"header": "Bearer a"})
		reg := &berthv1alpha1.Registry{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
			Spec: berthv1alpha1.RegistrySpec{
				Replicas: ptr.To[int32](3),
				Storage: berthv1alpha1.RegistryStorage{Filesystem: &berthv1alpha1.FilesystemStorage{
					AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteMany}}},
				Metrics: &berthv1alpha1.RegistryMetrics{Enabled: true},
				Notifications: &berthv1alpha1.RegistryNotifications{Endpoints: []berthv1alpha1.NotificationEndpoint{{
					Name: "audit", URL: "https://audit.example.com/events",
					HeadersFrom: []berthv1alpha1.HeaderFromSecret{{Name: "Authorization",
						SecretRef: berthv1alpha1.SecretKeyRef{Name: "token", Key: "header"}}},
				}}},
			},
		}
		Expect(k8sClient.Create(ctx, reg)).To(Succeed())
		Eventually(get(&policyv1.PodDisruptionBudget{}, ns, name)).Should(Succeed())
		markDeploymentReady(ns, name)
		Eventually(condition(ns, name, berthv1alpha1.ConditionReady)).Should(haveStatusReason(metav1.ConditionTrue, berthv1alpha1.ReasonAvailable))

		r, req := expectNoWrites(ns, name)

		By("a change is written")
		updateRegistry(ns, name, func(reg *berthv1alpha1.Registry) { reg.Spec.Replicas = ptr.To[int32](2) })
		_, err := r.Reconcile(ctx, req)
		Expect(err).NotTo(HaveOccurred())
		Expect(r.Client.(*countingClient).writes.Load()).To(BeNumerically(">", 0))
	})

	It("issues no write when it reconciles an unchanged Registry that registryd cannot run yet", func() {
		// Every sample runs now; a registry middleware (extraConfig) is
		// something registryd still lacks.
		ns, name := newNamespace(), "unsupported"
		Expect(k8sClient.Create(ctx, &berthv1alpha1.Registry{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
			Spec: berthv1alpha1.RegistrySpec{
				Storage:     berthv1alpha1.RegistryStorage{EmptyDir: &berthv1alpha1.EmptyDirStorage{}},
				ExtraConfig: &apiextensionsv1.JSON{Raw: []byte(`{"middleware":{"registry":[{"name":"example"}]}}`)},
			},
		})).To(Succeed())
		Eventually(condition(ns, name, berthv1alpha1.ConditionDegraded)).Should(haveStatusReason(metav1.ConditionTrue, berthv1alpha1.ReasonUnsupportedConfig))
		expectNoWrites(ns, name)
	})
})

// countingReconciler is a Registry reconciler whose client counts its
// writes and reads from the API server, and the request for ns/name.
func countingReconciler(ns, name string) (*RegistryReconciler, *countingClient, ctrl.Request) {
	counting := &countingClient{Client: directClient()}
	r := &RegistryReconciler{Client: counting, RegistrydImage: "registryd:test"}
	return r, counting, ctrl.Request{NamespacedName: client.ObjectKey{Namespace: ns, Name: name}}
}

// reconcileWrites reconciles the Registry once with a counting client and
// returns how many writes it made.
func reconcileWrites(ns, name string) int64 {
	r, counting, req := countingReconciler(ns, name)
	_, err := r.Reconcile(ctx, req)
	Expect(err).NotTo(HaveOccurred())
	return counting.writes.Load()
}

// expectNoWrites reconciles the Registry twice with a counting client and
// expects no write: its children and status are already what they should
// be. It returns the reconciler and request for further steps.
func expectNoWrites(ns, name string) (*RegistryReconciler, ctrl.Request) {
	r, counting, req := countingReconciler(ns, name)
	for i := range 2 {
		_, err := r.Reconcile(ctx, req)
		Expect(err).NotTo(HaveOccurred())
		Expect(counting.writes.Load()).To(BeZero(), "reconcile %d of an unchanged Registry wrote", i+1)
	}
	return r, req
}

// directClient reads from the API server, not a cache: what the counting
// reconciler sees is what is stored.
func directClient() client.Client {
	c, err := client.New(cfg, client.Options{Scheme: scheme.Scheme})
	Expect(err).NotTo(HaveOccurred())
	return c
}
