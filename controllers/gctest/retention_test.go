package gctest

import (
	"bytes"
	"context"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	berthv1alpha1 "github.com/berth-dev/berth/api/v1alpha1"
	"github.com/berth-dev/berth/controllers/builders"
	"github.com/berth-dev/berth/internal/gctrigger"
	"github.com/berth-dev/berth/registryd/retention"
)

// retentionRules keep the 10 newest CI builds and every semver tag, and
// drop nightly tags older than 14 days elsewhere.
var retentionRules = []berthv1alpha1.RetentionRule{
	{Repositories: []berthv1alpha1.RepositoryGlob{"ci/**"}, KeepTags: []berthv1alpha1.TagPattern{`v?[0-9]+\.[0-9]+\.[0-9]+`},
		KeepMostRecentlyPushed: ptrTo[int32](10)},
	{Repositories: []berthv1alpha1.RepositoryGlob{"**"}, PruneTags: []berthv1alpha1.TagPattern{"nightly-.*"},
		KeepPushedWithin: &berthv1alpha1.Duration{Duration: 336 * time.Hour}},
}

// retentionSummaryJSON is a termination message of a run with rules.
const retentionSummaryJSON = `{"dryRun":false,"deleteUntagged":false,"repositories":3,"manifestsDeleted":4,"blobsDeleted":9,"bytesFreed":7340032,` +
	`"durationSeconds":2.5,"errorCount":0,"retention":{"rules":2,"repositories":2,"tagsDeleted":12,"tagsKeptByLastTagGuard":1,` +
	`"byRepository":[{"repository":"ci/app","tagsDeleted":9},{"repository":"web","tagsDeleted":3}]}}`

