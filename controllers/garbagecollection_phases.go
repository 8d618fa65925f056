package controllers

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	berthv1alpha1 "github.com/berth-dev/berth/api/v1alpha1"
	"github.com/berth-dev/berth/controllers/builders"
	"github.com/berth-dev/berth/registryd/hold"
)

// pending starts the run unless it must wait for an earlier one.
func (r *GarbageCollectionReconciler) pending(ctx context.Context, s *gcScope) (reconcile.Result, error) {
	gc := s.gc
	if gc.Status.Phase == "" {
		gc.Status.Phase = berthv1alpha1.GCPending
	}
	if s.reg == nil {
		r.finishWithoutHold(s, berthv1alpha1.GCReasonRegistryNotFound,
			fmt.Sprintf("spec.registryName: Registry %q not found in namespace %q", gc.Spec.RegistryName, gc.Namespace))
		return reconcile.Result{}, nil
	}
	if ok, field := builders.Collectable(s.reg); !ok {
		r.finishWithoutHold(s, berthv1alpha1.GCReasonUnsupportedStorage,
			fmt.Sprintf("Registry %q: %s: the collector runs in a pod of its own and cannot reach storage that lives inside the registryd pod",
				s.reg.Name, field))
		return reconcile.Result{}, nil
	}
	// The API server validates the rules; registryd's own check runs here
	// too, so that rules it would refuse never cost the registry a hold.
	if err := builders.CheckRetention("spec.retention", gc.Spec.Retention); err != nil {
		r.finishWithoutHold(s, berthv1alpha1.GCReasonInvalidRetention, err.Error())
		return reconcile.Result{}, nil
	}
	runs, err := runsOf(ctx, r.Client, gc.Namespace, gc.Spec.RegistryName)
	if err != nil {
		return reconcile.Result{}, err
	}
	if blocker := firstBlocker(gc, runs); blocker != nil {
		if setGCCondition(gc, berthv1alpha1.GCConditionQueued, metav1.ConditionTrue, berthv1alpha1.GCReasonWaiting,
			fmt.Sprintf("Waiting for GarbageCollection %s of Registry %s", blocker.Name, gc.Spec.RegistryName)) {
			s.event(corev1.EventTypeNormal, "Queued", fmt.Sprintf("Waiting for GarbageCollection %s", blocker.Name))
		}
		return reconcile.Result{}, nil
	}
	start := metav1.NewTime(s.now)
	expires := metav1.NewTime(s.now.Add(runTimeout(gc)))
	gc.Status.Phase = berthv1alpha1.GCEnteringReadOnly
	gc.Status.StartTime = &start
	gc.Status.HoldExpires = &expires
	gc.Status.RegistryUID = string(s.reg.UID)
	gc.Status.StorageHash = builders.StorageHash(s.reg)
	gc.Status.Message = "Holding the registry read-only"
	if findGCCondition(gc, berthv1alpha1.GCConditionQueued) != nil {
		setGCCondition(gc, berthv1alpha1.GCConditionQueued, metav1.ConditionFalse, berthv1alpha1.GCReasonStarted, "The run started")
	}
	s.event(corev1.EventTypeNormal, berthv1alpha1.GCReasonStarted,
		fmt.Sprintf("Holding Registry %s read-only until %s", s.reg.Name, expires.UTC().Format(time.RFC3339)))
	return reconcile.Result{}, nil
}

// firstBlocker is the run gc must wait for: an active run of the same
// Registry, else the oldest Pending run created before gc. Runs start in
// creation order, one at a time; a cache that has not yet seen an earlier
// run's start still shows it Pending and older, so two runs never start
// together.
func firstBlocker(gc *berthv1alpha1.GarbageCollection, runs []berthv1alpha1.GarbageCollection) *berthv1alpha1.GarbageCollection {
	var older *berthv1alpha1.GarbageCollection
	for i := range runs {
		o := &runs[i]
		if o.UID == gc.UID {
			continue
		}
		if o.Active() {
			return o
		}
		if p := o.Status.Phase; (p == "" || p == berthv1alpha1.GCPending) && createdBefore(o, gc) {
			if older == nil || createdBefore(o, older) {
				older = o
			}
		}
	}
	return older
}

