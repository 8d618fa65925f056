package builders

import (
	"strings"
	"testing"
	"time"

	berthv1alpha1 "github.com/berth-dev/berth/api/v1alpha1"
	"github.com/berth-dev/berth/registryd/retention"
)

func int32p(n int32) *int32 { return &n }

var exampleRules = []berthv1alpha1.RetentionRule{
	{Repositories: []berthv1alpha1.RepositoryGlob{"ci/**"}, KeepTags: []berthv1alpha1.TagPattern{`v?[0-9]+\.[0-9]+\.[0-9]+`}, KeepMostRecentlyPushed: int32p(10)},
	{Repositories: []berthv1alpha1.RepositoryGlob{"**"}, PruneTags: []berthv1alpha1.TagPattern{"nightly-.*"},
		KeepPushedWithin: &berthv1alpha1.Duration{Duration: 14 * 24 * time.Hour}, DeleteLastTag: true},
}

// TestRetentionConfigMap: the policy the collector reads is the run's rules
// as registryd parses them, mounted where --retention-policy points.
func TestRetentionConfigMap(t *testing.T) {
	reg := registry(goldenCases["filesystem-pvc"])
	gc := gcFor(reg, "nightly-1")
	if cm, err := RetentionConfigMap(reg, gc); cm != nil || err != nil {
		t.Errorf("a run without rules has a policy ConfigMap: %v %v", cm, err)
	}
	gc.Spec.Retention = exampleRules
	cm, err := RetentionConfigMap(reg, gc)
	if err != nil {
		t.Fatal(err)
	}
	if cm.Name != "nightly-1-retention" || cm.Namespace != gc.Namespace || cm.Labels[GCRunLabel] != "nightly-1" {
		t.Errorf("ConfigMap %s/%s %v", cm.Namespace, cm.Name, cm.Labels)
	}
	p, err := retention.Parse([]byte(cm.Data[RetentionFile]))
	if err != nil {
		t.Fatalf("registryd refuses the policy: %v\n%s", err, cm.Data[RetentionFile])
	}
	now := time.Now()
	tags := []retention.Tag{{Name: "nightly-1", Pushed: now.Add(-15 * 24 * time.Hour)}, {Name: "nightly-2", Pushed: now.Add(-13 * 24 * time.Hour)}}
	if d := p.Apply("web", tags, now); d.Rule != 1 || len(d.Delete) != 1 || d.Delete[0].Name != "nightly-1" {
		t.Errorf("the second rule does not apply as written: %+v", d)
	}
	if p.Match("ci/app") != 0 {
		t.Error("the first rule does not match ci/app")
	}
	for _, want := range []string{`"keepMostRecentlyPushed": 10`, `"keepPushedWithin": "336h0m0s"`, `"deleteLastTag": true`} {
		if !strings.Contains(cm.Data[RetentionFile], want) {
			t.Errorf("policy lacks %s:\n%s", want, cm.Data[RetentionFile])
		}
	}

	rendered, err := Render(reg, false)
	if err != nil {
		t.Fatal(err)
	}
	job := CollectorJob(reg, gc, rendered, "berth/registryd:test", "", gcNow.Add(10*time.Minute), gcNow)
	pod := job.Spec.Template.Spec
	c := pod.Containers[0]
	if args := strings.Join(c.Args, " "); !strings.Contains(args, "--retention-policy /etc/registryd/retention/policy.json ") {
		t.Errorf("args %q", args)
	}
	mounted := false
	for _, m := range c.VolumeMounts {
		if m.MountPath == RetentionDir {
			for _, v := range pod.Volumes {
				mounted = mounted || v.Name == m.Name && m.ReadOnly && v.ConfigMap != nil && v.ConfigMap.Name == cm.Name
			}
		}
	}
	if !mounted {
		t.Errorf("the policy ConfigMap is not mounted read-only at %s: %+v %+v", RetentionDir, c.VolumeMounts, pod.Volumes)
	}
}

// TestCheckRetention: what the API server's CEL rules refuse, registryd
// refuses too, naming the same field.
func TestCheckRetention(t *testing.T) {
	if err := CheckRetention("spec.retention", exampleRules); err != nil {
		t.Errorf("example rules refused: %v", err)
	}
	bad := []berthv1alpha1.RetentionRule{
		exampleRules[0],
		{Repositories: []berthv1alpha1.RepositoryGlob{"Bad"}, KeepTags: []berthv1alpha1.TagPattern{"ok", "(x"}},
		{Repositories: []berthv1alpha1.RepositoryGlob{"a"}},
	}
	err := CheckRetention("spec.retention", bad)
	for _, want := range []string{"spec.retention[1].repositories[0]", "spec.retention[1].keepTags[1]: error parsing regexp", "spec.retention[2]: selects every tag and keeps none"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v lacks %q", err, want)
		}
	}
}
