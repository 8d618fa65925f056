package gctest

import (
	"context"
	"fmt"
	"slices"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"

	berthv1alpha1 "github.com/berth-dev/berth/api/v1alpha1"
	"github.com/berth-dev/berth/controllers/builders"
)

// controllerConfig lets several managers run in one process one after the
// other (controller names are otherwise unique per process).
func controllerConfig() config.Controller {
	return config.Controller{SkipNameValidation: ptr.To(true)}
}

// env is one spec's world: a namespace, a Registry with its replicas, the
// stand-in kubelet and a manager.
type env struct {
	ctx context.Context
	ns  string
	reg *berthv1alpha1.Registry
	kl  *kubelet
	mgr *manager

	stopKubelet context.CancelFunc
}

// setup creates a Registry with n replicas (after mutate), starts a
// manager, waits for the ConfigMap and starts the replicas.
func setup(ctx context.Context, n int32, mutate func(*berthv1alpha1.Registry)) *env {
	ns := newNamespace(ctx)
	reg := registryWithReplicas(ns, "reg", n)
	if mutate != nil {
		mutate(reg)
	}
	Expect(k8sClient.Create(ctx, reg)).To(Succeed())
	e := &env{ctx: ctx, ns: ns, reg: reg, kl: newKubelet(k8sClient, ns, reg.Name)}
	kctx, cancel := context.WithCancel(context.Background())
	e.stopKubelet = cancel
	go e.kl.Run(kctx)
	e.mgr = startManager(ns, e.kl)
	DeferCleanup(func() {
		e.mgr.Stop()
		e.stopKubelet()
		e.kl.StopAll(context.Background())
	})
	Eventually(func() error {
		return k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: builders.ConfigMapName(reg)}, &corev1.ConfigMap{})
	}).Should(Succeed())
	for i := range n {
		e.kl.Start(ctx, fmt.Sprintf("reg-%d", i))
	}
	return e
}

// restartManager stops the manager and starts a new one, as a crash and a
// restart of the operator's pod would.
func (e *env) restartManager() {
	e.mgr.Stop()
	e.mgr = startManager(e.ns, e.kl)
}

// run creates a GarbageCollection of the env's Registry.
func (e *env) run(name string, mutate func(*berthv1alpha1.GarbageCollection)) *berthv1alpha1.GarbageCollection {
	gc := &berthv1alpha1.GarbageCollection{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: e.ns},
		Spec: berthv1alpha1.GarbageCollectionSpec{RegistryName: e.reg.Name,
			Timeout: &berthv1alpha1.Duration{Duration: 5 * time.Minute}, GracePeriod: &berthv1alpha1.Duration{}},
	}
	if mutate != nil {
		mutate(gc)
	}
	Expect(k8sClient.Create(e.ctx, gc)).To(Succeed())
	return gc
}

// get reads run name.
func (e *env) get(name string) *berthv1alpha1.GarbageCollection {
	gc := &berthv1alpha1.GarbageCollection{}
	Expect(k8sClient.Get(e.ctx, client.ObjectKey{Namespace: e.ns, Name: name}, gc)).To(Succeed())
	return gc
}

// waitPhase waits until run name reaches phase and returns it.
func (e *env) waitPhase(name string, phase berthv1alpha1.GarbageCollectionPhase, timeout ...time.Duration) *berthv1alpha1.GarbageCollection {
	t := 30 * time.Second
	if len(timeout) > 0 {
		t = timeout[0]
	}
	var gc *berthv1alpha1.GarbageCollection
	Eventually(func() berthv1alpha1.GarbageCollectionPhase {
		gc = e.get(name)
		return gc.Status.Phase
	}, t).Should(Equal(phase), func() string { return fmt.Sprintf("run %s: %+v", name, gc.Status) })
	return gc
}

// job waits for the collector Job of run name.
func (e *env) job(name string) *batchv1.Job {
	job := &batchv1.Job{}
	Eventually(func() error {
		return k8sClient.Get(e.ctx, client.ObjectKey{Namespace: e.ns, Name: name + "-collect"}, job)
	}).Should(Succeed())
	return job
}

// summaryJSON is a termination message as `registryd garbage-collect
// --json` writes it.
const summaryJSON = `{"dryRun":false,"deleteUntagged":true,"repositories":3,"manifestsDeleted":4,"blobsDeleted":9,"bytesFreed":7340032,` +
	`"blobsKeptYoung":1,"manifestsKeptYoung":0,"durationSeconds":2.5,"errorCount":0}`