// createdBefore orders runs by creation time, then name.
func createdBefore(a, b *berthv1alpha1.GarbageCollection) bool {
	ta, tb := a.CreationTimestamp.Time, b.CreationTimestamp.Time
	if !ta.Equal(tb) {
		return ta.Before(tb)
	}
	return a.Name < b.Name
}

func runTimeout(gc *berthv1alpha1.GarbageCollection) time.Duration {
	if gc.Spec.Timeout != nil && gc.Spec.Timeout.Duration > 0 {
		return gc.Spec.Timeout.Duration
	}
	return builders.DefaultGCTimeout
}

// abortReason is why a held run must stop now: the Registry went away or
// is another one, its storage changed, or the time ran out. Empty when
// the run may go on.
func abortReason(gc *berthv1alpha1.GarbageCollection, reg *berthv1alpha1.Registry, now time.Time) (reason, message string) {
	switch {
	case reg == nil || string(reg.UID) != gc.Status.RegistryUID:
		return berthv1alpha1.GCReasonRegistryDeleted, fmt.Sprintf("Registry %s was deleted during the run", gc.Spec.RegistryName)
	case builders.StorageHash(reg) != gc.Status.StorageHash:
		return berthv1alpha1.GCReasonStorageChanged, fmt.Sprintf("spec.storage of Registry %s changed during the run", reg.Name)
	case gc.Status.HoldExpires != nil && !now.Before(gc.Status.HoldExpires.Time):
		return berthv1alpha1.GCReasonTimeout, fmt.Sprintf("The run did not finish within spec.timeout (%s); its hold expired", runTimeout(gc))
	}
	return "", ""
}

// fail records why the run fails and moves it to LeavingReadOnly, which
// stops the collector and restores read-write before the run is Failed.
func (r *GarbageCollectionReconciler) fail(s *gcScope, reason, message string) {
	s.gc.Status.Reason = reason
	s.gc.Status.Message = message
	s.gc.Status.Phase = berthv1alpha1.GCLeavingReadOnly
	s.event(corev1.EventTypeWarning, reason, message)
}

// finishWithoutHold fails a run that never took a hold.
func (r *GarbageCollectionReconciler) finishWithoutHold(s *gcScope, reason, message string) {
	s.gc.Status.Reason = reason
	s.gc.Status.Message = message
	r.finish(s)
}

// hold is the hold file of the run.
func (s *gcScope) hold() *hold.Hold {
	return &hold.Hold{
		ID:      string(s.gc.UID),
		Holder:  fmt.Sprintf("GarbageCollection %s/%s", s.gc.Namespace, s.gc.Name),
		Expires: s.gc.Status.HoldExpires.Time,
	}
}

// ensureHold puts the run's hold into reg's ConfigMap (hold nil: takes it
// out) unless it is already so, and returns the ConfigMap as it is now;
// nil when reg has no ConfigMap. Taking the hold out works for a Registry
// that is gone too (reg is then only its name): the hold is removed from a
// ConfigMap the garbage collector has not deleted yet.
func (r *GarbageCollectionReconciler) ensureHold(ctx context.Context, s *gcScope, reg *berthv1alpha1.Registry, h *hold.Hold) (*corev1.ConfigMap, error) {
	cm := &corev1.ConfigMap{}
	err := r.Get(ctx, ctrl.ObjectKey{Namespace: reg.Namespace, Name: builders.ConfigMapName(reg)}, cm)
	switch {
	case apierrors.IsNotFound(err):
		return nil, nil
	case err != nil:
		return nil, err
	}
	current, has := cm.Data[builders.HoldFile]
	if h == nil {
		if !has || !heldBy(current, string(s.gc.UID)) {
			return cm, nil
		}
	} else {
		want, err := h.Marshal()
		if err != nil {
			return nil, err
		}
		if has && current == string(want) {
			return cm, nil
		}
	}
	obj, err := builders.HoldConfigMap(reg, h)
	if err != nil {
		return nil, err
	}
	// Taking the hold, the run co-owns the Registry's owner reference, so
	// an apply that races the Registry's deletion creates nothing that
	// outlives it; releasing, it lets go of it (the Registry controller
	// owns it too, so it stays).
	var owner metav1.Object
	if h != nil {
		owner = reg
	}
	if err := r.children().apply(ctx, owner, obj); err != nil {
		return nil, fmt.Errorf("the hold: %w", err)
	}
	verb := "Applied"
	if h == nil {
		verb = "Released"
	}
	log.FromContext(ctx).Info(verb+" hold", "configMap", obj.Name, "holdID", s.gc.UID)
	return obj, nil
}

