package gctest

import (
	"bytes"
	"context"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	berthv1alpha1 "github.com/berth-dev/berth/api/v1alpha1"
	"github.com/berth-dev/berth/controllers/builders"
	"github.com/berth-dev/berth/internal/gctrigger"
)

var _ = Describe("A garbage collection schedule", func() {
	var ctx context.Context
	BeforeEach(func() { ctx = context.Background() })

	It("creates a CronJob whose trigger may only create GarbageCollections and read its Registry, and removes it with the schedule", func() {
		e := setup(ctx, 1, func(reg *berthv1alpha1.Registry) {
			reg.Spec.GarbageCollection = &berthv1alpha1.GarbageCollectionPolicy{
				Schedule: "30 2 * * *", DeleteUntagged: true, Timeout: &berthv1alpha1.Duration{Duration: 20 * time.Minute},
				GracePeriod: &berthv1alpha1.Duration{Duration: 2 * time.Hour},
			}
		})
		key := func(name string) client.ObjectKey { return client.ObjectKey{Namespace: e.ns, Name: name} }
		cron := &batchv1.CronJob{}
		Eventually(func() error { return k8sClient.Get(ctx, key("reg-gc"), cron) }).Should(Succeed())
		Expect(cron.Spec.Schedule).To(Equal("30 2 * * *"))
		Expect(cron.Spec.ConcurrencyPolicy).To(Equal(batchv1.ForbidConcurrent))
		Expect(cron.Spec.StartingDeadlineSeconds).NotTo(BeNil())
		Expect(*cron.Spec.Suspend).To(BeFalse())
		pod := cron.Spec.JobTemplate.Spec.Template.Spec
		Expect(pod.ServiceAccountName).To(Equal("reg-gc-trigger"))
		Expect(pod.Containers[0].Image).To(Equal("manager:test"))
		Expect(pod.Containers[0].Args).To(Equal([]string{"gc-trigger", "--registry", "reg", "--delete-untagged=true", "--dry-run=false",
			"--timeout", "20m0s", "--grace-period", "2h0m0s"}))
		reg := e.registry()
		for _, obj := range []client.Object{&corev1.ServiceAccount{}, &rbacv1.Role{}, &rbacv1.RoleBinding{}, cron} {
			Expect(k8sClient.Get(ctx, key(map[bool]string{true: "reg-gc", false: "reg-gc-trigger"}[obj == client.Object(cron)]), obj)).To(Succeed())
			Expect(metav1.IsControlledBy(obj, reg)).To(BeTrue(), "%T is not owned by the Registry", obj)
		}

		By("letting the trigger's ServiceAccount create GarbageCollections there and read its Registry, nothing else")
		sa := impersonate("system:serviceaccount:" + e.ns + ":reg-gc-trigger")
		gc := &berthv1alpha1.GarbageCollection{ObjectMeta: metav1.ObjectMeta{Name: "by-trigger", Namespace: e.ns},
			Spec: berthv1alpha1.GarbageCollectionSpec{RegistryName: "reg", DryRun: true}}
		Eventually(func() error { return sa.Create(ctx, gc.DeepCopy()) }).Should(Succeed())
		Expect(sa.Get(ctx, key("reg"), &berthv1alpha1.Registry{})).To(Succeed())
		other := registryWithReplicas(e.ns, "other", 1)
		Expect(k8sClient.Create(ctx, other)).To(Succeed())
		Expect(apierrors.IsForbidden(sa.Get(ctx, key("other"), &berthv1alpha1.Registry{}))).To(BeTrue())
		Expect(apierrors.IsForbidden(sa.List(ctx, &berthv1alpha1.RegistryList{}, client.InNamespace(e.ns)))).To(BeTrue())
		reg.Spec.ReadOnly = true
		Expect(apierrors.IsForbidden(sa.Update(ctx, reg))).To(BeTrue())
		Expect(apierrors.IsForbidden(sa.List(ctx, &berthv1alpha1.GarbageCollectionList{}, client.InNamespace(e.ns)))).To(BeTrue())
		Expect(apierrors.IsForbidden(sa.Delete(ctx, gc))).To(BeTrue())
		Expect(apierrors.IsForbidden(sa.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "x", Namespace: e.ns}}))).To(BeTrue())
		otherNS := newNamespace(ctx)
		Expect(apierrors.IsForbidden(sa.Create(ctx, &berthv1alpha1.GarbageCollection{ObjectMeta: metav1.ObjectMeta{Name: "x", Namespace: otherNS},
			Spec: berthv1alpha1.GarbageCollectionSpec{RegistryName: "reg"}}))).To(BeTrue())

		By("suspending")
		Eventually(func() error {
			r := e.registry()
			r.Spec.GarbageCollection.Suspend = true
			return k8sClient.Update(ctx, r)
		}).Should(Succeed())
		Eventually(func() bool { Expect(k8sClient.Get(ctx, key("reg-gc"), cron)).To(Succeed()); return *cron.Spec.Suspend }).Should(BeTrue())

		By("removing the schedule")
		Eventually(func() error {
			r := e.registry()
			r.Spec.GarbageCollection = nil
			return k8sClient.Update(ctx, r)
		}).Should(Succeed())
		for _, obj := range []client.Object{&batchv1.CronJob{}, &rbacv1.RoleBinding{}, &rbacv1.Role{}, &corev1.ServiceAccount{}} {
			name := "reg-gc-trigger"
			if _, ok := obj.(*batchv1.CronJob); ok {
				name = "reg-gc"
			}
			Eventually(func() bool { return apierrors.IsNotFound(k8sClient.Get(ctx, key(name), obj)) }).Should(BeTrue(), "%T %s remains", obj, name)
		}
	})

	It("has a trigger command that creates the run once, named after its Job", func() {
		e := setup(ctx, 1, nil)
		var out, errOut bytes.Buffer
		config := func() (*rest.Config, error) { return cfg, nil }
		args := []string{"--registry", "reg", "--namespace", e.ns, "--name", "reg-gc-29401234", "--delete-untagged", "--timeout", "45m", "--grace-period", "90m"}
		Expect(gctrigger.Main(ctx, args, config, &out, &errOut)).To(Equal(0), errOut.String())
		Expect(out.String()).To(ContainSubstring("Created GarbageCollection " + e.ns + "/reg-gc-29401234"))
		gc := e.get("reg-gc-29401234")
		Expect(gc.Spec).To(Equal(berthv1alpha1.GarbageCollectionSpec{RegistryName: "reg", DeleteUntagged: true,
			Timeout: &berthv1alpha1.Duration{Duration: 45 * time.Minute}, GracePeriod: &berthv1alpha1.Duration{Duration: 90 * time.Minute}}))
		Expect(gc.Labels).To(HaveKeyWithValue(builders.TriggerLabel, "schedule"))

		By("a retried trigger pod is a success that creates nothing new")
		out.Reset()
		Expect(gctrigger.Main(ctx, args, config, &out, &errOut)).To(Equal(0), errOut.String())
		Expect(out.String()).To(ContainSubstring("exists already"))
		var list berthv1alpha1.GarbageCollectionList
		Expect(k8sClient.List(ctx, &list, client.InNamespace(e.ns))).To(Succeed())
		Expect(list.Items).To(HaveLen(1))

		By("refusing bad arguments with the flag named")
		errOut.Reset()
		Expect(gctrigger.Main(ctx, []string{"--namespace", e.ns, "--timeout", "1s"}, config, &out, &errOut)).To(Equal(2))
		Expect(errOut.String()).To(And(ContainSubstring("--registry is required"), ContainSubstring("--timeout must be at least 10s")))

		By("the run it created is collected like any other")
		e.waitPhase("reg-gc-29401234", berthv1alpha1.GCCollecting)
		e.finishJob(e.job("reg-gc-29401234"), true, summaryJSON)
		e.waitPhase("reg-gc-29401234", berthv1alpha1.GCSucceeded)
	})

	It("prunes finished runs to the history limits", func() {
		e := setup(ctx, 1, func(reg *berthv1alpha1.Registry) {
			reg.Spec.GarbageCollection = &berthv1alpha1.GarbageCollectionPolicy{
				SuccessfulRunsHistoryLimit: ptrTo[int32](1), FailedRunsHistoryLimit: ptrTo[int32](1)}
		})
		for _, name := range []string{"gc-1", "gc-2", "gc-3"} {
			e.run(name, nil)
			e.waitPhase(name, berthv1alpha1.GCCollecting)
			e.finishJob(e.job(name), true, summaryJSON)
			e.waitPhase(name, berthv1alpha1.GCSucceeded)
		}
		e.run("gc-bad", nil)
		e.waitPhase("gc-bad", berthv1alpha1.GCCollecting)
		e.finishJob(e.job("gc-bad"), false, `{"error":"boom"}`)
		e.waitPhase("gc-bad", berthv1alpha1.GCFailed)
		Eventually(func() []string {
			var list berthv1alpha1.GarbageCollectionList
			Expect(k8sClient.List(ctx, &list, client.InNamespace(e.ns))).To(Succeed())
			var names []string
			for _, gc := range list.Items {
				if gc.DeletionTimestamp.IsZero() {
					names = append(names, gc.Name)
				}
			}
			return names
		}).Should(ConsistOf("gc-3", "gc-bad"))
	})
})

