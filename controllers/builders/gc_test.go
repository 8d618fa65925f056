package builders

import (
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/yaml"

	berthv1alpha1 "github.com/berth-dev/berth/api/v1alpha1"
	"github.com/berth-dev/berth/registryd/hold"
)

var gcNow = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

func gcFor(reg *berthv1alpha1.Registry, name string) *berthv1alpha1.GarbageCollection {
	return &berthv1alpha1.GarbageCollection{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: reg.Namespace, UID: "0f6c3a1e-run"},
		Spec: berthv1alpha1.GarbageCollectionSpec{RegistryName: reg.Name, DeleteUntagged: true,
			Timeout: &berthv1alpha1.Duration{Duration: time.Hour}, GracePeriod: &berthv1alpha1.Duration{Duration: 30 * time.Minute}},
	}
}

func TestGCGolden(t *testing.T) {
	reg := registry(goldenCases["filesystem-pvc"])
	reg.Spec.GarbageCollection = &berthv1alpha1.GarbageCollectionPolicy{
		Schedule: "0 3 * * *", DeleteUntagged: true, Timeout: &berthv1alpha1.Duration{Duration: 30 * time.Minute},
	}
	rendered, err := Render(reg, false)
	if err != nil {
		t.Fatal(err)
	}
	job := CollectorJob(reg, gcFor(reg, "example-nightly"), rendered, "berth/registryd:test", "node-a", gcNow.Add(59*time.Minute), gcNow)
	out, err := yaml.Marshal(job)
	if err != nil {
		t.Fatal(err)
	}
	checkGolden(t, "filesystem-pvc.collector-job.yaml", out)

	cron := GCCronJob(reg, "berth/manager:test")
	if out, err = yaml.Marshal(cron); err != nil {
		t.Fatal(err)
	}
	checkGolden(t, "filesystem-pvc.gc-cronjob.yaml", out)
}

func TestCollectorJob(t *testing.T) {
	reg := registry(goldenCases["s3"])
	rendered, err := Render(reg, false)
	if err != nil {
		t.Fatal(err)
	}
	dep := Deployment(reg, rendered, "berth/registryd:test", "sum")
	gc := gcFor(reg, strings.Repeat("n", 80))
	gc.Spec.DryRun = true
	job := CollectorJob(reg, gc, rendered, "berth/registryd:test", "", gcNow.Add(10*time.Minute), gcNow)

	if errs := validation.IsDNS1123Label(job.Name); len(errs) > 0 {
		t.Errorf("Job name %q: %v", job.Name, errs)
	}
	sel := SelectorLabels(reg)
	matches := true
	for k, v := range sel {
		matches = matches && job.Spec.Template.Labels[k] == v
	}
	if matches {
		t.Error("collector pods carry the Service's selector labels: clients would be sent to them")
	}
	for k, v := range job.Spec.Template.Labels {
		if errs := validation.IsValidLabelValue(v); len(errs) > 0 {
			t.Errorf("label %s=%q: %v", k, v, errs)
		}
	}
	c, d := job.Spec.Template.Spec.Containers[0], dep.Spec.Template.Spec.Containers[0]
	// Exactly the registry's storage config, credentials and volume.
	if c.Image != d.Image || c.Image != "registry.example/registryd:v1" {
		t.Errorf("image %q, deployment %q", c.Image, d.Image)
	}
	if !equalYAML(t, c.Env, d.Env) || !equalYAML(t, c.VolumeMounts, d.VolumeMounts) ||
		!equalYAML(t, job.Spec.Template.Spec.Volumes, dep.Spec.Template.Spec.Volumes) ||
		!equalYAML(t, c.SecurityContext, d.SecurityContext) ||
		!equalYAML(t, job.Spec.Template.Spec.SecurityContext, dep.Spec.Template.Spec.SecurityContext) {
		t.Error("the collector does not run with the registry's environment, volumes and security context")
	}
	args := strings.Join(c.Args, " ")
	for _, want := range []string{
		"garbage-collect --json", "--hold-file /etc/registryd/config/hold.json", "--hold-id 0f6c3a1e-run",
		"--deadline 2026-11-25T12:10:00Z", "--grace-period 30m0s", "--dry-run", "--delete-untagged",
	} {
		if !strings.Contains(args, want) {
			t.Errorf("args %q lack %q", args, want)
		}
	}
	if !strings.HasSuffix(args, " /etc/registryd/config/config.yml") {
		t.Errorf("args %q do not end with the config file", args)
	}
	if *job.Spec.BackoffLimit != 0 || *job.Spec.ActiveDeadlineSeconds != 600 || job.Spec.Template.Spec.RestartPolicy != corev1.RestartPolicyNever {
		t.Errorf("job spec = %+v", job.Spec)
	}
	if job.Spec.Template.Spec.Affinity != nil {
		t.Error("shared storage needs no node")
	}
}