// heldBy reports whether hold file content names run id.
func heldBy(content, id string) bool {
	h, err := hold.Parse([]byte(content))
	return err == nil && h.ID == id
}

// observe lists the Registry's replicas, makes the kubelet deliver cm to
// each, and asks each for its status.
func (r *GarbageCollectionReconciler) observe(ctx context.Context, reg *berthv1alpha1.Registry, cm *corev1.ConfigMap) ([]replica, error) {
	pods, err := listReplicas(ctx, r.APIReader, reg)
	if err != nil {
		return nil, err
	}
	if cm != nil {
		token, err := podSyncToken(ctx, r.Client, reg, cm)
		if err != nil {
			return nil, err
		}
		if err := nudgePods(ctx, r.Client, pods, token); err != nil {
			return nil, err
		}
	}
	return probeReplicas(ctx, r.Prober, pods), nil
}

// holdAndObserve is the start of every step under the hold: the run stops
// (held false, with the reason recorded) when it must abort or its hold
// has nowhere to live; otherwise the hold is (still) in the ConfigMap, the
// replicas have been nudged and asked, and reps is what they said.
func (r *GarbageCollectionReconciler) holdAndObserve(ctx context.Context, s *gcScope) (reps []replica, held bool, err error) {
	if reason, msg := abortReason(s.gc, s.reg, s.now); reason != "" {
		r.fail(s, reason, msg)
		return nil, false, nil
	}
	cm, err := r.ensureHold(ctx, s, s.reg, s.hold())
	if err != nil {
		return nil, false, err
	}
	if cm == nil {
		r.fail(s, berthv1alpha1.GCReasonNotConfigured, fmt.Sprintf("Registry %s has no ConfigMap %s to carry the hold (is it Degraded?)",
			s.reg.Name, builders.ConfigMapName(s.reg)))
		return nil, false, nil
	}
	reps, err = r.observe(ctx, s.reg, cm)
	return reps, err == nil, err
}

// enterReadOnly takes the hold and waits until every replica reports it.
func (r *GarbageCollectionReconciler) enterReadOnly(ctx context.Context, s *gcScope) (reconcile.Result, error) {
	reps, ok, err := r.holdAndObserve(ctx, s)
	if err != nil || !ok {
		return reconcile.Result{}, err
	}
	held, waiting := splitHeld(reps, string(s.gc.UID))
	noteOutageStart(s.gc, reps)
	if len(waiting) > 0 {
		setGCCondition(s.gc, berthv1alpha1.GCConditionReadOnlyVerified, metav1.ConditionFalse, berthv1alpha1.GCReasonReplicasWritable,
			fmt.Sprintf("%d of %d replicas refuse writes under this run's hold; waiting for %s", len(held), len(reps), strings.Join(waiting, ", ")))
		return reconcile.Result{RequeueAfter: verifyInterval}, nil
	}
	s.gc.Status.VerifiedReplicas = held
	s.gc.Status.Phase = berthv1alpha1.GCCollecting
	s.gc.Status.Message = "Collecting"
	msg := fmt.Sprintf("%d of %d replicas refuse writes under this run's hold", len(held), len(reps))
	setGCCondition(s.gc, berthv1alpha1.GCConditionReadOnlyVerified, metav1.ConditionTrue, berthv1alpha1.GCReasonAllReadOnly, msg)
	if len(held) > 0 {
		msg += ": " + strings.Join(held, ", ")
	}
	s.event(corev1.EventTypeNormal, berthv1alpha1.GCConditionReadOnlyVerified, msg)
	return reconcile.Result{}, nil
}

