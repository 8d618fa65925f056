package gctest

import (
	"context"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	batchv1 "k8s.io/api/batch/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	berthv1alpha1 "github.com/berth-dev/berth/api/v1alpha1"
	"github.com/berth-dev/berth/controllers/builders"
)

var _ = Describe("A GarbageCollection run", func() {
	var ctx context.Context
	BeforeEach(func() { ctx = context.Background() })

	It("holds every replica read-only, collects, restores read-write and reports it all", func() {
		e := setup(ctx, 2, nil)
		Expect(e.kl.Push("reg-0")).To(Equal(202))
		e.run("gc-happy", func(gc *berthv1alpha1.GarbageCollection) { gc.Spec.DeleteUntagged = true })

		By("verifying both replicas refuse writes before the collector starts")
		gc := e.waitPhase("gc-happy", berthv1alpha1.GCCollecting)
		Expect(gc.Status.VerifiedReplicas).To(ConsistOf("reg-0", "reg-1"))
		Expect(gc.Status.StartTime).NotTo(BeNil())
		Expect(gc.Status.HoldExpires.Time).To(BeTemporally("~", gc.Status.StartTime.Add(5*time.Minute), time.Second))
		Expect(gc.Status.WriteOutage).NotTo(BeNil())
		Expect(gc.Status.WriteOutage.Start).NotTo(BeNil())
		for _, p := range []string{"reg-0", "reg-1"} {
			st := e.kl.Status(p)
			Expect(st.ReadOnly).To(BeTrue())
			Expect(st.Hold).NotTo(BeNil())
			Expect(st.Hold.ID).To(Equal(string(gc.UID)))
			Expect(e.kl.Push(p)).To(Equal(405), "a write during the sweep")
		}
		Eventually(func() string { return e.condition(berthv1alpha1.ConditionGarbageCollecting).Reason }).Should(Equal("Collecting"))
		Eventually(func() string { return e.condition(berthv1alpha1.ConditionReadOnly).Reason }).Should(Equal(berthv1alpha1.ReasonGarbageCollection))
		Expect(e.registry().Status.ReadOnly).To(BeTrue())

		By("running the collector with the hold as its proof")
		job := e.job("gc-happy")
		Expect(metav1.IsControlledBy(job, gc)).To(BeTrue())
		args := strings.Join(job.Spec.Template.Spec.Containers[0].Args, " ")
		Expect(args).To(ContainSubstring("--hold-id " + string(gc.UID)))
		Expect(args).To(ContainSubstring("--delete-untagged"))
		Expect(args).To(ContainSubstring("--grace-period 0s"))
		Expect(args).To(ContainSubstring("--deadline " + gc.Status.HoldExpires.Add(-builders.CollectorDeadlineMargin).UTC().Format(time.RFC3339)))
		Expect(job.Spec.Template.Spec.Affinity).To(BeNil(), "ReadWriteMany needs no node")
		e.finishJob(job, true, summaryJSON)

		By("restoring read-write on every replica and finishing")
		gc = e.waitPhase("gc-happy", berthv1alpha1.GCSucceeded)
		e.expectWritable("reg-0", "reg-1")
		Expect(gc.Status.Summary).To(Equal(&berthv1alpha1.GarbageCollectionSummary{
			ManifestsDeleted: 4, BlobsDeleted: 9, BytesFreed: 7340032, Freed: "7.0 MiB", BlobsKeptByGracePeriod: 1, Duration: "2.5s",
		}))
		o := gc.Status.WriteOutage
		Expect(o.End).NotTo(BeNil())
		Expect(o.End.Time).To(BeTemporally(">=", o.Start.Time))
		Expect(o.Duration).NotTo(BeEmpty())
		Expect(gc.Status.CompletionTime).NotTo(BeNil())
		Expect(gc.Status.Duration).NotTo(BeEmpty())
		Expect(gc.Status.Reason).To(BeEmpty())
		Expect(gc.Status.Message).To(Equal("Deleted 4 manifests and 9 blobs (7.0 MiB); kept 1 blobs and 0 manifests younger than the grace period"))
		Expect(findCondition(gc, berthv1alpha1.GCConditionComplete).Status).To(Equal(metav1.ConditionTrue))
		Expect(findCondition(gc, berthv1alpha1.GCConditionReadOnlyVerified).Reason).To(Equal(berthv1alpha1.GCReasonReadWriteRestored))
		Expect(findCondition(gc, berthv1alpha1.GCConditionFailed)).To(BeNil())
		Eventually(func() []string { return e.events("gc-happy") }).Should(Equal([]string{
			berthv1alpha1.GCReasonStarted, berthv1alpha1.GCConditionReadOnlyVerified, "CollectorStarted",
			berthv1alpha1.GCReasonCollected, berthv1alpha1.GCReasonSucceeded,
		}))

		By("showing the run on the Registry")
		Eventually(func() *berthv1alpha1.LastGarbageCollection { return e.registry().Status.LastGarbageCollection }).Should(And(
			Not(BeNil()), HaveField("Name", "gc-happy"), HaveField("Phase", berthv1alpha1.GCSucceeded), HaveField("BytesFreed", int64(7340032)),
			HaveField("WriteOutage", o.Duration)))
		Eventually(func() metav1.ConditionStatus { return e.condition(berthv1alpha1.ConditionGarbageCollecting).Status }).Should(Equal(metav1.ConditionFalse))
		Eventually(func() string { return e.condition(berthv1alpha1.ConditionReadOnly).Message }).Should(Equal("2 of 2 replicas accept writes"))
		Expect(e.registry().Status.ReadOnly).To(BeFalse())
	})

	It("fails when the collector fails, with its error, and restores read-write", func() {
		e := setup(ctx, 1, nil)
		e.run("gc-fail", nil)
		e.waitPhase("gc-fail", berthv1alpha1.GCCollecting)
		e.finishJob(e.job("gc-fail"), false,
			`{"dryRun":false,"manifestsDeleted":1,"blobsDeleted":2,"bytesFreed":10,"errorCount":3,"error":"3 deletions failed: some deletions failed; run garbage-collect again to finish"}`)
		gc := e.waitPhase("gc-fail", berthv1alpha1.GCFailed)
		Expect(gc.Status.Reason).To(Equal(berthv1alpha1.GCReasonJobFailed))
		Expect(gc.Status.Message).To(ContainSubstring("3 deletions failed"))
		Expect(gc.Status.Summary.BlobsDeleted).To(Equal(int64(2)), "what the collector did before failing is reported")
		Expect(findCondition(gc, berthv1alpha1.GCConditionFailed).Reason).To(Equal(berthv1alpha1.GCReasonJobFailed))
		e.expectWritable("reg-0")
		Eventually(func() []string { return e.events("gc-fail") }).Should(ContainElements(berthv1alpha1.GCReasonJobFailed, "Failed"))
		Eventually(func() berthv1alpha1.GarbageCollectionPhase {
			if l := e.registry().Status.LastGarbageCollection; l != nil {
				return l.Phase
			}
			return ""
		}).Should(Equal(berthv1alpha1.GCFailed))
	})

	It("times out, stops the collector and restores read-write", func() {
		e := setup(ctx, 1, nil)
		e.run("gc-slow", func(gc *berthv1alpha1.GarbageCollection) {
			gc.Spec.Timeout = &berthv1alpha1.Duration{Duration: 10 * time.Second}
		})
		e.waitPhase("gc-slow", berthv1alpha1.GCCollecting)
		job := e.job("gc-slow")
		Expect(*job.Spec.ActiveDeadlineSeconds).To(BeNumerically("<=", 10))
		// The Job never finishes.
		gc := e.waitPhase("gc-slow", berthv1alpha1.GCFailed, 30*time.Second)
		Expect(gc.Status.Reason).To(Equal(berthv1alpha1.GCReasonTimeout))
		Expect(gc.Status.CompletionTime.Time).To(BeTemporally(">=", gc.Status.HoldExpires.Time))
		Eventually(func() bool {
			err := k8sClient.Get(ctx, client.ObjectKeyFromObject(job), &batchv1.Job{})
			return apierrors.IsNotFound(err) || err == nil && !jobDeletionPending(ctx, job)
		}).Should(BeTrue(), "the collector Job is deleted")
		e.expectWritable("reg-0")
	})

	It("fails when the Registry is deleted mid-run and leaves no hold behind", func() {
		e := setup(ctx, 1, nil)
		e.run("gc-orphan", nil)
		e.waitPhase("gc-orphan", berthv1alpha1.GCCollecting)
		job := e.job("gc-orphan")
		Expect(k8sClient.Delete(ctx, e.registry())).To(Succeed())
		gc := e.waitPhase("gc-orphan", berthv1alpha1.GCFailed)
		Expect(gc.Status.Reason).To(Equal(berthv1alpha1.GCReasonRegistryDeleted))
		Eventually(func() bool {
			return apierrors.IsNotFound(k8sClient.Get(ctx, client.ObjectKeyFromObject(job), &batchv1.Job{})) || jobDeletionPending(ctx, job)
		}).
			Should(BeTrue(), "the collector is stopped")
		// envtest has no garbage collector to delete the ConfigMap and the
		// pods with the Registry; the run released its hold itself.
		e.expectWritable("reg-0")
	})

	It("fails when the Registry's storage changes mid-run", func() {
		e := setup(ctx, 1, nil)
		e.run("gc-moved", nil)
		e.waitPhase("gc-moved", berthv1alpha1.GCCollecting)
		Eventually(func() error {
			reg := e.registry()
			reg.Spec.Storage.Filesystem.StorageClassName = ptrTo("elsewhere")
			return k8sClient.Update(ctx, reg)
		}).Should(Succeed())
		gc := e.waitPhase("gc-moved", berthv1alpha1.GCFailed)
		Expect(gc.Status.Reason).To(Equal(berthv1alpha1.GCReasonStorageChanged))
		e.expectWritable("reg-0")
	})

	It("runs one run per Registry at a time, in creation order", func() {
		e := setup(ctx, 1, nil)
		e.run("gc-first", nil)
		e.waitPhase("gc-first", berthv1alpha1.GCCollecting)
		e.run("gc-second", nil)
		Eventually(func() *metav1.Condition { return findCondition(e.get("gc-second"), berthv1alpha1.GCConditionQueued) }).Should(And(
			Not(BeNil()), HaveField("Status", metav1.ConditionTrue), HaveField("Message", ContainSubstring("gc-first"))))
		Consistently(func() berthv1alpha1.GarbageCollectionPhase { return e.get("gc-second").Status.Phase }, 2*time.Second).
			Should(Equal(berthv1alpha1.GCPending))
		e.finishJob(e.job("gc-first"), true, summaryJSON)
		first := e.waitPhase("gc-first", berthv1alpha1.GCSucceeded)
		second := e.waitPhase("gc-second", berthv1alpha1.GCCollecting)
		Expect(second.Status.StartTime.Time).To(BeTemporally(">=", first.Status.CompletionTime.Time))
		Expect(findCondition(second, berthv1alpha1.GCConditionQueued).Status).To(Equal(metav1.ConditionFalse))
		Expect(e.events("gc-second")).To(ContainElement("Queued"))
		e.finishJob(e.job("gc-second"), true, summaryJSON)
		e.waitPhase("gc-second", berthv1alpha1.GCSucceeded)
		e.expectWritable("reg-0")
	})

	It("reports a dry run without freeing anything", func() {
		e := setup(ctx, 1, nil)
		e.run("gc-dry", func(gc *berthv1alpha1.GarbageCollection) { gc.Spec.DryRun = true })
		e.waitPhase("gc-dry", berthv1alpha1.GCCollecting)
		job := e.job("gc-dry")
		Expect(job.Spec.Template.Spec.Containers[0].Args).To(ContainElement("--dry-run"))
		e.finishJob(job, true, strings.Replace(summaryJSON, `"dryRun":false`, `"dryRun":true`, 1))
		gc := e.waitPhase("gc-dry", berthv1alpha1.GCSucceeded)
		Expect(gc.Status.Message).To(HavePrefix("Dry run: would delete 4 manifests and 9 blobs"))
		Eventually(func() *berthv1alpha1.LastGarbageCollection { return e.registry().Status.LastGarbageCollection }).Should(And(
			Not(BeNil()), HaveField("Name", "gc-dry"), HaveField("BytesFreed", int64(0))))
		e.expectWritable("reg-0")
	})

	It("leaves a registry with spec.readOnly read-only", func() {
		e := setup(ctx, 1, func(reg *berthv1alpha1.Registry) { reg.Spec.ReadOnly = true })
		Expect(e.kl.Push("reg-0")).To(Equal(405))
		e.run("gc-ro", nil)
		e.waitPhase("gc-ro", berthv1alpha1.GCCollecting)
		e.finishJob(e.job("gc-ro"), true, summaryJSON)
		gc := e.waitPhase("gc-ro", berthv1alpha1.GCSucceeded)
		Expect(e.hasHold()).To(BeFalse())
		st := e.kl.Status("reg-0")
		Expect(st.Hold).To(BeNil())
		Expect(st.ReadOnlyConfigured).To(BeTrue())
		Expect(e.kl.Push("reg-0")).To(Equal(405))
		Expect(gc.Status.WriteOutage.End).To(BeNil(), "spec.readOnly keeps refusing writes")
		Expect(findCondition(gc, berthv1alpha1.GCConditionReadOnlyVerified).Message).To(ContainSubstring("spec.readOnly"))
		Eventually(func() string { return e.condition(berthv1alpha1.ConditionReadOnly).Reason }).Should(Equal(berthv1alpha1.ReasonSpecReadOnly))
	})

	It("refuses storage a Job cannot reach, and a Registry that does not exist", func() {
		e := setup(ctx, 1, func(reg *berthv1alpha1.Registry) {
			reg.Spec.Storage = berthv1alpha1.RegistryStorage{EmptyDir: &berthv1alpha1.EmptyDirStorage{}}
			reg.Spec.Replicas = ptrTo[int32](1)
		})
		e.run("gc-emptydir", nil)
		gc := e.waitPhase("gc-emptydir", berthv1alpha1.GCFailed)
		Expect(gc.Status.Reason).To(Equal(berthv1alpha1.GCReasonUnsupportedStorage))
		Expect(gc.Status.Message).To(ContainSubstring("spec.storage.emptyDir"))
		Expect(gc.Status.StartTime).To(BeNil(), "no hold was taken")
		Expect(e.hasHold()).To(BeFalse())

		nope := &berthv1alpha1.GarbageCollection{ObjectMeta: metav1.ObjectMeta{Name: "gc-nope", Namespace: e.ns},
			Spec: berthv1alpha1.GarbageCollectionSpec{RegistryName: "absent"}}
		Expect(k8sClient.Create(ctx, nope)).To(Succeed())
		gc = e.waitPhase("gc-nope", berthv1alpha1.GCFailed)
		Expect(gc.Status.Reason).To(Equal(berthv1alpha1.GCReasonRegistryNotFound))
		Expect(gc.Status.Message).To(ContainSubstring(`spec.registryName: Registry "absent" not found`))
	})

	It("verifies a replica that starts during the run, from the ConfigMap holding the run", func() {
		e := setup(ctx, 1, nil)
		e.run("gc-scale", nil)
		e.waitPhase("gc-scale", berthv1alpha1.GCCollecting)
		// A new pod (a restart, a scale-up) starts from the ConfigMap as it
		// is now: read-only from its first request.
		e.kl.Start(ctx, "reg-late")
		Expect(e.kl.Push("reg-late")).To(Equal(405))
		Eventually(func() []string { return e.get("gc-scale").Status.VerifiedReplicas }).Should(ConsistOf("reg-0", "reg-late"))
		e.finishJob(e.job("gc-scale"), true, summaryJSON)
		gc := e.waitPhase("gc-scale", berthv1alpha1.GCSucceeded)
		Expect(gc.Status.Reason).To(BeEmpty())
		e.expectWritable("reg-0", "reg-late")
	})

	It("stops the collector when a replica accepts writes during the sweep", func() {
		e := setup(ctx, 1, nil)
		e.run("gc-leak", nil)
		e.waitPhase("gc-leak", berthv1alpha1.GCCollecting)
		job := e.job("gc-leak")
		// A pod from before the hold that the kubelet never updates (a
		// frozen kubelet, an old ConfigMap): it must not go unnoticed.
		e.kl.Pause()
		e.kl.StartStale(ctx, "reg-stale")
		Expect(e.kl.Push("reg-stale")).To(Equal(202))
		gc := e.waitPhase("gc-leak", berthv1alpha1.GCLeavingReadOnly)
		Expect(gc.Status.Reason).To(Equal(berthv1alpha1.GCReasonReplicasWritable))
		Eventually(func() bool {
			return apierrors.IsNotFound(k8sClient.Get(ctx, client.ObjectKeyFromObject(job), &batchv1.Job{})) || jobDeletionPending(ctx, job)
		}).
			Should(BeTrue(), "the collector is stopped")
		e.kl.Resume()
		gc = e.waitPhase("gc-leak", berthv1alpha1.GCFailed)
		Expect(gc.Status.Message).To(ContainSubstring("reg-stale"))
		e.expectWritable("reg-0", "reg-stale")
	})
})

