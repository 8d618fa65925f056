package controllers

import (
	"fmt"
	"slices"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	berthv1alpha1 "github.com/berth-dev/berth/api/v1alpha1"
)

// cond is a condition as the status should hold it (the transition time
// aside, which withoutTransitionTimes clears).
func cond(typ string, status metav1.ConditionStatus, reason, message string, gen int64) metav1.Condition {
	return metav1.Condition{Type: typ, Status: status, Reason: reason, Message: message, ObservedGeneration: gen}
}

// withoutTransitionTimes returns conds with LastTransitionTime cleared:
// SetStatusCondition stamps the time of the call.
func withoutTransitionTimes(conds []metav1.Condition) []metav1.Condition {
	out := slices.Clone(conds)
	for i := range out {
		out[i].LastTransitionTime = metav1.Time{}
	}
	return out
}

func TestComputeStatus(t *testing.T) {
	deployment := func(ready int32, conds ...appsv1.DeploymentCondition) *appsv1.Deployment {
		return &appsv1.Deployment{
			ObjectMeta: metav1.ObjectMeta{Name: "r", Generation: 2},
			Spec:       appsv1.DeploymentSpec{Replicas: ptr.To[int32](2)},
			Status: appsv1.DeploymentStatus{ObservedGeneration: 2, Replicas: 2, UpdatedReplicas: 2,
				ReadyReplicas: ready, AvailableReplicas: ready, Conditions: conds},
		}
	}
	stalled := appsv1.DeploymentCondition{Type: appsv1.DeploymentProgressing, Status: corev1.ConditionFalse, Reason: "ProgressDeadlineExceeded"}
	const gen = 7
	var (
		T, F       = metav1.ConditionTrue, metav1.ConditionFalse
		honoured   = cond(berthv1alpha1.ConditionDegraded, F, berthv1alpha1.ReasonAsExpected, "The spec is honoured", gen)
		rollingOut = cond(berthv1alpha1.ConditionProgressing, T, berthv1alpha1.ReasonRollingOut, "Rolling out registryd", gen)
		rolledOut  = cond(berthv1alpha1.ConditionProgressing, F, berthv1alpha1.ReasonRolledOut, "Every replica runs the current spec", gen)
		notReady   = func(ready int) metav1.Condition {
			return cond(berthv1alpha1.ConditionReady, F, berthv1alpha1.ReasonNotAvailable, fmt.Sprintf("%d of 2 replicas ready", ready), gen)
		}
		// Without replicas or runs, ReadOnly and GarbageCollecting
		// follow the spec.
		writable = cond(berthv1alpha1.ConditionReadOnly, F, berthv1alpha1.ReasonReadWrite, "Writes are accepted", gen)
		idle     = cond(berthv1alpha1.ConditionGarbageCollecting, F, berthv1alpha1.ReasonIdle, "No garbage collection is running", gen)
	)
	secretMissing := &problem{berthv1alpha1.ReasonSecretNotFound, "spec.x: Secret \"s\" not found"}
	proxy := &problem{berthv1alpha1.ReasonUnsupportedConfig, "registryd does not implement yet: proxy: not supported yet"}
	s3 := &problem{berthv1alpha1.ReasonUnsupportedConfig, "registryd does not implement yet: storage.s3: not supported yet"}
	tests := map[string]struct {
		dep     *appsv1.Deployment
		problem *problem
		want    []metav1.Condition // Degraded, Progressing, Ready, ReadOnly, GarbageCollecting
	}{
		"no Deployment yet": {nil, nil, []metav1.Condition{honoured, rollingOut, notReady(0), writable, idle}},
		"rolling out":       {deployment(1), nil, []metav1.Condition{honoured, rollingOut, notReady(1), writable, idle}},
		"rolled out": {deployment(2), nil, []metav1.Condition{honoured, rolledOut,
			cond(berthv1alpha1.ConditionReady, T, berthv1alpha1.ReasonAvailable, "2 of 2 replicas ready", gen), writable, idle}},
		"stalled": {deployment(1, stalled), nil, []metav1.Condition{
			cond(berthv1alpha1.ConditionDegraded, T, berthv1alpha1.ReasonRolloutStalled, "Deployment r exceeded its progress deadline", gen),
			cond(berthv1alpha1.ConditionProgressing, F, berthv1alpha1.ReasonRolloutStalled, "Deployment r exceeded its progress deadline", gen),
			notReady(1), writable, idle}},
		"missing Secret": {deployment(2), secretMissing, []metav1.Condition{
			cond(berthv1alpha1.ConditionDegraded, T, secretMissing.reason, secretMissing.message, gen), rolledOut,
			cond(berthv1alpha1.ConditionReady, F, secretMissing.reason, secretMissing.message, gen), writable, idle}},
		"unsupported config, last good config still running": {deployment(2), proxy, []metav1.Condition{
			cond(berthv1alpha1.ConditionDegraded, T, proxy.reason, proxy.message, gen), rolledOut,
			cond(berthv1alpha1.ConditionReady, F, proxy.reason, proxy.message, gen), writable, idle}},
		"unsupported config, nothing running": {nil, s3, []metav1.Condition{
			cond(berthv1alpha1.ConditionDegraded, T, s3.reason, s3.message, gen), rollingOut,
			cond(berthv1alpha1.ConditionReady, F, s3.reason, s3.message, gen), writable, idle}},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			reg := &berthv1alpha1.Registry{ObjectMeta: metav1.ObjectMeta{Name: "r", Namespace: "ns", Generation: gen},
				Spec: berthv1alpha1.RegistrySpec{Replicas: ptr.To[int32](2), Storage: berthv1alpha1.RegistryStorage{EmptyDir: &berthv1alpha1.EmptyDirStorage{}}}}
			st := computeStatus(reg, tt.dep, tt.problem, nil, nil, replicaCounts{})
			if got := withoutTransitionTimes(st.Conditions); !equality.Semantic.DeepEqual(got, tt.want) {
				t.Errorf("conditions =\n%+v\nwant\n%+v", got, tt.want)
			}
			if st.ObservedGeneration != gen || st.URL != "http://r.ns.svc:5000" || st.Storage != "emptyDir" {
				t.Errorf("status = %+v", st)
			}

			// Recomputing from the written status changes nothing: no
			// second write, no new transition time.
			reg.Status = st
			if again := computeStatus(reg, tt.dep, tt.problem, nil, nil, replicaCounts{}); !equality.Semantic.DeepEqual(again, st) {
				t.Errorf("status is not stable:\n%+v\n%+v", again, st)
			}
		})
	}
}

