package controllers

import (
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	berthv1alpha1 "github.com/berth-dev/berth/api/v1alpha1"
)

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
	want := func(ready, progressing, degraded string) map[string]string {
		return map[string]string{berthv1alpha1.ConditionReady: ready, berthv1alpha1.ConditionProgressing: progressing, berthv1alpha1.ConditionDegraded: degraded}
	}
	tests := map[string]struct {
		dep     *appsv1.Deployment
		problem *problem
		want    map[string]string // condition type -> reason
	}{
		"no Deployment yet": {nil, nil, want(berthv1alpha1.ReasonNotAvailable, berthv1alpha1.ReasonRollingOut, berthv1alpha1.ReasonAsExpected)},
		"rolling out":       {deployment(1), nil, want(berthv1alpha1.ReasonNotAvailable, berthv1alpha1.ReasonRollingOut, berthv1alpha1.ReasonAsExpected)},
		"rolled out":        {deployment(2), nil, want(berthv1alpha1.ReasonAvailable, berthv1alpha1.ReasonRolledOut, berthv1alpha1.ReasonAsExpected)},
		"stalled":           {deployment(1, stalled), nil, want(berthv1alpha1.ReasonNotAvailable, berthv1alpha1.ReasonRolloutStalled, berthv1alpha1.ReasonRolloutStalled)},
		"missing Secret": {deployment(2), &problem{berthv1alpha1.ReasonSecretNotFound, "spec.x: Secret \"s\" not found"},
			want(berthv1alpha1.ReasonSecretNotFound, berthv1alpha1.ReasonRolledOut, berthv1alpha1.ReasonSecretNotFound)},
		"unsupported config, last good config still running": {deployment(2),
			&problem{berthv1alpha1.ReasonUnsupportedConfig, "registryd does not implement yet: proxy: not supported yet"},
			want(berthv1alpha1.ReasonUnsupportedConfig, berthv1alpha1.ReasonRolledOut, berthv1alpha1.ReasonUnsupportedConfig)},
		"unsupported config, nothing running": {nil,
			&problem{berthv1alpha1.ReasonUnsupportedConfig, "registryd does not implement yet: storage.s3: not supported yet"},
			want(berthv1alpha1.ReasonUnsupportedConfig, berthv1alpha1.ReasonRollingOut, berthv1alpha1.ReasonUnsupportedConfig)},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			reg := &berthv1alpha1.Registry{ObjectMeta: metav1.ObjectMeta{Name: "r", Namespace: "ns", Generation: 7},
				Spec: berthv1alpha1.RegistrySpec{Replicas: ptr.To[int32](2), Storage: berthv1alpha1.RegistryStorage{EmptyDir: &berthv1alpha1.EmptyDirStorage{}}}}
			st := computeStatus(reg, tt.dep, tt.problem, nil, nil, replicaCounts{})
			for typ, reason := range tt.want {
				c := meta.FindStatusCondition(st.Conditions, typ)
				if c == nil || c.Reason != reason || c.ObservedGeneration != 7 {
					t.Errorf("%s = %+v, want reason %s at generation 7", typ, c, reason)
				}
			}
			if st.ObservedGeneration != 7 || st.URL != "http://r.ns.svc:5000" || st.Storage != "emptyDir" {
				t.Errorf("status = %+v", st)
			}

			// Recomputing from the written status changes nothing: no
			// second write, no new transition time.
			reg.Status = st
			if again := computeStatus(reg, tt.dep, tt.problem, nil, nil, replicaCounts{}); !equalStatus(again, st) {
				t.Errorf("status is not stable:\n%+v\n%+v", again, st)
			}
		})
	}
}

func equalStatus(a, b berthv1alpha1.RegistryStatus) bool {
	if len(a.Conditions) != len(b.Conditions) {
		return false
	}
	for i := range a.Conditions {
		if a.Conditions[i] != b.Conditions[i] {
			return false
		}
	}
	a.Conditions, b.Conditions = nil, nil
	return a.ObservedGeneration == b.ObservedGeneration && a.URL == b.URL && a.Storage == b.Storage &&
		a.Replicas == b.Replicas && a.ReadyReplicas == b.ReadyReplicas && a.ReadOnly == b.ReadOnly
}