var _ = Describe("Retention rules", func() {
	var ctx context.Context
	BeforeEach(func() { ctx = context.Background() })

	It("travel from the Registry to each scheduled run, reach its collector and come back as counts", func() {
		e := setup(ctx, 1, func(reg *berthv1alpha1.Registry) {
			reg.Spec.GarbageCollection = &berthv1alpha1.GarbageCollectionPolicy{Schedule: "0 3 * * *", Retention: retentionRules,
				GracePeriod: &berthv1alpha1.Duration{}}
		})
		By("the trigger, as its ServiceAccount, copying the Registry's rules into the run")
		var out, errOut bytes.Buffer
		asTrigger := func() (*rest.Config, error) {
			c := rest.CopyConfig(cfg)
			c.Impersonate = rest.ImpersonationConfig{UserName: "system:serviceaccount:" + e.ns + ":reg-gc-trigger",
				Groups: []string{"system:serviceaccounts", "system:authenticated"}}
			return c, nil
		}
		// Until the Registry controller has created the trigger's Role and
		// RoleBinding, the trigger may not read the Registry.
		Eventually(func() int {
			errOut.Reset()
			return gctrigger.Main(ctx, []string{"--registry", "reg", "--namespace", e.ns, "--name", "reg-gc-1", "--grace-period", "0s"}, asTrigger, &out, &errOut)
		}).Should(Equal(0), func() string { return errOut.String() })
		Expect(out.String()).To(ContainSubstring("with 2 retention rules"))
		gc := e.get("reg-gc-1")
		Expect(gc.Spec.Retention).To(Equal(retentionRules))

		By("a later change of the Registry's rules leaving that run's record alone")
		Eventually(func() error {
			r := e.registry()
			r.Spec.GarbageCollection.Retention = retentionRules[:1]
			return k8sClient.Update(ctx, r)
		}).Should(Succeed())
		Expect(e.get("reg-gc-1").Spec.Retention).To(Equal(retentionRules))

		By("mounting the rules into the collector as registryd's policy file")
		gc = e.waitPhase("reg-gc-1", berthv1alpha1.GCCollecting)
		job := e.job("reg-gc-1")
		pod := job.Spec.Template.Spec
		Expect(strings.Join(pod.Containers[0].Args, " ")).To(ContainSubstring("--retention-policy /etc/registryd/retention/policy.json"))
		cm := &corev1.ConfigMap{}
		Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: e.ns, Name: "reg-gc-1-retention"}, cm)).To(Succeed())
		Expect(metav1.IsControlledBy(cm, gc)).To(BeTrue(), "the policy is deleted with its run")
		policy, err := retention.Parse([]byte(cm.Data[builders.RetentionFile]))
		Expect(err).NotTo(HaveOccurred())
		Expect(policy.Rules()).To(Equal(2))
		Expect(policy.Match("ci/app")).To(Equal(0))
		Expect(policy.Match("web")).To(Equal(1))
		mounted := false
		for _, v := range pod.Volumes {
			mounted = mounted || v.ConfigMap != nil && v.ConfigMap.Name == cm.Name
		}
		Expect(mounted).To(BeTrue())

		By("reporting the tags deleted on the run and on the Registry")
		e.finishJob(job, true, retentionSummaryJSON)
		gc = e.waitPhase("reg-gc-1", berthv1alpha1.GCSucceeded)
		Expect(gc.Status.Summary.Retention).To(Equal(&berthv1alpha1.RetentionSummary{TagsDeleted: 12, Repositories: 2, TagsKeptByLastTagGuard: 1,
			ByRepository: []berthv1alpha1.RepositoryTagsDeleted{{Repository: "ci/app", TagsDeleted: 9}, {Repository: "web", TagsDeleted: 3}}}))
		Expect(gc.Status.Message).To(Equal("Deleted 12 tags, 4 manifests and 9 blobs (7.0 MiB); the last-tag guard kept 1 tags"))
		Eventually(func() int64 {
			if l := e.registry().Status.LastGarbageCollection; l != nil {
				return l.TagsDeleted
			}
			return 0
		}).Should(Equal(int64(12)))

		By("a run created by hand carrying no rules: none applied, no policy mounted")
		e.run("by-hand", nil)
		e.waitPhase("by-hand", berthv1alpha1.GCCollecting)
		Expect(e.get("by-hand").Spec.Retention).To(BeEmpty())
		Expect(strings.Join(e.job("by-hand").Spec.Template.Spec.Containers[0].Args, " ")).NotTo(ContainSubstring("--retention-policy"))
		Expect(apierrors.IsNotFound(k8sClient.Get(ctx, client.ObjectKey{Namespace: e.ns, Name: "by-hand-retention"}, &corev1.ConfigMap{}))).To(BeTrue())
		e.finishJob(e.job("by-hand"), true, summaryJSON)
		gc = e.waitPhase("by-hand", berthv1alpha1.GCSucceeded)
		Expect(gc.Status.Summary.Retention).To(BeNil())

		By("a run created by hand with its own rules")
		e.run("own-rules", func(gc *berthv1alpha1.GarbageCollection) {
			gc.Spec.DryRun = true
			gc.Spec.Retention = retentionRules[1:]
		})
		job = e.job("own-rules") // the policy is applied before the Job is created
		Expect(strings.Join(job.Spec.Template.Spec.Containers[0].Args, " ")).To(ContainSubstring("--dry-run"))
		Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: e.ns, Name: "own-rules-retention"}, cm)).To(Succeed())
		policy, err = retention.Parse([]byte(cm.Data[builders.RetentionFile]))
		Expect(err).NotTo(HaveOccurred())
		Expect(policy.Rules()).To(Equal(1))
	})
})