// splitHeld names the replicas that refuse writes under hold id (drained)
// and those that do not, or did not answer.
func splitHeld(reps []replica, id string) (held, waiting []string) {
	for _, rep := range reps {
		if rep.status != nil && rep.status.HeldBy(id) {
			held = append(held, rep.pod.Name)
		} else {
			waiting = append(waiting, rep.pod.Name)
		}
	}
	return held, waiting
}

// noteOutageStart records when the first replica began refusing writes
// under this run (never before the run started: a spec.readOnly registry
// refused writes before, but not because of the run).
func noteOutageStart(gc *berthv1alpha1.GarbageCollection, reps []replica) {
	for _, rep := range reps {
		st := rep.status
		if st == nil || st.Hold == nil || st.Hold.ID != string(gc.UID) || st.ReadOnlySince.IsZero() {
			continue
		}
		t := st.ReadOnlySince
		if gc.Status.StartTime != nil && t.Before(gc.Status.StartTime.Time) {
			t = gc.Status.StartTime.Time
		}
		if gc.Status.WriteOutage == nil {
			gc.Status.WriteOutage = &berthv1alpha1.WriteOutage{}
		}
		if o := gc.Status.WriteOutage; o.Start == nil || t.Before(o.Start.Time) {
			start := metav1.NewMicroTime(t)
			o.Start = &start
		}
	}
}

// collect keeps the hold verified and runs the collector Job.
func (r *GarbageCollectionReconciler) collect(ctx context.Context, s *gcScope) (reconcile.Result, error) {
	gc := s.gc
	reps, ok, err := r.holdAndObserve(ctx, s)
	if err != nil || !ok {
		return reconcile.Result{}, err
	}
	if writable := writableReplicas(reps, string(gc.UID)); len(writable) > 0 {
		r.fail(s, berthv1alpha1.GCReasonReplicasWritable,
			fmt.Sprintf("Replica %s accepts writes during the sweep; the collector was stopped", strings.Join(writable, ", ")))
		return reconcile.Result{}, nil
	}
	held, _ := splitHeld(reps, string(gc.UID))
	for _, name := range held {
		if !slices.Contains(gc.Status.VerifiedReplicas, name) {
			gc.Status.VerifiedReplicas = append(gc.Status.VerifiedReplicas, name)
		}
	}
	noteOutageStart(gc, reps)

	job := &batchv1.Job{}
	err = r.APIReader.Get(ctx, ctrl.ObjectKey{Namespace: gc.Namespace, Name: builders.CollectorJobName(gc)}, job)
	switch {
	case apierrors.IsNotFound(err):
		return r.startCollector(ctx, s, reps)
	case err != nil:
		return reconcile.Result{}, err
	}
	gc.Status.JobName = job.Name
	pods, err := r.collectorPods(ctx, job.Namespace, job.Name)
	if err != nil {
		return reconcile.Result{}, err
	}
	outcome, term := collectorOutcome(job, pods)
	switch outcome {
	case batchv1.JobComplete:
		sum, err := parseCollectorSummary(termMessage(term))
		if err != nil {
			gc.Status.Message = "The collector succeeded; its summary could not be read: " + err.Error()
		} else {
			gc.Status.Summary = sum.status()
			gc.Status.Message = sum.describe()
		}
		gc.Status.Phase = berthv1alpha1.GCLeavingReadOnly
		s.event(corev1.EventTypeNormal, berthv1alpha1.GCReasonCollected, gc.Status.Message)
	case batchv1.JobFailed:
		msg := "The collector failed"
		sum, err := parseCollectorSummary(termMessage(term))
		switch {
		case err == nil:
			gc.Status.Summary = sum.status()
			if sum.Error != "" {
				msg += ": " + sum.Error
			}
		case jobFailureMessage(job) != "":
			msg += ": " + jobFailureMessage(job)
		case term != nil:
			msg += fmt.Sprintf(": exit code %d %s", term.ExitCode, term.Reason)
		}
		r.fail(s, berthv1alpha1.GCReasonJobFailed, msg)
	default:
		return reconcile.Result{RequeueAfter: collectInterval}, nil
	}
	return reconcile.Result{}, nil
}

