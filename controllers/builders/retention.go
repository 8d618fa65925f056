package builders

import (
	"encoding/json"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	berthv1alpha1 "github.com/berth-dev/berth/api/v1alpha1"
	"github.com/berth-dev/berth/registryd/retention"
)

// A run's retention rules reach its collector as registryd's policy file
// (registryd/retention), in a ConfigMap the run owns, mounted read-only at
// RetentionDir and passed as --retention-policy. A file rather than an
// argument: the API bounds the rules (32 rules of up to 16 globs and 32
// patterns of 256 bytes) to a few hundred KiB at worst, more than Linux
// lets one argument carry (128 KiB) and within a ConfigMap's 1 MiB; and it
// is the very file `registryd garbage-collect --retention-policy` reads
// outside Kubernetes. The ConfigMap is deleted with the run.

// Where the collector finds the policy.
const (
	RetentionDir  = "/etc/registryd/retention"
	RetentionFile = "policy.json"
)

// RetentionPolicy is rules as registryd's policy.
func RetentionPolicy(rules []berthv1alpha1.RetentionRule) retention.Policy {
	p := retention.Policy{Rules: make([]retention.Rule, 0, len(rules))}
	for _, r := range rules {
		out := retention.Rule{DeleteLastTag: r.DeleteLastTag}
		for _, g := range r.Repositories {
			out.Repositories = append(out.Repositories, string(g))
		}
		for _, t := range r.KeepTags {
			out.KeepTags = append(out.KeepTags, string(t))
		}
		for _, t := range r.PruneTags {
			out.PruneTags = append(out.PruneTags, string(t))
		}
		if n := r.KeepMostRecentlyPushed; n != nil {
			keep := int(*n)
			out.KeepMostRecentlyPushed = &keep
		}
		if d := r.KeepPushedWithin; d != nil {
			out.KeepPushedWithin = d.String()
		}
		p.Rules = append(p.Rules, out)
	}
	return p
}

// CheckRetention validates rules as registryd will, the errors naming
// field (e.g. spec.retention[0].keepTags[1]).
func CheckRetention(field string, rules []berthv1alpha1.RetentionRule) error {
	_, err := RetentionPolicy(rules).CompileAt(field)
	return err
}

// RetentionConfigMapName is the ConfigMap of run gc's policy.
func RetentionConfigMapName(gc *berthv1alpha1.GarbageCollection) string {
	return boundedName(gc.Name, "-retention", 253)
}

// RetentionConfigMap carries run gc's retention rules to its collector;
// nil when the run has none. The owner reference is the caller's.
func RetentionConfigMap(reg *berthv1alpha1.Registry, gc *berthv1alpha1.GarbageCollection) (*corev1.ConfigMap, error) {
	if len(gc.Spec.Retention) == 0 {
		return nil, nil
	}
	data, err := json.MarshalIndent(RetentionPolicy(gc.Spec.Retention), "", "  ")
	if err != nil {
		return nil, err
	}
	labels := gcLabels(reg)
	labels[GCRunLabel] = boundedName(gc.Name, "", maxNameLength)
	return &corev1.ConfigMap{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
		ObjectMeta: metav1.ObjectMeta{Name: RetentionConfigMapName(gc), Namespace: gc.Namespace, Labels: labels},
		Data:       map[string]string{RetentionFile: string(data)},
	}, nil
}
