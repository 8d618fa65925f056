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
			st := computeStatus(reg, tt.dep, tt.problem)
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
			if again := computeStatus(reg, tt.dep, tt.problem); !equalStatus(again, st) {
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