// collectorOutcome is JobComplete or JobFailed once the collector is done,
// else "", with the collector container's terminated state when there is
// one. The collector's pod is the first to know (its container exits; the
// Job's condition follows seconds later), so a terminated container
// decides: exit 0 is success, anything else failure (the Job retries
// nothing). The Job's own terminal condition decides when no pod tells,
// e.g. a pod that never started before the Job's deadline.
func collectorOutcome(job *batchv1.Job, pods []corev1.Pod) (batchv1.JobConditionType, *corev1.ContainerStateTerminated) {
	var newest *corev1.ContainerStateTerminated
	for i := range pods {
		for _, cs := range pods[i].Status.ContainerStatuses {
			t := cs.State.Terminated
			if cs.Name != builders.CollectorContainer || t == nil {
				continue
			}
			if newest == nil || t.FinishedAt.After(newest.FinishedAt.Time) {
				newest = t
			}
		}
	}
	switch {
	case newest != nil && newest.ExitCode == 0:
		return batchv1.JobComplete, newest
	case newest != nil:
		return batchv1.JobFailed, newest
	}
	return jobOutcome(job), nil
}

func termMessage(t *corev1.ContainerStateTerminated) string {
	if t == nil {
		return ""
	}
	return t.Message
}

// writableReplicas names replicas that answered and accept writes (not
// even configured read-only under this run's hold).
func writableReplicas(reps []replica, id string) []string {
	var out []string
	for _, rep := range reps {
		st := rep.status
		if st == nil {
			continue
		}
		if !st.ReadOnlyConfigured || st.Hold == nil || st.Hold.ID != id {
			out = append(out, rep.pod.Name)
		}
	}
	return out
}

// startCollector creates the collector Job, on the node of a replica when
// the volume is ReadWriteOnce.
func (r *GarbageCollectionReconciler) startCollector(ctx context.Context, s *gcScope, reps []replica) (reconcile.Result, error) {
	rendered, err := builders.Render(s.reg, s.reg.Spec.ReadOnly)
	if err != nil {
		r.fail(s, berthv1alpha1.GCReasonNotConfigured, fmt.Sprintf("Registry %s: %v", s.reg.Name, err))
		return reconcile.Result{}, nil
	}
	node := ""
	if builders.ReadWriteOnce(s.reg) {
		for _, rep := range reps {
			if n := rep.pod.Spec.NodeName; n != "" {
				node = n
				break
			}
		}
	}
	if err := r.applyRetentionPolicy(ctx, s); err != nil {
		return reconcile.Result{}, err
	}
	deadline := s.gc.Status.HoldExpires.Add(-builders.CollectorDeadlineMargin)
	job := builders.CollectorJob(s.reg, s.gc, rendered, r.RegistrydImage, node, deadline, s.now)
	if err := r.children().create(ctx, s.gc, job); err != nil {
		return reconcile.Result{}, err
	}
	s.gc.Status.JobName = job.Name
	s.event(corev1.EventTypeNormal, "CollectorStarted", fmt.Sprintf("Created Job %s", job.Name))
	return reconcile.Result{RequeueAfter: collectInterval}, nil
}