func TestReadOnlyAndGarbageCollectingConditions(t *testing.T) {
	run := func(phase berthv1alpha1.GarbageCollectionPhase) *berthv1alpha1.GarbageCollection {
		return &berthv1alpha1.GarbageCollection{ObjectMeta: metav1.ObjectMeta{Name: "gc-1"}, Status: berthv1alpha1.GarbageCollectionStatus{Phase: phase}}
	}
	const gen = 3
	var (
		T, F     = metav1.ConditionTrue, metav1.ConditionFalse
		readOnly = func(s metav1.ConditionStatus, reason, msg string) metav1.Condition {
			return cond(berthv1alpha1.ConditionReadOnly, s, reason, msg, gen)
		}
		collecting = func(phase string) metav1.Condition {
			return cond(berthv1alpha1.ConditionGarbageCollecting, T, phase, "GarbageCollection gc-1 is "+phase, gen)
		}
		idle = cond(berthv1alpha1.ConditionGarbageCollecting, F, berthv1alpha1.ReasonIdle, "No garbage collection is running", gen)
	)
	tests := map[string]struct {
		specReadOnly bool
		active       *berthv1alpha1.GarbageCollection
		replicas     replicaCounts
		readOnly     metav1.Condition
		statusRO     bool
		collecting   metav1.Condition
	}{
		"no replica, nothing asks for read-only": {
			readOnly: readOnly(F, berthv1alpha1.ReasonReadWrite, "Writes are accepted"), collecting: idle},
		"no replica, spec.readOnly": {specReadOnly: true,
			readOnly: readOnly(T, berthv1alpha1.ReasonSpecReadOnly, "spec.readOnly is true: writes are refused"), statusRO: true, collecting: idle},
		"all replicas writable": {replicas: replicaCounts{total: 2},
			readOnly: readOnly(F, berthv1alpha1.ReasonReadWrite, "2 of 2 replicas accept writes"), collecting: idle},
		"spec.readOnly set, replicas not there yet": {specReadOnly: true, replicas: replicaCounts{total: 2, readOnly: 1},
			readOnly: readOnly(T, berthv1alpha1.ReasonConverging, "1 of 2 replicas refuse writes, 0 did not answer"), statusRO: true, collecting: idle},
		"spec.readOnly, every replica refuses writes": {specReadOnly: true, replicas: replicaCounts{total: 2, readOnly: 2},
			readOnly: readOnly(T, berthv1alpha1.ReasonSpecReadOnly, "2 of 2 replicas refuse writes: spec.readOnly is true: writes are refused"), statusRO: true, collecting: idle},
		"run entering read-only, replicas still writable": {active: run(berthv1alpha1.GCEnteringReadOnly), replicas: replicaCounts{total: 2},
			readOnly: readOnly(F, berthv1alpha1.ReasonReadWrite, "2 of 2 replicas accept writes"), statusRO: true, collecting: collecting("EnteringReadOnly")},
		"run collecting, every replica held": {active: run(berthv1alpha1.GCCollecting), replicas: replicaCounts{total: 2, readOnly: 2, held: true},
			readOnly: readOnly(T, berthv1alpha1.ReasonGarbageCollection, "2 of 2 replicas refuse writes: GarbageCollection gc-1 holds the registry read-only"),
			statusRO: true, collecting: collecting("Collecting")},
		"run leaving, one replica still held": {active: run(berthv1alpha1.GCLeavingReadOnly), replicas: replicaCounts{total: 2, readOnly: 1, held: true},
			readOnly: readOnly(T, berthv1alpha1.ReasonConverging, "1 of 2 replicas refuse writes, 0 did not answer"), collecting: collecting("LeavingReadOnly")},
		"a replica does not answer": {replicas: replicaCounts{total: 2, unknown: 1},
			readOnly: readOnly(F, berthv1alpha1.ReasonConverging, "0 of 2 replicas refuse writes, 1 did not answer"), collecting: idle},
		"no replica answers, run collecting": {active: run(berthv1alpha1.GCCollecting), replicas: replicaCounts{total: 1, unknown: 1},
			readOnly: readOnly(T, berthv1alpha1.ReasonGarbageCollection, "GarbageCollection gc-1 holds the registry read-only"),
			statusRO: true, collecting: collecting("Collecting")},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			reg := &berthv1alpha1.Registry{ObjectMeta: metav1.ObjectMeta{Name: "r", Namespace: "ns", Generation: gen},
				Spec: berthv1alpha1.RegistrySpec{ReadOnly: tt.specReadOnly, Storage: berthv1alpha1.RegistryStorage{EmptyDir: &berthv1alpha1.EmptyDirStorage{}}}}
			st := computeStatus(reg, nil, nil, tt.active, nil, tt.replicas)
			got := withoutTransitionTimes(st.Conditions)
			for _, want := range []metav1.Condition{tt.readOnly, tt.collecting} {
				c := meta.FindStatusCondition(got, want.Type)
				if c == nil {
					t.Errorf("no %s condition", want.Type)
				} else if *c != want {
					t.Errorf("%s = %+v, want %+v", want.Type, *c, want)
				}
			}
			if st.ReadOnly != tt.statusRO {
				t.Errorf("status.readOnly = %v, want %v", st.ReadOnly, tt.statusRO)
			}
			reg.Status = st
			if again := computeStatus(reg, nil, nil, tt.active, nil, tt.replicas); !equality.Semantic.DeepEqual(again, st) {
				t.Errorf("status is not stable:\n%+v\n%+v", again, st)
			}
		})
	}
}