// finishJob plays what the Job controller and the kubelet would do when
// the collector exits: a pod whose container terminated with message,
// then the Job's terminal conditions.
func (e *env) finishJob(job *batchv1.Job, succeeded bool, message string) {
	exit := int32(0)
	if !succeeded {
		exit = 1
	}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: job.Name + "-pod", Namespace: e.ns, Labels: map[string]string{batchv1.JobNameLabel: job.Name}},
		Spec:       corev1.PodSpec{RestartPolicy: corev1.RestartPolicyNever, Containers: []corev1.Container{{Name: builders.CollectorContainer, Image: "registryd:test"}}},
	}
	Expect(k8sClient.Create(e.ctx, pod)).To(Succeed())
	now := metav1.Now()
	pod.Status = corev1.PodStatus{Phase: corev1.PodSucceeded, ContainerStatuses: []corev1.ContainerStatus{{
		Name: builders.CollectorContainer, Image: "registryd:test", ImageID: "registryd:test",
		State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: exit, Message: message, FinishedAt: now, StartedAt: now}},
	}}}
	if !succeeded {
		pod.Status.Phase = corev1.PodFailed
	}
	Expect(k8sClient.Status().Update(e.ctx, pod)).To(Succeed())

	Expect(k8sClient.Get(e.ctx, client.ObjectKeyFromObject(job), job)).To(Succeed())
	start := metav1.NewTime(now.Add(-2 * time.Second))
	job.Status.StartTime = &start
	cond := func(t batchv1.JobConditionType, reason string) batchv1.JobCondition {
		return batchv1.JobCondition{Type: t, Status: corev1.ConditionTrue, Reason: reason, LastTransitionTime: now, LastProbeTime: now}
	}
	if succeeded {
		job.Status.Succeeded = 1
		job.Status.CompletionTime = &now
		job.Status.Conditions = []batchv1.JobCondition{cond(batchv1.JobSuccessCriteriaMet, "CompletionsReached"), cond(batchv1.JobComplete, "CompletionsReached")}
	} else {
		job.Status.Failed = 1
		job.Status.Conditions = []batchv1.JobCondition{cond(batchv1.JobFailureTarget, "BackoffLimitExceeded"), cond(batchv1.JobFailed, "BackoffLimitExceeded")}
	}
	Expect(k8sClient.Status().Update(e.ctx, job)).To(Succeed())
}

// events lists the reasons of the events about run name, oldest first.
func (e *env) events(name string) []string {
	var list corev1.EventList
	Expect(k8sClient.List(e.ctx, &list, client.InNamespace(e.ns))).To(Succeed())
	slices.SortFunc(list.Items, func(a, b corev1.Event) int { return a.FirstTimestamp.Compare(b.FirstTimestamp.Time) })
	var out []string
	for _, ev := range list.Items {
		if ev.InvolvedObject.Kind == "GarbageCollection" && ev.InvolvedObject.Name == name {
			out = append(out, ev.Reason)
		}
	}
	return out
}

// hasHold reports whether the Registry's ConfigMap carries a hold.
func (e *env) hasHold() bool {
	cm := &corev1.ConfigMap{}
	Expect(k8sClient.Get(e.ctx, client.ObjectKey{Namespace: e.ns, Name: builders.ConfigMapName(e.reg)}, cm)).To(Succeed())
	_, ok := cm.Data[builders.HoldFile]
	return ok
}

// registry reads the env's Registry.
func (e *env) registry() *berthv1alpha1.Registry {
	reg := &berthv1alpha1.Registry{}
	Expect(k8sClient.Get(e.ctx, client.ObjectKeyFromObject(e.reg), reg)).To(Succeed())
	return reg
}

// condition is the Registry's condition typ (nil when absent).
func (e *env) condition(typ string) *metav1.Condition {
	return meta.FindStatusCondition(e.registry().Status.Conditions, typ)
}

// expectWritable checks that every replica accepts writes and reports no
// hold, and that the ConfigMap carries none.
func (e *env) expectWritable(pods ...string) {
	Expect(e.hasHold()).To(BeFalse(), "the ConfigMap still carries a hold")
	for _, p := range pods {
		Eventually(func() bool { st := e.kl.Status(p); return st.ReadOnlyConfigured || st.Hold != nil }).Should(BeFalse(), "pod %s still read-only", p)
		Expect(e.kl.Push(p)).To(Equal(202), "pod %s refuses a write", p)
	}
}