// applyRetentionPolicy applies the ConfigMap carrying the run's retention
// rules to its collector (owned by the run), when it has rules.
func (r *GarbageCollectionReconciler) applyRetentionPolicy(ctx context.Context, s *gcScope) error {
	cm, err := builders.RetentionConfigMap(s.reg, s.gc)
	if err != nil || cm == nil {
		return err
	}
	if err := r.children().apply(ctx, s.gc, cm); err != nil {
		return err
	}
	log.FromContext(ctx).Info("Applied ConfigMap", "name", cm.Name, "rules", len(s.gc.Spec.Retention))
	return nil
}

// jobOutcome is JobComplete or JobFailed once the Job says so, else "".
func jobOutcome(job *batchv1.Job) batchv1.JobConditionType {
	for _, c := range job.Status.Conditions {
		if c.Status == corev1.ConditionTrue && (c.Type == batchv1.JobComplete || c.Type == batchv1.JobFailed) {
			return c.Type
		}
	}
	return ""
}

func jobFailureMessage(job *batchv1.Job) string {
	for _, c := range job.Status.Conditions {
		if c.Type == batchv1.JobFailed && c.Status == corev1.ConditionTrue {
			return strings.TrimSpace(c.Reason + " " + c.Message)
		}
	}
	return ""
}

// collectorPods lists the pods of a collector Job.
func (r *GarbageCollectionReconciler) collectorPods(ctx context.Context, ns, jobName string) ([]corev1.Pod, error) {
	var pods corev1.PodList
	err := r.APIReader.List(ctx, &pods, ctrl.InNamespace(ns), ctrl.MatchingLabels{batchv1.JobNameLabel: jobName})
	return pods.Items, err
}

// leaveReadOnly stops the collector if the run failed, releases the hold
// and waits until every replica accepts writes again (unless spec.readOnly
// keeps it read-only), then ends the run.
func (r *GarbageCollectionReconciler) leaveReadOnly(ctx context.Context, s *gcScope) (reconcile.Result, error) {
	gc := s.gc
	if gc.Status.Reason != "" {
		stopped, err := r.stopCollector(ctx, s)
		if err != nil {
			return reconcile.Result{}, err
		}
		if !stopped {
			gc.Status.Message = strings.TrimSuffix(gc.Status.Message, "; waiting for the collector to stop") + "; waiting for the collector to stop"
			return reconcile.Result{RequeueAfter: stopCollectorInterval}, nil
		}
		gc.Status.Message = strings.TrimSuffix(gc.Status.Message, "; waiting for the collector to stop")
	}
	if s.reg == nil || string(s.reg.UID) != gc.Status.RegistryUID {
		// The Registry is gone (its pods and ConfigMap with it): take the
		// hold out of a ConfigMap not deleted yet, without waiting for
		// replicas that are going away.
		gone := &berthv1alpha1.Registry{ObjectMeta: metav1.ObjectMeta{Name: gc.Spec.RegistryName, Namespace: gc.Namespace}}
		cm, err := r.ensureHold(ctx, s, gone, nil)
		if err != nil {
			return reconcile.Result{}, err
		}
		if _, err := r.observe(ctx, gone, cm); err != nil {
			return reconcile.Result{}, err
		}
		r.finish(s)
		return reconcile.Result{}, nil
	}
	cm, err := r.ensureHold(ctx, s, s.reg, nil)
	if err != nil {
		return reconcile.Result{}, err
	}
	reps, err := r.observe(ctx, s.reg, cm)
	if err != nil {
		return reconcile.Result{}, err
	}
	waiting := unreleased(reps, string(gc.UID), s.reg.Spec.ReadOnly)
	expired := gc.Status.HoldExpires == nil || !s.now.Before(gc.Status.HoldExpires.Time)
	if len(waiting) > 0 && !expired {
		setGCCondition(gc, berthv1alpha1.GCConditionReadOnlyVerified, metav1.ConditionFalse, berthv1alpha1.GCReasonReplicasWritable,
			fmt.Sprintf("Hold released; waiting for %s to accept writes again", strings.Join(waiting, ", ")))
		return reconcile.Result{RequeueAfter: verifyInterval}, nil
	}
	noteOutageEnd(gc, reps, s.reg.Spec.ReadOnly)
	msg := "Every replica accepts writes again"
	switch {
	case s.reg.Spec.ReadOnly:
		msg = "Hold released; spec.readOnly keeps the registry read-only"
	case len(waiting) > 0:
		msg = fmt.Sprintf("Hold expired; %s did not confirm it accepts writes again", strings.Join(waiting, ", "))
	}
	setGCCondition(gc, berthv1alpha1.GCConditionReadOnlyVerified, metav1.ConditionFalse, berthv1alpha1.GCReasonReadWriteRestored, msg)
	r.finish(s)
	return reconcile.Result{}, nil
}

