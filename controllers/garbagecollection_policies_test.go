package controllers

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	prometheustestutil "github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	berthv1alpha1 "github.com/berth-dev/berth/api/v1alpha1"
	"github.com/berth-dev/berth/controllers/builders"
	"github.com/berth-dev/berth/registryd/control"
)

var t0 = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

func gcRun(name string, created time.Duration, phase berthv1alpha1.GarbageCollectionPhase) berthv1alpha1.GarbageCollection {
	return berthv1alpha1.GarbageCollection{
		ObjectMeta: metav1.ObjectMeta{Name: name, UID: types.UID("uid-" + name), CreationTimestamp: metav1.NewTime(t0.Add(created))},
		Status:     berthv1alpha1.GarbageCollectionStatus{Phase: phase},
	}
}

func TestFirstBlocker(t *testing.T) {
	tests := map[string]struct {
		self   berthv1alpha1.GarbageCollection
		others []berthv1alpha1.GarbageCollection
		want   string
	}{
		"alone": {gcRun("a", 0, ""), nil, ""},
		"earlier runs finished": {gcRun("c", 2, ""), []berthv1alpha1.GarbageCollection{
			gcRun("a", 0, berthv1alpha1.GCSucceeded), gcRun("b", 1, berthv1alpha1.GCFailed)}, ""},
		"an active run blocks even a newer one": {gcRun("a", 0, berthv1alpha1.GCPending), []berthv1alpha1.GarbageCollection{
			gcRun("b", 5, berthv1alpha1.GCCollecting)}, "b"},
		"older pending first": {gcRun("c", 2, ""), []berthv1alpha1.GarbageCollection{
			gcRun("b", 1, berthv1alpha1.GCPending), gcRun("a", 0, "")}, "a"},
		"newer pending waits for me, not I for it": {gcRun("a", 0, berthv1alpha1.GCPending), []berthv1alpha1.GarbageCollection{
			gcRun("b", 1, berthv1alpha1.GCPending)}, ""},
		"same second: by name": {gcRun("b", 0, ""), []berthv1alpha1.GarbageCollection{gcRun("a", 0, "")}, "a"},
		"leaving read-only still blocks": {gcRun("b", 1, ""), []berthv1alpha1.GarbageCollection{
			gcRun("a", 0, berthv1alpha1.GCLeavingReadOnly)}, "a"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			runs := append([]berthv1alpha1.GarbageCollection{tt.self}, tt.others...)
			got := firstBlocker(&tt.self, runs)
			switch {
			case tt.want == "" && got != nil:
				t.Errorf("blocked by %s, want free", got.Name)
			case tt.want != "" && (got == nil || got.Name != tt.want):
				t.Errorf("blocked by %v, want %s", got, tt.want)
			}
		})
	}
}

func TestAbortReason(t *testing.T) {
	reg := &berthv1alpha1.Registry{ObjectMeta: metav1.ObjectMeta{Name: "r", UID: "reg-1"},
		Spec: berthv1alpha1.RegistrySpec{Storage: berthv1alpha1.RegistryStorage{Filesystem: &berthv1alpha1.FilesystemStorage{}}}}
	expires := metav1.NewTime(t0.Add(time.Hour))
	running := func() *berthv1alpha1.GarbageCollection {
		gc := gcRun("gc", 0, berthv1alpha1.GCCollecting)
		gc.Spec.RegistryName = "r"
		gc.Status.RegistryUID, gc.Status.StorageHash, gc.Status.HoldExpires = "reg-1", builders.StorageHash(reg), &expires
		return &gc
	}
	changed := reg.DeepCopy()
	changed.Spec.Storage.Filesystem.StorageClassName = new(string)
	recreated := reg.DeepCopy()
	recreated.UID = "reg-2"
	tests := map[string]struct {
		reg  *berthv1alpha1.Registry
		now  time.Time
		want string
	}{
		"all well":                      {reg, t0.Add(time.Minute), ""},
		"Registry deleted":              {nil, t0, berthv1alpha1.GCReasonRegistryDeleted},
		"Registry recreated, same name": {recreated, t0, berthv1alpha1.GCReasonRegistryDeleted},
		"storage changed":               {changed, t0, berthv1alpha1.GCReasonStorageChanged},
		"hold expired":                  {reg, t0.Add(time.Hour), berthv1alpha1.GCReasonTimeout},
		"just before expiry":            {reg, t0.Add(time.Hour - time.Millisecond), ""},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			got, msg := abortReason(running(), tt.reg, tt.now)
			if got != tt.want {
				t.Errorf("abortReason = %q (%s), want %q", got, msg, tt.want)
			}
			if got != "" && msg == "" {
				t.Error("a reason without a message")
			}
		})
	}
}