var _ = Describe("The API server", func() {
	It("refuses invalid garbage collection specs, naming the field", func() {
		ctx := context.Background()
		ns := newNamespace(ctx)
		bad := map[string]*berthv1alpha1.GarbageCollection{
			"spec.timeout must be at least 10s": {Spec: berthv1alpha1.GarbageCollectionSpec{RegistryName: "r", Timeout: &berthv1alpha1.Duration{Duration: time.Second}}},
			"spec.registryName":                 {Spec: berthv1alpha1.GarbageCollectionSpec{}},
		}
		for want, gc := range bad {
			gc.Name, gc.Namespace = "bad", ns
			err := k8sClient.Create(ctx, gc)
			Expect(err).To(HaveOccurred())
			Expect(err.Error()).To(ContainSubstring(want))
		}
		gc := &berthv1alpha1.GarbageCollection{ObjectMeta: metav1.ObjectMeta{Name: "fixed", Namespace: ns},
			Spec: berthv1alpha1.GarbageCollectionSpec{RegistryName: "r"}}
		Expect(k8sClient.Create(ctx, gc)).To(Succeed())
		Expect(gc.Spec.Timeout.Duration).To(Equal(time.Hour), "default timeout")
		Expect(gc.Spec.GracePeriod.Duration).To(Equal(time.Hour), "default grace period")
		gc.Spec.DryRun = true
		err := k8sClient.Update(ctx, gc)
		Expect(err).To(HaveOccurred())
		Expect(err.Error()).To(ContainSubstring("spec is immutable"))

		reg := registryWithReplicas(ns, "r", 1)
		reg.Spec.GarbageCollection = &berthv1alpha1.GarbageCollectionPolicy{DeleteUntagged: true}
		err = k8sClient.Create(ctx, reg)
		Expect(err).To(HaveOccurred())
		Expect(err.Error()).To(ContainSubstring("spec.garbageCollection.schedule: required when"))
		reg.Spec.GarbageCollection = &berthv1alpha1.GarbageCollectionPolicy{Schedule: "@daily", Timeout: &berthv1alpha1.Duration{Duration: 5 * time.Second}}
		err = k8sClient.Create(ctx, reg)
		Expect(err).To(HaveOccurred())
		Expect(err.Error()).To(ContainSubstring("spec.garbageCollection.timeout must be at least 10s"))
	})
})

// impersonate is a client acting as user (the admin envtest user may
// impersonate anyone; RBAC then decides).
func impersonate(user string) client.Client {
	c := rest.CopyConfig(cfg)
	c.Impersonate = rest.ImpersonationConfig{UserName: user, Groups: []string{"system:serviceaccounts", "system:authenticated"}}
	cl, err := client.New(c, client.Options{Scheme: scheme.Scheme})
	Expect(err).NotTo(HaveOccurred())
	return cl
}