func equalYAML(t *testing.T, a, b any) bool {
	t.Helper()
	x, err1 := yaml.Marshal(a)
	y, err2 := yaml.Marshal(b)
	if err1 != nil || err2 != nil {
		t.Fatal(err1, err2)
	}
	return string(x) == string(y)
}

func TestPinToNode(t *testing.T) {
	zone := corev1.NodeSelectorRequirement{Key: "zone", Operator: corev1.NodeSelectorOpIn, Values: []string{"a"}}
	spec := &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{
		NodeSelectorTerms: []corev1.NodeSelectorTerm{{MatchExpressions: []corev1.NodeSelectorRequirement{zone}}, {MatchExpressions: []corev1.NodeSelectorRequirement{zone}}},
	}}}
	got := pinToNode(spec, "node-1")
	terms := got.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms
	if len(terms) != 2 {
		t.Fatalf("terms = %+v", terms)
	}
	for _, term := range terms {
		if len(term.MatchExpressions) != 1 || len(term.MatchFields) != 1 || term.MatchFields[0].Values[0] != "node-1" {
			t.Errorf("term %+v does not keep the spec's requirement and add the node", term)
		}
	}
	if len(spec.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms[0].MatchFields) != 0 {
		t.Error("pinToNode changed the Registry's spec")
	}
	if got := pinToNode(nil, "n"); got.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms[0].MatchFields[0].Values[0] != "n" {
		t.Errorf("pinToNode(nil) = %+v", got)
	}
}

func TestGCCronJob(t *testing.T) {
	reg := registry(goldenCases["s3"])
	if GCCronJob(reg, "m") != nil {
		t.Error("a CronJob without a schedule")
	}
	reg.Spec.GarbageCollection = &berthv1alpha1.GarbageCollectionPolicy{SuccessfulRunsHistoryLimit: new(int32)}
	if GCCronJob(reg, "m") != nil {
		t.Error("a CronJob without a schedule")
	}
	reg.Spec.GarbageCollection = &berthv1alpha1.GarbageCollectionPolicy{Schedule: "@daily", Suspend: true, DryRun: true,
		GracePeriod: &berthv1alpha1.Duration{Duration: 0}}
	reg.Name = strings.Repeat("r", 60)
	cron := GCCronJob(reg, "berth/manager:v9")
	if len(cron.Name) > 52 {
		t.Errorf("CronJob name %q is longer than 52", cron.Name)
	}
	if cron.Spec.Schedule != "@daily" || !*cron.Spec.Suspend || cron.Spec.ConcurrencyPolicy != "Forbid" || cron.Spec.StartingDeadlineSeconds == nil {
		t.Errorf("cron spec = %+v", cron.Spec)
	}
	pod := cron.Spec.JobTemplate.Spec.Template.Spec
	if pod.ServiceAccountName != GCTriggerName(reg) || pod.Containers[0].Image != "berth/manager:v9" {
		t.Errorf("pod = %+v", pod)
	}
	want := []string{"gc-trigger", "--registry", reg.Name, "--delete-untagged=false", "--dry-run=true", "--timeout", "1h0m0s", "--grace-period", "0s"}
	if !slices.Equal(pod.Containers[0].Args, want) {
		t.Errorf("args = %q, want %q", pod.Containers[0].Args, want)
	}

	role := GCTriggerRole(reg)
	if len(role.Rules) != 2 || !slices.Equal(role.Rules[0].Verbs, []string{"create"}) || !slices.Equal(role.Rules[0].Resources, []string{"garbagecollections"}) ||
		!slices.Equal(role.Rules[1].Verbs, []string{"get"}) || !slices.Equal(role.Rules[1].Resources, []string{"registries"}) ||
		!slices.Equal(role.Rules[1].ResourceNames, []string{reg.Name}) {
		t.Errorf("the trigger may do more than create GarbageCollections and read its Registry: %+v", role.Rules)
	}
	rb := GCTriggerRoleBinding(reg)
	if rb.RoleRef.Name != role.Name || rb.Subjects[0].Name != GCTriggerServiceAccount(reg).Name || rb.Subjects[0].Namespace != reg.Namespace {
		t.Errorf("binding = %+v", rb)
	}
}