func rep(name string, st *control.Status) replica {
	return replica{pod: &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name}}, status: st}
}

func TestReplicaVerdicts(t *testing.T) {
	since := t0.Add(2 * time.Second)
	held := &control.Status{ReadOnly: true, ReadOnlyConfigured: true, ReadOnlySince: since, Hold: &control.HoldRef{ID: "run"}}
	draining := &control.Status{ReadOnlyConfigured: true, Hold: &control.HoldRef{ID: "run"}}
	other := &control.Status{ReadOnly: true, ReadOnlyConfigured: true, Hold: &control.HoldRef{ID: "another"}}
	specRO := &control.Status{ReadOnly: true, ReadOnlyConfigured: true}
	writable := &control.Status{WritableSince: since}
	reps := []replica{rep("held", held), rep("draining", draining), rep("other", other), rep("spec", specRO), rep("writable", writable), rep("silent", nil)}

	h, w := splitHeld(reps, "run")
	if !slices.Equal(h, []string{"held"}) || !slices.Equal(w, []string{"draining", "other", "spec", "writable", "silent"}) {
		t.Errorf("splitHeld = %v / %v", h, w)
	}
	// During the sweep only an answer that the replica is not under the
	// hold at all fails the run; draining is under the hold, silence is
	// not an answer.
	if got := writableReplicas(reps, "run"); !slices.Equal(got, []string{"other", "spec", "writable"}) {
		t.Errorf("writableReplicas = %v", got)
	}
	if got := unreleased(reps, "run", false); !slices.Equal(got, []string{"held", "draining", "other", "spec", "silent"}) {
		t.Errorf("unreleased (read-write wanted) = %v", got)
	}
	if got := unreleased(reps, "run", true); !slices.Equal(got, []string{"held", "draining", "silent"}) {
		t.Errorf("unreleased (spec.readOnly) = %v", got)
	}
}

func TestWriteOutage(t *testing.T) {
	start := metav1.NewTime(t0)
	gc := gcRun("gc", 0, berthv1alpha1.GCEnteringReadOnly)
	gc.UID = "run"
	gc.Status.StartTime = &start
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	noteOutageStart(&gc, []replica{
		rep("a", &control.Status{ReadOnlyConfigured: true, ReadOnlySince: at(3 * time.Second), Hold: &control.HoldRef{ID: "run"}}),
		rep("b", &control.Status{ReadOnlyConfigured: true, ReadOnlySince: at(2 * time.Second), Hold: &control.HoldRef{ID: "run"}}),
		// Read-only since before the run (spec.readOnly): not the run's outage.
		rep("c", &control.Status{ReadOnlyConfigured: true, ReadOnlySince: at(-time.Hour), Hold: &control.HoldRef{ID: "other"}}),
	})
	if o := gc.Status.WriteOutage; o == nil || !o.Start.Time.Equal(t0.Add(2*time.Second)) {
		t.Fatalf("outage start = %+v, want t0+2s", gc.Status.WriteOutage)
	}
	noteOutageEnd(&gc, []replica{
		rep("a", &control.Status{WritableSince: at(9 * time.Second)}),
		rep("b", &control.Status{WritableSince: at(11*time.Second + 240*time.Millisecond)}),
	}, false)
	if o := gc.Status.WriteOutage; o.End == nil || !o.End.Time.Equal(t0.Add(11*time.Second+240*time.Millisecond)) || o.Duration != "9.2s" {
		t.Errorf("outage = %+v, want end t0+11.24s, 9.2s", o)
	}

	// A replica read-only since before the run started counts from the start.
	gc2 := gcRun("gc2", 0, berthv1alpha1.GCEnteringReadOnly)
	gc2.UID = "run2"
	gc2.Status.StartTime = &start
	noteOutageStart(&gc2, []replica{rep("a", &control.Status{ReadOnlyConfigured: true, ReadOnlySince: at(-time.Minute), Hold: &control.HoldRef{ID: "run2"}})})
	if !gc2.Status.WriteOutage.Start.Time.Equal(t0) {
		t.Errorf("outage start = %v, want the run's start", gc2.Status.WriteOutage.Start)
	}
	// spec.readOnly: the registry stays read-only, no end.
	noteOutageEnd(&gc2, []replica{rep("a", &control.Status{ReadOnlyConfigured: true})}, true)
	if gc2.Status.WriteOutage.End != nil {
		t.Errorf("outage end under spec.readOnly = %v, want none", gc2.Status.WriteOutage.End)
	}
}

