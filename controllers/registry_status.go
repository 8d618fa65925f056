package controllers

import (
	"context"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	berthv1alpha1 "github.com/berth-dev/berth/api/v1alpha1"
	"github.com/berth-dev/berth/controllers/builders"
)

// patchStatus computes the status from the scope and writes it through the
// status subresource, only when it changed.
func (r *RegistryReconciler) patchStatus(ctx context.Context, s *registryScope) error {
	status := computeStatus(s.reg, s.deployment, s.problem, s.activeRun, s.lastRun, countReplicas(s.replicas))
	if equality.Semantic.DeepEqual(status, s.reg.Status) {
		return nil
	}
	before := s.reg.DeepCopy()
	s.reg.Status = status
	return r.Status().Patch(ctx, s.reg, client.MergeFrom(before))
}

// computeStatus is the Registry's status given its Deployment (nil when
// not created yet), the problem the reconcile found (nil when none), its
// running and last finished GarbageCollections (nil when none) and what
// its replicas report.
func computeStatus(reg *berthv1alpha1.Registry, dep *appsv1.Deployment, p *problem,
	active, last *berthv1alpha1.GarbageCollection, replicas replicaCounts) berthv1alpha1.RegistryStatus {
	st := *reg.Status.DeepCopy()
	st.ObservedGeneration = reg.Generation
	st.Storage = builders.StorageKind(reg)
	st.URL = builders.URL(reg)
	st.ReadOnly = registryWants(reg.Spec.ReadOnly, active)
	st.LastGarbageCollection = lastGarbageCollection(last)
	st.Replicas, st.ReadyReplicas = 0, 0
	if dep != nil {
		st.Replicas, st.ReadyReplicas = dep.Status.Replicas, dep.Status.ReadyReplicas
	}
	r := rollout(reg, dep)
	setDegradedCondition(&st, reg.Generation, p, r)
	setProgressingCondition(&st, reg.Generation, r)
	setReadyCondition(&st, reg.Generation, p, r)
	setReadOnlyCondition(&st, reg.Generation, reg.Spec.ReadOnly, active, replicas)
	setGarbageCollectingCondition(&st, reg.Generation, active)
	return st
}

// rolloutState summarises a Deployment's rollout.
type rolloutState struct {
	exists, done, stalled bool
	desired, ready        int32
	stalledMessage        string
}

func rollout(reg *berthv1alpha1.Registry, dep *appsv1.Deployment) rolloutState {
	r := rolloutState{desired: builders.Replicas(reg)}
	if dep == nil {
		return r
	}
	r.exists = true
	if dep.Spec.Replicas != nil {
		r.desired = *dep.Spec.Replicas
	}
	st := dep.Status
	r.ready = st.ReadyReplicas
	r.done = st.ObservedGeneration >= dep.Generation &&
		st.UpdatedReplicas == r.desired && st.Replicas == r.desired && st.AvailableReplicas == r.desired
	for _, c := range st.Conditions {
		if c.Type == appsv1.DeploymentProgressing && c.Status == corev1.ConditionFalse && c.Reason == "ProgressDeadlineExceeded" {
			r.stalled = true
			r.stalledMessage = "Deployment " + dep.Name + " exceeded its progress deadline"
		}
	}
	return r
}

func setDegradedCondition(st *berthv1alpha1.RegistryStatus, gen int64, p *problem, r rolloutState) {
	c := metav1.Condition{Type: berthv1alpha1.ConditionDegraded, ObservedGeneration: gen,
		Status: metav1.ConditionFalse, Reason: berthv1alpha1.ReasonAsExpected, Message: "The spec is honoured"}
	switch {
	case p != nil:
		c.Status, c.Reason, c.Message = metav1.ConditionTrue, p.reason, p.message
	case r.stalled:
		c.Status, c.Reason, c.Message = metav1.ConditionTrue, berthv1alpha1.ReasonRolloutStalled, r.stalledMessage
	}
	meta.SetStatusCondition(&st.Conditions, c)
}

func setProgressingCondition(st *berthv1alpha1.RegistryStatus, gen int64, r rolloutState) {
	c := metav1.Condition{Type: berthv1alpha1.ConditionProgressing, ObservedGeneration: gen}
	switch {
	case r.stalled:
		c.Status, c.Reason, c.Message = metav1.ConditionFalse, berthv1alpha1.ReasonRolloutStalled, r.stalledMessage
	case !r.exists || !r.done:
		c.Status, c.Reason, c.Message = metav1.ConditionTrue, berthv1alpha1.ReasonRollingOut, "Rolling out registryd"
	default:
		c.Status, c.Reason, c.Message = metav1.ConditionFalse, berthv1alpha1.ReasonRolledOut, "Every replica runs the current spec"
	}
	meta.SetStatusCondition(&st.Conditions, c)
}

func setReadyCondition(st *berthv1alpha1.RegistryStatus, gen int64, p *problem, r rolloutState) {
	c := metav1.Condition{Type: berthv1alpha1.ConditionReady, ObservedGeneration: gen}
	switch {
	case p != nil:
		c.Status, c.Reason, c.Message = metav1.ConditionFalse, p.reason, p.message
	case r.exists && r.done && r.ready >= r.desired:
		c.Status, c.Reason, c.Message = metav1.ConditionTrue, berthv1alpha1.ReasonAvailable,
			fmt.Sprintf("%d of %d replicas ready", r.ready, r.desired)
	default:
		c.Status, c.Reason, c.Message = metav1.ConditionFalse, berthv1alpha1.ReasonNotAvailable,
			fmt.Sprintf("%d of %d replicas ready", r.ready, r.desired)
	}
	meta.SetStatusCondition(&st.Conditions, c)
}