// unreleased names the replicas still under the run's hold, still
// refusing writes the spec does not ask them to refuse, or not answering.
func unreleased(reps []replica, id string, specReadOnly bool) []string {
	var out []string
	for _, rep := range reps {
		st := rep.status
		if st == nil || (st.Hold != nil && st.Hold.ID == id) || (!specReadOnly && st.ReadOnlyConfigured) {
			out = append(out, rep.pod.Name)
		}
	}
	return out
}

// noteOutageEnd records when the last replica accepted writes again.
func noteOutageEnd(gc *berthv1alpha1.GarbageCollection, reps []replica, specReadOnly bool) {
	o := gc.Status.WriteOutage
	if o == nil || o.Start == nil || specReadOnly {
		return
	}
	var end time.Time
	for _, rep := range reps {
		if st := rep.status; st != nil && st.WritableSince.After(end) {
			end = st.WritableSince
		}
	}
	if end.IsZero() {
		return
	}
	if end.Before(o.Start.Time) {
		end = o.Start.Time
	}
	t := metav1.NewMicroTime(end)
	o.End = &t
	o.Duration = end.Sub(o.Start.Time).Round(100 * time.Millisecond).String()
}

// stopCollector makes sure no collector pod runs any more: it deletes the
// Job and reports true once none of its pods has a running container, or
// once the collector's own deadline has passed (from then on it deletes
// nothing, whatever the state of its pod).
func (r *GarbageCollectionReconciler) stopCollector(ctx context.Context, s *gcScope) (bool, error) {
	name := builders.CollectorJobName(s.gc)
	job := &batchv1.Job{}
	err := r.APIReader.Get(ctx, ctrl.ObjectKey{Namespace: s.gc.Namespace, Name: name}, job)
	switch {
	case apierrors.IsNotFound(err):
	case err != nil:
		return false, err
	case jobOutcome(job) == "" && job.DeletionTimestamp.IsZero():
		if err := r.Delete(ctx, job, ctrl.PropagationPolicy(metav1.DeletePropagationBackground)); ctrl.IgnoreNotFound(err) != nil {
			return false, fmt.Errorf("stopping Job %s: %w", name, err)
		}
		log.FromContext(ctx).Info("Deleted Job", "name", name)
	}
	pods, err := r.collectorPods(ctx, s.gc.Namespace, name)
	if err != nil {
		return false, err
	}
	running := false
	for i := range pods {
		for _, cs := range pods[i].Status.ContainerStatuses {
			if cs.State.Running != nil {
				running = true
			}
		}
		if running && pods[i].DeletionTimestamp.IsZero() {
			if err := r.Delete(ctx, &pods[i]); ctrl.IgnoreNotFound(err) != nil {
				return false, err
			}
		}
	}
	if !running {
		return true, nil
	}
	exp := s.gc.Status.HoldExpires
	return exp != nil && !s.now.Before(exp.Add(-builders.CollectorDeadlineMargin)), nil
}