func TestBeyondHistory(t *testing.T) {
	done := func(name string, phase berthv1alpha1.GarbageCollectionPhase, at time.Duration) berthv1alpha1.GarbageCollection {
		gc := gcRun(name, 0, phase)
		ct := metav1.NewTime(t0.Add(at))
		gc.Status.CompletionTime = &ct
		return gc
	}
	runs := []berthv1alpha1.GarbageCollection{
		done("ok1", berthv1alpha1.GCSucceeded, 1), done("ok2", berthv1alpha1.GCSucceeded, 2),
		done("ok3", berthv1alpha1.GCSucceeded, 3), done("ok4", berthv1alpha1.GCSucceeded, 4),
		done("bad1", berthv1alpha1.GCFailed, 1), done("bad2", berthv1alpha1.GCFailed, 5),
		gcRun("running", 0, berthv1alpha1.GCCollecting), gcRun("queued", 0, berthv1alpha1.GCPending),
	}
	names := func(rs []berthv1alpha1.GarbageCollection) []string {
		var out []string
		for _, r := range rs {
			out = append(out, r.Name)
		}
		slices.Sort(out)
		return out
	}
	tests := map[string]struct {
		ok, failed int32
		want       []string
	}{
		"defaults 3 and 1": {3, 1, []string{"bad1", "ok1"}},
		"keep none":        {0, 0, []string{"bad1", "bad2", "ok1", "ok2", "ok3", "ok4"}},
		"keep plenty":      {10, 10, nil},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			if got := names(beyondHistory(runs, tt.ok, tt.failed)); !slices.Equal(got, tt.want) {
				t.Errorf("pruned %v, want %v", got, tt.want)
			}
		})
	}
}

func TestCollectorSummary(t *testing.T) {
	s, err := parseCollectorSummary(`{"dryRun":false,"manifestsDeleted":3,"blobsDeleted":7,"bytesFreed":3145728,"blobsKeptYoung":2,"manifestsKeptYoung":1,"durationSeconds":1.2345,"errorCount":0}`)
	if err != nil {
		t.Fatal(err)
	}
	st := s.status()
	if st.ManifestsDeleted != 3 || st.BlobsDeleted != 7 || st.BytesFreed != 3145728 || st.Freed != "3.0 MiB" ||
		st.BlobsKeptByGracePeriod != 2 || st.ManifestsKeptByGracePeriod != 1 || st.Duration != "1.235s" {
		t.Errorf("status = %+v", st)
	}
	if got := s.describe(); got != "Deleted 3 manifests and 7 blobs (3.0 MiB); kept 2 blobs and 1 manifests younger than the grace period" {
		t.Errorf("describe = %q", got)
	}
	s.DryRun = true
	if got := s.describe(); got[:22] != "Dry run: would delete " {
		t.Errorf("dry run describe = %q", got)
	}
	for _, bad := range []string{"", "  ", "Error: something", "{"} {
		if _, err := parseCollectorSummary(bad); err == nil {
			t.Errorf("parseCollectorSummary(%q) accepted", bad)
		}
	}
}

