package controllers

import (
	"context"
	"fmt"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	berthv1alpha1 "github.com/berth-dev/berth/api/v1alpha1"
	"github.com/berth-dev/berth/controllers/builders"
)

// replicaRecheckInterval is how often a Registry whose replicas do not yet
// report the read-only state it should be in is looked at again.
const replicaRecheckInterval = 5 * time.Second

// reconcileGCSchedule applies the CronJob of spec.garbageCollection.schedule
// with the ServiceAccount, Role and RoleBinding its trigger pods run as, or
// deletes them when there is no schedule.
func (r *RegistryReconciler) reconcileGCSchedule(ctx context.Context, s *registryScope) error {
	reg := s.reg
	cron := builders.GCCronJob(reg, r.ManagerImage)
	if cron == nil {
		for _, c := range []struct {
			obj  client.Object
			name string
		}{
			{&batchv1.CronJob{}, builders.GCCronJobName(reg)},
			{&rbacv1.RoleBinding{}, builders.GCTriggerName(reg)},
			{&rbacv1.Role{}, builders.GCTriggerName(reg)},
			{&corev1.ServiceAccount{}, builders.GCTriggerName(reg)},
		} {
			if err := r.children().deleteOwned(ctx, reg, c.obj, c.name); err != nil {
				return err
			}
		}
		return nil
	}
	if s.problem = schedulePolicies.evaluate(&policyInput{reg: reg, managerImage: r.ManagerImage}); s.problem != nil {
		return nil
	}
	for _, obj := range []client.Object{
		builders.GCTriggerServiceAccount(reg), builders.GCTriggerRole(reg), builders.GCTriggerRoleBinding(reg), cron,
	} {
		if _, err := r.children().ensure(ctx, reg, obj); err != nil {
			return err
		}
	}
	return nil
}

// loadRuns finds the Registry's running GarbageCollection and its last
// finished one.
func (r *RegistryReconciler) loadRuns(ctx context.Context, s *registryScope) error {
	var list berthv1alpha1.GarbageCollectionList
	if err := r.List(ctx, &list, client.InNamespace(s.reg.Namespace)); err != nil {
		return err
	}
	for i := range list.Items {
		gc := &list.Items[i]
		if gc.Spec.RegistryName != s.reg.Name {
			continue
		}
		switch {
		case gc.Active():
			s.activeRun = gc
		case gc.Finished():
			if s.lastRun == nil || finishedAt(gc).After(finishedAt(s.lastRun)) {
				s.lastRun = gc
			}
		}
	}
	return nil
}

// observeReplicas pushes the ConfigMap and the live Secrets to the running
// pods at once (so a live-reloaded change — spec.readOnly, a password, a
// certificate — takes seconds, not the kubelet's sync period) and asks
// each what it does.
func (r *RegistryReconciler) observeReplicas(ctx context.Context, s *registryScope) error {
	if r.Prober == nil {
		return nil
	}
	reader := r.APIReader
	if reader == nil {
		reader = r.Client
	}
	pods, err := listReplicas(ctx, reader, s.reg)
	if err != nil || len(pods) == 0 {
		return err
	}
	if s.configMap != nil {
		token, err := podSyncToken(ctx, r.Client, s.reg, s.configMap)
		if err != nil {
			return err
		}
		if err := nudgePods(ctx, r.Client, pods, token); err != nil {
			return err
		}
	}
	s.replicas = probeReplicas(ctx, r.Prober, pods)
	return nil
}

// registryWants is whether the registry should refuse writes now:
// spec.readOnly, or a run entering read-only or collecting.
func registryWants(specReadOnly bool, active *berthv1alpha1.GarbageCollection) bool {
	if specReadOnly {
		return true
	}
	return active != nil && (active.Status.Phase == berthv1alpha1.GCEnteringReadOnly || active.Status.Phase == berthv1alpha1.GCCollecting)
}

// replicaCounts summarises what the replicas report.
type replicaCounts struct {
	total, readOnly, unknown int
	held                     bool // some replica reports a garbage collection hold
}

func countReplicas(reps []replica) replicaCounts {
	c := replicaCounts{total: len(reps)}
	for _, rep := range reps {
		switch {
		case rep.status == nil:
			c.unknown++
		case rep.status.ReadOnlyConfigured:
			c.readOnly++
			if rep.status.Hold != nil {
				c.held = true
			}
		}
	}
	return c
}