// finish ends the run: Succeeded unless a reason was recorded.
func (r *GarbageCollectionReconciler) finish(s *gcScope) {
	gc := s.gc
	now := metav1.NewTime(s.now)
	gc.Status.CompletionTime = &now
	if gc.Status.StartTime != nil {
		gc.Status.Duration = s.now.Sub(gc.Status.StartTime.Time).Round(time.Second).String()
	}
	if gc.Status.Reason == "" {
		gc.Status.Phase = berthv1alpha1.GCSucceeded
		setGCCondition(gc, berthv1alpha1.GCConditionComplete, metav1.ConditionTrue, berthv1alpha1.GCReasonSucceeded, gc.Status.Message)
		s.event(corev1.EventTypeNormal, berthv1alpha1.GCReasonSucceeded, gc.Status.Message)
	} else {
		gc.Status.Phase = berthv1alpha1.GCFailed
		setGCCondition(gc, berthv1alpha1.GCConditionFailed, metav1.ConditionTrue, gc.Status.Reason, gc.Status.Message)
		s.event(corev1.EventTypeWarning, "Failed", gc.Status.Message)
	}
	s.finished = true
}

// pruneHistory deletes the oldest finished runs of gc's Registry beyond
// its history limits (with their Jobs, by owner reference).
func (r *GarbageCollectionReconciler) pruneHistory(ctx context.Context, gc *berthv1alpha1.GarbageCollection) error {
	keepOK, keepFailed := int32(builders.DefaultSuccessfulRunsHistoryLimit), int32(builders.DefaultFailedRunsHistoryLimit)
	reg := &berthv1alpha1.Registry{}
	err := r.Get(ctx, ctrl.ObjectKey{Namespace: gc.Namespace, Name: gc.Spec.RegistryName}, reg)
	switch {
	case err == nil:
		if p := reg.Spec.GarbageCollection; p != nil {
			if p.SuccessfulRunsHistoryLimit != nil {
				keepOK = *p.SuccessfulRunsHistoryLimit
			}
			if p.FailedRunsHistoryLimit != nil {
				keepFailed = *p.FailedRunsHistoryLimit
			}
		}
	case !apierrors.IsNotFound(err):
		return err
	}
	runs, err := runsOf(ctx, r.Client, gc.Namespace, gc.Spec.RegistryName)
	if err != nil {
		return err
	}
	for _, victim := range beyondHistory(runs, keepOK, keepFailed) {
		if err := r.Delete(ctx, &victim, ctrl.PropagationPolicy(metav1.DeletePropagationBackground)); ctrl.IgnoreNotFound(err) != nil {
			return fmt.Errorf("pruning GarbageCollection %s: %w", victim.Name, err)
		}
		log.FromContext(ctx).Info("Deleted GarbageCollection beyond the history limit", "name", victim.Name, "phase", victim.Status.Phase)
	}
	return nil
}

// beyondHistory returns the finished runs to delete: all but the keepOK
// newest Succeeded and keepFailed newest Failed ones.
func beyondHistory(runs []berthv1alpha1.GarbageCollection, keepOK, keepFailed int32) []berthv1alpha1.GarbageCollection {
	newestFirst := func(a, b berthv1alpha1.GarbageCollection) int {
		ta, tb := finishedAt(&a), finishedAt(&b)
		switch {
		case ta.After(tb):
			return -1
		case tb.After(ta):
			return 1
		}
		return strings.Compare(b.Name, a.Name)
	}
	var ok, failed []berthv1alpha1.GarbageCollection
	for _, run := range runs {
		if !run.DeletionTimestamp.IsZero() {
			continue
		}
		switch run.Status.Phase {
		case berthv1alpha1.GCSucceeded:
			ok = append(ok, run)
		case berthv1alpha1.GCFailed:
			failed = append(failed, run)
		}
	}
	slices.SortFunc(ok, newestFirst)
	slices.SortFunc(failed, newestFirst)
	var out []berthv1alpha1.GarbageCollection
	if int(keepOK) < len(ok) {
		out = append(out, ok[keepOK:]...)
	}
	if int(keepFailed) < len(failed) {
		out = append(out, failed[keepFailed:]...)
	}
	return out
}

func finishedAt(gc *berthv1alpha1.GarbageCollection) time.Time {
	if gc.Status.CompletionTime != nil {
		return gc.Status.CompletionTime.Time
	}
	return gc.CreationTimestamp.Time
}