// TestCollectorSummaryRetention: the tags retention deleted reach the
// run's status, the per-repository counts bounded (the rest counted as
// omitted), and its message.
func TestCollectorSummaryRetention(t *testing.T) {
	var repos []string
	for i := range 20 {
		repos = append(repos, fmt.Sprintf(`{"repository":"team/app%02d","tagsDeleted":%d}`, i, 40-i))
	}
	s, err := parseCollectorSummary(`{"manifestsDeleted":30,"blobsDeleted":70,"bytesFreed":1048576,` +
		`"retention":{"rules":2,"repositories":25,"tagsDeleted":610,"tagsKeptByLastTagGuard":2,"repositoriesOmitted":3,"eventsDropped":1,` +
		`"byRepository":[` + strings.Join(repos, ",") + `]}}`)
	if err != nil {
		t.Fatal(err)
	}
	r := s.status().Retention
	if r == nil || r.TagsDeleted != 610 || r.Repositories != 25 || r.TagsKeptByLastTagGuard != 2 || r.EventsDropped != 1 ||
		len(r.ByRepository) != maxRetentionRepositories || r.RepositoriesOmitted != 3+20-maxRetentionRepositories {
		t.Fatalf("retention status = %+v", r)
	}
	if first := r.ByRepository[0]; first.Repository != "team/app00" || first.TagsDeleted != 40 {
		t.Errorf("first repository %+v", first)
	}
	if got := s.describe(); got != "Deleted 610 tags, 30 manifests and 70 blobs (1.0 MiB); the last-tag guard kept 2 tags; 1 tag delete events were not delivered" {
		t.Errorf("describe = %q", got)
	}
	if s, _ := parseCollectorSummary(`{"manifestsDeleted":1}`); s.status().Retention != nil {
		t.Error("a run without rules reports retention")
	}
}

func TestSyncToken(t *testing.T) {
	a := syncToken(map[string]string{"config.yml": "x", "hold.json": "{}"})
	if a != syncToken(map[string]string{"hold.json": "{}", "config.yml": "x"}) {
		t.Error("token depends on map order")
	}
	for _, other := range []map[string]string{
		{"config.yml": "x"}, {"config.yml": "x", "hold.json": "{ }"}, {"config.ymlh": "old.json{}"},
	} {
		if syncToken(other) == a {
			t.Errorf("token of %v equals token of different content", other)
		}
	}
}

func TestCollectorOutcome(t *testing.T) {
	at := func(d time.Duration) metav1.Time { return metav1.NewTime(t0.Add(d)) }
	pod := func(name string, exit int32, finished time.Duration) corev1.Pod {
		return corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name}, Status: corev1.PodStatus{ContainerStatuses: []corev1.ContainerStatus{{
			Name: builders.CollectorContainer, State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
				ExitCode: exit, FinishedAt: at(finished), Message: name}}}}}}
	}
	running := corev1.Pod{Status: corev1.PodStatus{ContainerStatuses: []corev1.ContainerStatus{{
		Name: builders.CollectorContainer, State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}}}}}
	failedJob := &batchv1.Job{Status: batchv1.JobStatus{Conditions: []batchv1.JobCondition{{Type: batchv1.JobFailed, Status: corev1.ConditionTrue, Reason: "DeadlineExceeded"}}}}
	tests := map[string]struct {
		job  *batchv1.Job
		pods []corev1.Pod
		want batchv1.JobConditionType
		msg  string
	}{
		"still running":                        {&batchv1.Job{}, []corev1.Pod{running}, "", ""},
		"exited 0, before the Job's condition": {&batchv1.Job{}, []corev1.Pod{pod("ok", 0, 0)}, batchv1.JobComplete, "ok"},
		"exited 1":                             {&batchv1.Job{}, []corev1.Pod{pod("bad", 1, 0)}, batchv1.JobFailed, "bad"},
		"the newest pod decides":               {&batchv1.Job{}, []corev1.Pod{pod("old", 1, 0), pod("new", 0, time.Second)}, batchv1.JobComplete, "new"},
		"no pod ever ran, the Job failed":      {failedJob, nil, batchv1.JobFailed, ""},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			got, term := collectorOutcome(tt.job, tt.pods)
			if got != tt.want || termMessage(term) != tt.msg {
				t.Errorf("collectorOutcome = %q, %q; want %q, %q", got, termMessage(term), tt.want, tt.msg)
			}
		})
	}
}