// setReadOnlyCondition says whether the registry refuses writes, from what
// the replicas report; from the spec and the runs when no replica answers.
func setReadOnlyCondition(st *berthv1alpha1.RegistryStatus, gen int64, specReadOnly bool, active *berthv1alpha1.GarbageCollection, c replicaCounts) {
	cond := metav1.Condition{Type: berthv1alpha1.ConditionReadOnly, ObservedGeneration: gen}
	want := registryWants(specReadOnly, active)
	wantReason := berthv1alpha1.ReasonSpecReadOnly
	if !specReadOnly {
		wantReason = berthv1alpha1.ReasonGarbageCollection
	}
	known := c.total - c.unknown
	switch {
	case known == 0:
		// No replica answers: what the replicas will do when they do.
		if want {
			cond.Status, cond.Reason, cond.Message = metav1.ConditionTrue, wantReason, readOnlyMessage(wantReason, active)
		} else {
			cond.Status, cond.Reason, cond.Message = metav1.ConditionFalse, berthv1alpha1.ReasonReadWrite, "Writes are accepted"
		}
	case c.readOnly == c.total:
		reason := berthv1alpha1.ReasonSpecReadOnly
		if c.held {
			reason = berthv1alpha1.ReasonGarbageCollection
		}
		cond.Status, cond.Reason = metav1.ConditionTrue, reason
		cond.Message = fmt.Sprintf("%d of %d replicas refuse writes: %s", c.readOnly, c.total, readOnlyMessage(reason, active))
	case c.readOnly == 0 && c.unknown == 0:
		cond.Status, cond.Reason = metav1.ConditionFalse, berthv1alpha1.ReasonReadWrite
		cond.Message = fmt.Sprintf("%d of %d replicas accept writes", c.total, c.total)
	default:
		status := metav1.ConditionFalse
		if c.readOnly > 0 {
			status = metav1.ConditionTrue
		}
		cond.Status, cond.Reason = status, berthv1alpha1.ReasonConverging
		cond.Message = fmt.Sprintf("%d of %d replicas refuse writes, %d did not answer", c.readOnly, c.total, c.unknown)
	}
	meta.SetStatusCondition(&st.Conditions, cond)
}

func readOnlyMessage(reason string, active *berthv1alpha1.GarbageCollection) string {
	if reason == berthv1alpha1.ReasonGarbageCollection {
		if active != nil {
			return "GarbageCollection " + active.Name + " holds the registry read-only"
		}
		return "a GarbageCollection holds the registry read-only"
	}
	return "spec.readOnly is true: writes are refused"
}

// replicasConverged reports whether the replicas do what the registry
// wants (no replica, or every replica answering in the wanted mode).
func replicasConverged(want bool, c replicaCounts) bool {
	if c.total == 0 {
		return true
	}
	if c.unknown > 0 {
		return false
	}
	if want {
		return c.readOnly == c.total
	}
	return c.readOnly == 0
}

// setGarbageCollectingCondition is True while a run holds the registry.
func setGarbageCollectingCondition(st *berthv1alpha1.RegistryStatus, gen int64, active *berthv1alpha1.GarbageCollection) {
	c := metav1.Condition{Type: berthv1alpha1.ConditionGarbageCollecting, ObservedGeneration: gen,
		Status: metav1.ConditionFalse, Reason: berthv1alpha1.ReasonIdle, Message: "No garbage collection is running"}
	if active != nil {
		c.Status, c.Reason = metav1.ConditionTrue, string(active.Status.Phase)
		c.Message = fmt.Sprintf("GarbageCollection %s is %s", active.Name, active.Status.Phase)
	}
	meta.SetStatusCondition(&st.Conditions, c)
}

// lastGarbageCollection summarises the last finished run.
func lastGarbageCollection(gc *berthv1alpha1.GarbageCollection) *berthv1alpha1.LastGarbageCollection {
	if gc == nil {
		return nil
	}
	out := &berthv1alpha1.LastGarbageCollection{
		Name: gc.Name, Phase: gc.Status.Phase, CompletionTime: gc.Status.CompletionTime.DeepCopy(), Reason: gc.Status.Reason,
	}
	if gc.Status.Summary != nil && !gc.Spec.DryRun {
		out.BytesFreed = gc.Status.Summary.BytesFreed
		if r := gc.Status.Summary.Retention; r != nil {
			out.TagsDeleted = r.TagsDeleted
		}
	}
	if o := gc.Status.WriteOutage; o != nil {
		out.WriteOutage = o.Duration
	}
	return out
}

// requeueForReplicas asks for another look while the replicas have not
// taken the wanted mode yet.
func requeueForReplicas(s *registryScope) reconcile.Result {
	if s.problem != nil || replicasConverged(registryWants(s.reg.Spec.ReadOnly, s.activeRun), countReplicas(s.replicas)) {
		return reconcile.Result{}
	}
	return reconcile.Result{RequeueAfter: replicaRecheckInterval}
}

// registriesForRun maps a GarbageCollection to its Registry.
func (r *RegistryReconciler) registriesForRun(_ context.Context, o client.Object) []reconcile.Request {
	gc := o.(*berthv1alpha1.GarbageCollection)
	return []reconcile.Request{{NamespacedName: client.ObjectKey{Namespace: gc.Namespace, Name: gc.Spec.RegistryName}}}
}