func TestHoldConfigMap(t *testing.T) {
	reg := registry(goldenCases["filesystem-pvc"])
	h := &hold.Hold{ID: "u1", Holder: "GarbageCollection registries/x", Expires: gcNow}
	cm, err := HoldConfigMap(reg, h)
	if err != nil {
		t.Fatal(err)
	}
	got, err := hold.Parse([]byte(cm.Data[HoldFile]))
	if err != nil || got.ID != "u1" || !got.Expires.Equal(gcNow) || len(cm.Data) != 1 || cm.Name != ConfigMapName(reg) {
		t.Errorf("hold ConfigMap = %+v (%v)", cm, err)
	}
	release, err := HoldConfigMap(reg, nil)
	if err != nil || release.Data != nil {
		t.Errorf("release = %+v, %v; want no data, which removes the run's key", release, err)
	}
}

func TestGCNamesAndHelpers(t *testing.T) {
	for _, n := range []int{1, 40, 63, 64, 200, 253} {
		name := strings.Repeat("a", n)
		for got, max := range map[string]int{
			CollectorJobName(&berthv1alpha1.GarbageCollection{ObjectMeta: metav1.ObjectMeta{Name: name}}): 63,
			GCCronJobName(registry(berthv1alpha1.RegistrySpec{})):                                         52,
		} {
			if len(got) > max {
				t.Errorf("%q longer than %d", got, max)
			}
		}
	}
	if a, b := boundedName(strings.Repeat("x", 70)+"1", "-s", 63), boundedName(strings.Repeat("x", 70)+"2", "-s", 63); a == b {
		t.Error("shortened names collide")
	}
	for ok, storage := range map[bool]berthv1alpha1.RegistryStorage{
		true:  {Filesystem: &berthv1alpha1.FilesystemStorage{}},
		false: {EmptyDir: &berthv1alpha1.EmptyDirStorage{}},
	} {
		if got, field := Collectable(registry(berthv1alpha1.RegistrySpec{Storage: storage})); got != ok || (!ok && field == "") {
			t.Errorf("Collectable(%+v) = %v %q", storage, got, field)
		}
	}
	if got, _ := Collectable(registry(berthv1alpha1.RegistrySpec{Storage: berthv1alpha1.RegistryStorage{InMemory: &berthv1alpha1.InMemoryStorage{}}})); got {
		t.Error("inmemory storage is collectable")
	}
	for n, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1536: "1.5 KiB", 5 << 20: "5.0 MiB", 3 << 40: "3.0 TiB"} {
		if got := HumanBytes(n); got != want {
			t.Errorf("HumanBytes(%d) = %q, want %q", n, got, want)
		}
	}
	a, b := registry(goldenCases["s3"]), registry(goldenCases["s3"]).DeepCopy()
	if StorageHash(a) != StorageHash(b) {
		t.Error("StorageHash is not stable")
	}
	b.Spec.Storage.S3.Bucket = "other"
	if StorageHash(a) == StorageHash(b) {
		t.Error("StorageHash misses a bucket change")
	}
}