func TestReadOnlyAndGarbageCollectingConditions(t *testing.T) {
	run := func(phase berthv1alpha1.GarbageCollectionPhase) *berthv1alpha1.GarbageCollection {
		return &berthv1alpha1.GarbageCollection{ObjectMeta: metav1.ObjectMeta{Name: "gc-1"}, Status: berthv1alpha1.GarbageCollectionStatus{Phase: phase}}
	}
	type want struct {
		readOnly     metav1.ConditionStatus
		reason       string
		statusRO     bool
		collecting   metav1.ConditionStatus
		collectingRe string
	}
	tests := map[string]struct {
		specReadOnly bool
		active       *berthv1alpha1.GarbageCollection
		replicas     replicaCounts
		want         want
	}{
		"no replica, nothing asks for read-only": {
			want: want{metav1.ConditionFalse, berthv1alpha1.ReasonReadWrite, false, metav1.ConditionFalse, berthv1alpha1.ReasonIdle}},
		"no replica, spec.readOnly": {specReadOnly: true,
			want: want{metav1.ConditionTrue, berthv1alpha1.ReasonSpecReadOnly, true, metav1.ConditionFalse, berthv1alpha1.ReasonIdle}},
		"all replicas writable": {replicas: replicaCounts{total: 2},
			want: want{metav1.ConditionFalse, berthv1alpha1.ReasonReadWrite, false, metav1.ConditionFalse, berthv1alpha1.ReasonIdle}},
		"spec.readOnly set, replicas not there yet": {specReadOnly: true, replicas: replicaCounts{total: 2, readOnly: 1},
			want: want{metav1.ConditionTrue, berthv1alpha1.ReasonConverging, true, metav1.ConditionFalse, berthv1alpha1.ReasonIdle}},
		"spec.readOnly, every replica refuses writes": {specReadOnly: true, replicas: replicaCounts{total: 2, readOnly: 2},
			want: want{metav1.ConditionTrue, berthv1alpha1.ReasonSpecReadOnly, true, metav1.ConditionFalse, berthv1alpha1.ReasonIdle}},
		"run entering read-only, replicas still writable": {active: run(berthv1alpha1.GCEnteringReadOnly), replicas: replicaCounts{total: 2},
			want: want{metav1.ConditionFalse, berthv1alpha1.ReasonReadWrite, true, metav1.ConditionTrue, "EnteringReadOnly"}},
		"run collecting, every replica held": {active: run(berthv1alpha1.GCCollecting), replicas: replicaCounts{total: 2, readOnly: 2, held: true},
			want: want{metav1.ConditionTrue, berthv1alpha1.ReasonGarbageCollection, true, metav1.ConditionTrue, "Collecting"}},
		"run leaving, one replica still held": {active: run(berthv1alpha1.GCLeavingReadOnly), replicas: replicaCounts{total: 2, readOnly: 1, held: true},
			want: want{metav1.ConditionTrue, berthv1alpha1.ReasonConverging, false, metav1.ConditionTrue, "LeavingReadOnly"}},
		"a replica does not answer": {replicas: replicaCounts{total: 2, unknown: 1},
			want: want{metav1.ConditionFalse, berthv1alpha1.ReasonConverging, false, metav1.ConditionFalse, berthv1alpha1.ReasonIdle}},
		"no replica answers, run collecting": {active: run(berthv1alpha1.GCCollecting), replicas: replicaCounts{total: 1, unknown: 1},
			want: want{metav1.ConditionTrue, berthv1alpha1.ReasonGarbageCollection, true, metav1.ConditionTrue, "Collecting"}},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			reg := &berthv1alpha1.Registry{ObjectMeta: metav1.ObjectMeta{Name: "r", Namespace: "ns", Generation: 3},
				Spec: berthv1alpha1.RegistrySpec{ReadOnly: tt.specReadOnly, Storage: berthv1alpha1.RegistryStorage{EmptyDir: &berthv1alpha1.EmptyDirStorage{}}}}
			st := computeStatus(reg, nil, nil, tt.active, nil, tt.replicas)
			ro := meta.FindStatusCondition(st.Conditions, berthv1alpha1.ConditionReadOnly)
			if ro == nil || ro.Status != tt.want.readOnly || ro.Reason != tt.want.reason {
				t.Errorf("ReadOnly = %+v, want %s/%s", ro, tt.want.readOnly, tt.want.reason)
			}
			if st.ReadOnly != tt.want.statusRO {
				t.Errorf("status.readOnly = %v, want %v", st.ReadOnly, tt.want.statusRO)
			}
			gcc := meta.FindStatusCondition(st.Conditions, berthv1alpha1.ConditionGarbageCollecting)
			if gcc == nil || gcc.Status != tt.want.collecting || gcc.Reason != tt.want.collectingRe {
				t.Errorf("GarbageCollecting = %+v, want %s/%s", gcc, tt.want.collecting, tt.want.collectingRe)
			}
			reg.Status = st
			if again := computeStatus(reg, nil, nil, tt.active, nil, tt.replicas); !equalStatus(again, st) {
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