func TestReplicasConverged(t *testing.T) {
	tests := map[string]struct {
		want     bool
		replicas replicaCounts
		ok       bool
	}{
		"no replica":                  {true, replicaCounts{}, true},
		"all read-only as wanted":     {true, replicaCounts{total: 2, readOnly: 2}, true},
		"one still writable":          {true, replicaCounts{total: 2, readOnly: 1}, false},
		"all writable as wanted":      {false, replicaCounts{total: 2}, true},
		"one still read-only":         {false, replicaCounts{total: 2, readOnly: 1}, false},
		"one does not answer":         {false, replicaCounts{total: 2, unknown: 1}, false},
		"read-only, one not answered": {true, replicaCounts{total: 2, readOnly: 1, unknown: 1}, false},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			if got := replicasConverged(tt.want, tt.replicas); got != tt.ok {
				t.Errorf("replicasConverged(%v, %+v) = %v, want %v", tt.want, tt.replicas, got, tt.ok)
			}
		})
	}
}

func TestLastGarbageCollection(t *testing.T) {
	done := metav1.NewTime(metav1.Now().Rfc3339Copy().Time)
	gc := &berthv1alpha1.GarbageCollection{ObjectMeta: metav1.ObjectMeta{Name: "gc-7"},
		Status: berthv1alpha1.GarbageCollectionStatus{Phase: berthv1alpha1.GCSucceeded, CompletionTime: &done,
			Summary:     &berthv1alpha1.GarbageCollectionSummary{BytesFreed: 4096},
			WriteOutage: &berthv1alpha1.WriteOutage{Duration: "3.1s"}}}
	got := lastGarbageCollection(gc)
	if got.Name != "gc-7" || got.Phase != berthv1alpha1.GCSucceeded || got.BytesFreed != 4096 || got.WriteOutage != "3.1s" || !got.CompletionTime.Equal(&done) {
		t.Errorf("lastGarbageCollection = %+v", got)
	}
	gc.Spec.DryRun = true
	if got := lastGarbageCollection(gc); got.BytesFreed != 0 {
		t.Errorf("a dry run frees nothing, got %d", got.BytesFreed)
	}
	if lastGarbageCollection(nil) != nil {
		t.Error("no run, no summary")
	}
}