var _ = Describe("A Registry's read-only state", func() {
	It("reaches running replicas through the nudge, and the ReadOnly condition says what they report", func() {
		ctx := context.Background()
		e := setup(ctx, 2, nil)
		setReadOnly := func(ro bool) {
			Eventually(func() error {
				reg := e.registry()
				reg.Spec.ReadOnly = ro
				return k8sClient.Update(ctx, reg)
			}).Should(Succeed())
		}
		// The stand-in kubelet delivers ConfigMap changes only to nudged
		// pods (the real one otherwise takes its 60-90 s sync period).
		setReadOnly(true)
		for _, p := range []string{"reg-0", "reg-1"} {
			Eventually(func() int { return e.kl.Push(p) }).Should(Equal(405), "pod %s", p)
		}
		Eventually(func() string { return e.condition(berthv1alpha1.ConditionReadOnly).Message }).
			Should(Equal("2 of 2 replicas refuse writes: spec.readOnly is true: writes are refused"))
		Expect(e.condition(berthv1alpha1.ConditionReadOnly).Reason).To(Equal(berthv1alpha1.ReasonSpecReadOnly))

		setReadOnly(false)
		for _, p := range []string{"reg-0", "reg-1"} {
			Eventually(func() int { return e.kl.Push(p) }).Should(Equal(202), "pod %s", p)
		}
		Eventually(func() string { return e.condition(berthv1alpha1.ConditionReadOnly).Message }).Should(Equal("2 of 2 replicas accept writes"))
	})
})