var _ = Describe("The API server", func() {
	It("refuses invalid retention rules, naming the field", func() {
		ctx := context.Background()
		ns := newNamespace(ctx)
		rule := func(mutate func(*berthv1alpha1.RetentionRule)) []berthv1alpha1.RetentionRule {
			r := berthv1alpha1.RetentionRule{Repositories: []berthv1alpha1.RepositoryGlob{"ci/**"}, KeepMostRecentlyPushed: ptrTo[int32](3)}
			mutate(&r)
			return []berthv1alpha1.RetentionRule{retentionRules[0], r}
		}
		bad := map[string][]berthv1alpha1.RetentionRule{
			"retention[1].keepTags[0]: Invalid value: \"string\": error parsing regexp: missing closing ): `(v1` evaluating rule: must be a regular expression": rule(func(r *berthv1alpha1.RetentionRule) {
				r.KeepTags = []berthv1alpha1.TagPattern{"(v1"}
			}),
			"retention[1].pruneTags[1]: Invalid value: \"string\": error parsing regexp": rule(func(r *berthv1alpha1.RetentionRule) {
				r.PruneTags = []berthv1alpha1.TagPattern{"ok", "*x"}
			}),
			"retention[1].repositories[0]: Invalid value: \"string\": must be a repository glob": rule(func(r *berthv1alpha1.RetentionRule) {
				r.Repositories = []berthv1alpha1.RepositoryGlob{"Team/[a-z]"}
			}),
			"retention[1].keepMostRecentlyPushed: Invalid value: -1": rule(func(r *berthv1alpha1.RetentionRule) {
				r.KeepMostRecentlyPushed = ptrTo[int32](-1)
			}),
			"retention[1].keepPushedWithin: Invalid value: \"string\": keepPushedWithin must be positive": rule(func(r *berthv1alpha1.RetentionRule) {
				r.KeepPushedWithin = &berthv1alpha1.Duration{}
			}),
			"retention[1]: Invalid value: \"object\": the rule selects every tag and keeps none": rule(func(r *berthv1alpha1.RetentionRule) {
				r.KeepMostRecentlyPushed = ptrTo[int32](0)
			}),
			"retention[1].repositories: Required value": rule(func(r *berthv1alpha1.RetentionRule) {
				r.Repositories = nil
			}),
		}
		for want, rules := range bad {
			By("a Registry: " + want)
			reg := registryWithReplicas(ns, "bad", 1)
			reg.Spec.GarbageCollection = &berthv1alpha1.GarbageCollectionPolicy{Schedule: "@daily", Retention: rules}
			err := k8sClient.Create(ctx, reg)
			Expect(err).To(HaveOccurred())
			Expect(err.Error()).To(ContainSubstring("spec.garbageCollection." + want))

			By("a GarbageCollection: " + want)
			gc := &berthv1alpha1.GarbageCollection{ObjectMeta: metav1.ObjectMeta{Name: "bad", Namespace: ns},
				Spec: berthv1alpha1.GarbageCollectionSpec{RegistryName: "r", Retention: rules}}
			err = k8sClient.Create(ctx, gc)
			Expect(err).To(HaveOccurred())
			Expect(err.Error()).To(ContainSubstring("spec." + want))
		}

		By("rules without a schedule, which no run would apply")
		reg := registryWithReplicas(ns, "no-schedule", 1)
		reg.Spec.GarbageCollection = &berthv1alpha1.GarbageCollectionPolicy{Retention: retentionRules}
		err := k8sClient.Create(ctx, reg)
		Expect(err).To(HaveOccurred())
		Expect(err.Error()).To(ContainSubstring("spec.garbageCollection.schedule: required when suspend, deleteUntagged, dryRun, timeout, gracePeriod or retention is set"))

		By("too many rules")
		many := make([]berthv1alpha1.RetentionRule, 33)
		for i := range many {
			many[i] = retentionRules[0]
		}
		gc := &berthv1alpha1.GarbageCollection{ObjectMeta: metav1.ObjectMeta{Name: "many", Namespace: ns},
			Spec: berthv1alpha1.GarbageCollectionSpec{RegistryName: "r", Retention: many}}
		err = k8sClient.Create(ctx, gc)
		Expect(err).To(HaveOccurred())
		Expect(err.Error()).To(ContainSubstring("spec.retention: Too many: 33: must have at most 32 items"))

		By("accepting valid rules, at the bounds, and keeping them immutable on the run")
		full := make([]berthv1alpha1.RetentionRule, 32)
		for i := range full {
			r := berthv1alpha1.RetentionRule{KeepMostRecentlyPushed: ptrTo[int32](1), DeleteLastTag: true}
			for range 16 {
				r.Repositories = append(r.Repositories, berthv1alpha1.RepositoryGlob(strings.Repeat("a", 254)+"/*"))
				r.KeepTags = append(r.KeepTags, berthv1alpha1.TagPattern("("+strings.Repeat("v", 250)+")+.*"))
				r.PruneTags = append(r.PruneTags, berthv1alpha1.TagPattern("[a-z]{1,10}"+strings.Repeat("x", 245)))
			}
			full[i] = r
		}
		gc = &berthv1alpha1.GarbageCollection{ObjectMeta: metav1.ObjectMeta{Name: "full", Namespace: ns},
			Spec: berthv1alpha1.GarbageCollectionSpec{RegistryName: "r", Retention: full}}
		Expect(k8sClient.Create(ctx, gc)).To(Succeed())
		gc.Spec.Retention = gc.Spec.Retention[:1]
		err = k8sClient.Update(ctx, gc)
		Expect(err).To(HaveOccurred())
		Expect(err.Error()).To(ContainSubstring("spec is immutable"))
		reg = registryWithReplicas(ns, "good", 1)
		reg.Spec.GarbageCollection = &berthv1alpha1.GarbageCollectionPolicy{Schedule: "@daily", Retention: full}
		Expect(k8sClient.Create(ctx, reg)).To(Succeed())
	})
})