func TestRecordRunMetrics(t *testing.T) {
	start, end := metav1.NewTime(t0), metav1.NewTime(t0.Add(40*time.Second))
	oStart, oEnd := metav1.NewMicroTime(t0.Add(time.Second)), metav1.NewMicroTime(t0.Add(6*time.Second))
	ok := gcRun("ok", 0, berthv1alpha1.GCSucceeded)
	ok.Status.StartTime, ok.Status.CompletionTime = &start, &end
	ok.Status.Summary = &berthv1alpha1.GarbageCollectionSummary{BytesFreed: 1000, Retention: &berthv1alpha1.RetentionSummary{TagsDeleted: 7}}
	ok.Status.WriteOutage = &berthv1alpha1.WriteOutage{Start: &oStart, End: &oEnd}
	dry := ok.DeepCopy()
	dry.Spec.DryRun = true
	bad := gcRun("bad", 0, berthv1alpha1.GCFailed)
	bad.Status.Reason = berthv1alpha1.GCReasonTimeout

	succeeded := prometheustestutil.ToFloat64(gcRunsTotal.WithLabelValues("succeeded", ""))
	timeouts := prometheustestutil.ToFloat64(gcRunsTotal.WithLabelValues("failed", berthv1alpha1.GCReasonTimeout))
	freed := prometheustestutil.ToFloat64(gcBytesFreed)
	tagsDeleted := prometheustestutil.ToFloat64(gcTagsDeleted)
	samples := func(h prometheus.Histogram) uint64 {
		m := &dto.Metric{}
		if err := h.Write(m); err != nil {
			t.Fatal(err)
		}
		return m.GetHistogram().GetSampleCount()
	}
	outages, durations := samples(gcWriteOutage), samples(gcRunDuration)
	recordRunMetrics(&ok)
	recordRunMetrics(dry)
	recordRunMetrics(&bad)
	if got := prometheustestutil.ToFloat64(gcRunsTotal.WithLabelValues("succeeded", "")) - succeeded; got != 2 {
		t.Errorf("succeeded runs counted %v, want 2", got)
	}
	if got := prometheustestutil.ToFloat64(gcRunsTotal.WithLabelValues("failed", berthv1alpha1.GCReasonTimeout)) - timeouts; got != 1 {
		t.Errorf("timed-out runs counted %v, want 1", got)
	}
	if got := prometheustestutil.ToFloat64(gcBytesFreed) - freed; got != 1000 {
		t.Errorf("bytes freed counted %v, want 1000 (the dry run frees nothing)", got)
	}
	if got := prometheustestutil.ToFloat64(gcTagsDeleted) - tagsDeleted; got != 7 {
		t.Errorf("tags deleted counted %v, want 7 (the dry run deletes none)", got)
	}
	if got := samples(gcWriteOutage) - outages; got != 2 {
		t.Errorf("write outages observed %d, want 2 (the failed run has none)", got)
	}
	if got := samples(gcRunDuration) - durations; got != 2 {
		t.Errorf("run durations observed %d, want 2 (the failed run never started)", got)
	}
}

func TestLiveSecretNames(t *testing.T) {
	reg := &berthv1alpha1.Registry{ObjectMeta: metav1.ObjectMeta{Name: "r"}, Spec: berthv1alpha1.RegistrySpec{
		Storage: berthv1alpha1.RegistryStorage{S3: &berthv1alpha1.S3Storage{AccessKeySecretRef: &berthv1alpha1.SecretKeyRef{Name: "s3", Key: "k"}}},
		Auth: &berthv1alpha1.RegistryAuth{Htpasswd: &berthv1alpha1.HtpasswdAuth{Users: []berthv1alpha1.HtpasswdUser{
			{Username: "a", PasswordSecretRef: berthv1alpha1.SecretKeyRef{Name: "a-pw", Key: "p"}}}}},
		TLS: &berthv1alpha1.RegistryTLS{SecretName: "tls", ClientCASecretRef: &berthv1alpha1.SecretKeyRef{Name: "ca", Key: "ca.crt"}},
	}}
	// Credentials in environment variables need a restart (the checksum
	// rolls the pods); files registryd reloads do not.
	if got, want := liveSecretNames(reg), []string{"a-pw", "ca", "r-htpasswd", "tls"}; !slices.Equal(got, want) {
		t.Errorf("liveSecretNames = %v, want %v", got, want)
	}
}