var _ = Describe("A manager restarted mid-run", func() {
	var ctx context.Context
	BeforeEach(func() { ctx = context.Background() })

	It("carries on from Pending", func() {
		e := setup(ctx, 1, nil)
		e.run("gc-a", nil)
		e.waitPhase("gc-a", berthv1alpha1.GCCollecting)
		jobA := e.job("gc-a")
		e.run("gc-b", nil)
		Eventually(func() *metav1.Condition { return findCondition(e.get("gc-b"), berthv1alpha1.GCConditionQueued) }).ShouldNot(BeNil())
		e.mgr.Stop()
		e.finishJob(jobA, true, summaryJSON)
		e.mgr = startManager(e.ns, e.kl)
		e.waitPhase("gc-a", berthv1alpha1.GCSucceeded)
		e.waitPhase("gc-b", berthv1alpha1.GCCollecting)
		e.finishJob(e.job("gc-b"), true, summaryJSON)
		e.waitPhase("gc-b", berthv1alpha1.GCSucceeded)
		e.expectWritable("reg-0")
	})

	It("carries on from EnteringReadOnly", func() {
		e := setup(ctx, 1, nil)
		e.kl.Pause() // the replica does not take the hold yet
		e.run("gc-enter", nil)
		e.waitPhase("gc-enter", berthv1alpha1.GCEnteringReadOnly)
		Eventually(e.hasHold).Should(BeTrue())
		Consistently(func() berthv1alpha1.GarbageCollectionPhase { return e.get("gc-enter").Status.Phase }, time.Second).
			Should(Equal(berthv1alpha1.GCEnteringReadOnly), "no sweep while a replica accepts writes")
		e.restartManager()
		e.kl.Resume()
		e.waitPhase("gc-enter", berthv1alpha1.GCCollecting)
		e.finishJob(e.job("gc-enter"), true, summaryJSON)
		e.waitPhase("gc-enter", berthv1alpha1.GCSucceeded)
		e.expectWritable("reg-0")
	})

	It("carries on from Collecting", func() {
		e := setup(ctx, 1, nil)
		e.run("gc-collect", nil)
		e.waitPhase("gc-collect", berthv1alpha1.GCCollecting)
		job := e.job("gc-collect")
		e.mgr.Stop()
		e.finishJob(job, true, summaryJSON)
		e.mgr = startManager(e.ns, e.kl)
		gc := e.waitPhase("gc-collect", berthv1alpha1.GCSucceeded)
		Expect(gc.Status.Summary.BlobsDeleted).To(Equal(int64(9)))
		var jobs batchv1.JobList
		Expect(k8sClient.List(ctx, &jobs, client.InNamespace(e.ns))).To(Succeed())
		Expect(jobs.Items).To(HaveLen(1), "the restarted manager did not start a second collector")
		e.expectWritable("reg-0")
	})

	It("carries on from LeavingReadOnly", func() {
		e := setup(ctx, 1, nil)
		e.run("gc-leave", nil)
		e.waitPhase("gc-leave", berthv1alpha1.GCCollecting)
		e.kl.Pause() // the replica does not see the release yet
		e.finishJob(e.job("gc-leave"), true, summaryJSON)
		e.waitPhase("gc-leave", berthv1alpha1.GCLeavingReadOnly)
		Consistently(func() berthv1alpha1.GarbageCollectionPhase { return e.get("gc-leave").Status.Phase }, time.Second).
			Should(Equal(berthv1alpha1.GCLeavingReadOnly), "not Succeeded before the replica accepts writes")
		e.restartManager()
		e.kl.Resume()
		e.waitPhase("gc-leave", berthv1alpha1.GCSucceeded)
		e.expectWritable("reg-0")
	})

	It("whose manager never comes back leaves no replica read-only past the timeout", func() {
		e := setup(ctx, 1, nil)
		e.run("gc-gone", func(gc *berthv1alpha1.GarbageCollection) {
			gc.Spec.Timeout = &berthv1alpha1.Duration{Duration: 10 * time.Second}
		})
		gc := e.waitPhase("gc-gone", berthv1alpha1.GCCollecting)
		e.mgr.Stop()
		Expect(e.kl.Push("reg-0")).To(Equal(405))
		// The hold expires by itself in registryd, without any file change.
		Eventually(func() int { return e.kl.Push("reg-0") }, 20*time.Second).Should(Equal(202))
		Expect(time.Now()).To(BeTemporally(">=", gc.Status.HoldExpires.Time))
		e.mgr = startManager(e.ns, e.kl)
		gc = e.waitPhase("gc-gone", berthv1alpha1.GCFailed)
		Expect(gc.Status.Reason).To(Equal(berthv1alpha1.GCReasonTimeout))
		e.expectWritable("reg-0")
	})
})

func findCondition(gc *berthv1alpha1.GarbageCollection, typ string) *metav1.Condition {
	for i := range gc.Status.Conditions {
		if gc.Status.Conditions[i].Type == typ {
			return &gc.Status.Conditions[i]
		}
	}
	return nil
}

// jobDeletionPending reports whether job is being deleted (envtest has no
// garbage collector to finish background deletions).
func jobDeletionPending(ctx context.Context, job *batchv1.Job) bool {
	live := &batchv1.Job{}
	if err := k8sClient.Get(ctx, client.ObjectKeyFromObject(job), live); err != nil {
		return apierrors.IsNotFound(err)
	}
	return !live.DeletionTimestamp.IsZero()
}

func ptrTo[T any](v T) *T { return &v }
