package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/berth-dev/berth/internal/testutil"
	"github.com/berth-dev/berth/registryd/gc"
	"github.com/berth-dev/berth/registryd/handlers"
	"github.com/berth-dev/berth/registryd/notifications"
	"github.com/berth-dev/berth/registryd/storage"
	"github.com/berth-dev/berth/registryd/storage/driver/filesystem"
)

// retentionFixture is a store for a retention policy: ci/app has builds
// b0 .. b4 (pushed 5h .. 1h ago, each with a layer of its own and one layer
// every image shares) and release v1.2.3 (500h ago); prod/app's only image
// shares b0's own layer.
type retentionFixture struct {
	root   string
	images map[string]fixtureImage // by repository:tag
	shared digest.Digest           // the layer every image has
	b0     digest.Digest           // b0's own layer, also prod/app's
}

type fixtureImage struct {
	manifest digest.Digest
	content  []byte
	blobs    map[digest.Digest][]byte
}

func newRetentionFixture(t *testing.T) *retentionFixture {
	t.Helper()
	f := &retentionFixture{root: t.TempDir(), images: map[string]fixtureImage{}}
	drv, err := filesystem.New(filesystem.Parameters{RootDirectory: f.root})
	if err != nil {
		t.Fatal(err)
	}
	s := storage.New(drv)
	ctx := context.Background()
	shared, b0 := []byte("shared layer"), []byte("b0's layer, also prod's")
	f.shared, f.b0 = digest.FromBytes(shared), digest.FromBytes(b0)
	now := time.Now()
	push := func(repo, tag string, pushed time.Time, blobs ...[]byte) {
		img := fixtureImage{blobs: map[digest.Digest][]byte{}}
		var layers []string
		for i, b := range blobs {
			d := digest.FromBytes(b)
			if _, err := s.PutBlob(ctx, repo, d, b); err != nil {
				t.Fatal(err)
			}
			img.blobs[d] = b
			mt := "application/vnd.oci.image.layer.v1.tar"
			if i == 0 {
				mt = "application/vnd.oci.image.config.v1+json"
			}
			layers = append(layers, fmt.Sprintf(`{"mediaType":%q,"digest":%q,"size":%d}`, mt, d, len(b)))
		}
		img.content = fmt.Appendf(nil, `{"schemaVersion":2,"mediaType":%q,"config":%s,"layers":[%s]}`,
			storage.MediaTypeOCIManifest, layers[0], strings.Join(layers[1:], ","))
		img.manifest = digest.FromBytes(img.content)
		if err := s.PutManifest(ctx, repo, img.manifest, img.content); err != nil {
			t.Fatal(err)
		}
		if err := s.Tag(ctx, repo, tag, img.manifest); err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(f.root, filepath.FromSlash(storage.TagCurrentLinkPath(repo, tag)))
		if err := os.Chtimes(p, pushed, pushed); err != nil {
			t.Fatal(err)
		}
		f.images[repo+":"+tag] = img
	}
	for i := range 5 {
		own := fmt.Appendf(nil, "b%d's layer", i)
		if i == 0 {
			own = b0
		}
		push("ci/app", fmt.Sprintf("b%d", i), now.Add(-time.Duration(5-i)*time.Hour), fmt.Appendf(nil, `{"b":%d}`, i), own, shared)
	}
	push("ci/app", "v1.2.3", now.Add(-500*time.Hour), []byte(`{"release":true}`), []byte("release layer"), shared)
	push("prod/app", "stable", now.Add(-900*time.Hour), []byte(`{"prod":true}`), b0, shared)
	return f
}

// writePolicy writes a policy file.
func writePolicy(t *testing.T, policy string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "policy.json")
	if err := os.WriteFile(p, []byte(policy), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// keepTwoAndReleases keeps every semver tag and the two most recent other
// tags of ci/**; prod/app matches no rule.
const keepTwoAndReleases = `{"rules":[{"repositories":["ci/**"],"keepTags":["v?[0-9]+\\.[0-9]+\\.[0-9]+"],"keepMostRecentlyPushed":2}]}`

// TestGarbageCollectRetentionPolicy runs garbage-collect with a policy on a
// real store: the kept tags pull byte for byte, the others are gone with
// the manifests only they named, their unshared blobs are swept and the
// shared ones stay; a dry run before deletes nothing and reports the same
// sets.
func TestGarbageCollectRetentionPolicy(t *testing.T) {
	f := newRetentionFixture(t)
	policy := writePolicy(t, keepTwoAndReleases)
	cfg := writeConfig(t, f.root, true)
	withTerminationLog(t)
	before := snapshot(t, f.root)

	code, dry, stderr := runGC(t, "--dry-run", "--grace-period=0", "--retention-policy", policy, cfg)
	if code != 0 {
		t.Fatalf("dry run: exit %d: %s", code, stderr)
	}
	if after := snapshot(t, f.root); !reflect.DeepEqual(after, before) {
		t.Fatalf("the dry run changed the store")
	}
	code, sum, stderr := runGC(t, "--grace-period=0", "--retention-policy", policy, cfg)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var wantTags []gc.RepositoryTag
	for _, tag := range []string{"b0", "b1", "b2"} {
		wantTags = append(wantTags, gc.RepositoryTag{Repository: "ci/app", Tag: tag, Digest: f.images["ci/app:"+tag].manifest})
	}
	if !reflect.DeepEqual(sum.Deleted.Tags, wantTags) {
		t.Errorf("deleted tags %v, want %v", sum.Deleted.Tags, wantTags)
	}
	if !reflect.DeepEqual(dry.Deleted, sum.Deleted) || !reflect.DeepEqual(dry.Retention, sum.Retention) || dry.BytesFreed != sum.BytesFreed {
		t.Errorf("the dry run reported other sets:\n dry %+v %+v\nreal %+v %+v", dry.Retention, dry.Deleted, sum.Retention, sum.Deleted)
	}
	if r := sum.Retention; r == nil || r.TagsDeleted != 3 || r.Repositories != 1 || r.Rules != 1 ||
		!reflect.DeepEqual(r.ByRepository, []gc.RepositoryTags{{Repository: "ci/app", TagsDeleted: 3}}) {
		t.Errorf("retention summary %+v", sum.Retention)
	}
	if !strings.Contains(stderr, "retentionRules=1") {
		t.Errorf("the log does not say the run applies a policy:\n%s", stderr)
	}

	drv, err := filesystem.New(filesystem.Parameters{RootDirectory: f.root})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(handlers.New(drv))
	t.Cleanup(srv.Close)
	get := func(repo, kind, ref string) ([]byte, int) {
		resp, err := http.Get(srv.URL + "/v2/" + repo + "/" + kind + "/" + ref)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return b, resp.StatusCode
	}
	for _, ref := range []string{"ci/app:b3", "ci/app:b4", "ci/app:v1.2.3", "prod/app:stable"} {
		repo, tag, _ := strings.Cut(ref, ":")
		img := f.images[ref]
		if got, status := get(repo, "manifests", tag); status != http.StatusOK || !bytes.Equal(got, img.content) {
			t.Errorf("kept %s: %d", ref, status)
		}
		for d, b := range img.blobs {
			if got, status := get(repo, "blobs", d.String()); status != http.StatusOK || !bytes.Equal(got, b) {
				t.Errorf("blob %s of kept %s: %d", d, ref, status)
			}
		}
	}
	onDisk := map[digest.Digest]bool{}
	if err := storage.New(drv).WalkBlobs(context.Background(), func(b storage.BlobInfo) error { onDisk[b.Digest] = true; return nil }); err != nil {
		t.Fatal(err)
	}
	for _, tag := range []string{"b0", "b1", "b2"} {
		img := f.images["ci/app:"+tag]
		if _, status := get("ci/app", "manifests", tag); status != http.StatusNotFound {
			t.Errorf("pruned tag %s answers %d", tag, status)
		}
		if _, status := get("ci/app", "manifests", img.manifest.String()); status != http.StatusNotFound {
			t.Errorf("the manifest of pruned tag %s answers %d", tag, status)
		}
		for d := range img.blobs {
			if shared := d == f.shared || d == f.b0; onDisk[d] != shared {
				t.Errorf("blob %s of pruned %s: on disk %v, shared %v", d, tag, onDisk[d], shared)
			}
		}
	}
	if sum.ManifestsDeleted != 3 || sum.BlobsDeleted != 3*2-1+3 || sum.BytesFreed <= 0 {
		// b0: config and manifest (its layer is prod's); b1, b2: config,
		// layer and manifest.
		t.Errorf("summary %+v", sum)
	}
}

// snapshot lists every file below root with its content.
func snapshot(t *testing.T, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if err != nil || fi.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		out[p] = string(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestGarbageCollectRefusesABadPolicy(t *testing.T) {
	tests := map[string]struct{ policy, want string }{
		"bad regular expression": {`{"rules":[{"repositories":["**"],"keepTags":["(v1"]}]}`, "--retention-policy " + "%s: rules[0].keepTags[0]: error parsing regexp: missing closing )"},
		"unknown key":            {`{"rules":[{"repositories":["**"],"keep":["v1"]}]}`, `unknown key "keep"`},
		"deletes every tag":      {`{"rules":[{"repositories":["**"]}]}`, "rules[0]: selects every tag and keeps none"},
		"bad duration":           {`{"rules":[{"repositories":["**"],"pruneTags":["x"],"keepPushedWithin":"14d"}]}`, "rules[0].keepPushedWithin: want a Go duration"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			f := newRetentionFixture(t)
			before := snapshot(t, f.root)
			tlog := withTerminationLog(t)
			policy := writePolicy(t, tc.policy)
			want := tc.want
			if strings.Contains(want, "%s") {
				want = fmt.Sprintf(want, policy)
			}
			code, sum, stderr := runGC(t, "--grace-period=0", "--retention-policy", policy, writeConfig(t, f.root, true))
			if code != 1 || !strings.Contains(stderr, want) || !strings.Contains(sum.Error, want) {
				t.Errorf("exit %d, error %q\nstderr %s\nwant %q", code, sum.Error, stderr, want)
			}
			if !reflect.DeepEqual(snapshot(t, f.root), before) {
				t.Errorf("a refused run changed the store")
			}
			if b, _ := os.ReadFile(tlog); !strings.Contains(string(b), "selects every tag") && !strings.Contains(string(b), "rules[0]") && !strings.Contains(string(b), "unknown key") {
				t.Errorf("termination log = %s", b)
			}
		})
	}
	t.Run("missing file", func(t *testing.T) {
		f := newRetentionFixture(t)
		withTerminationLog(t)
		code, _, stderr := runGC(t, "--retention-policy", filepath.Join(t.TempDir(), "none.json"), writeConfig(t, f.root, true))
		if code != 1 || !strings.Contains(stderr, "--retention-policy open") {
			t.Errorf("exit %d: %s", code, stderr)
		}
	})
}

// eventListener is a notifications endpoint on loopback.
type eventListener struct {
	*httptest.Server
	testutil.Collector[notifications.Event]
}

func newEventListener(t *testing.T) *eventListener {
	l := &eventListener{}
	l.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var env notifications.Envelope
		if r.Header.Get("Content-Type") != notifications.EventsMediaType || json.NewDecoder(r.Body).Decode(&env) != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		l.Add(env.Events...)
	}))
	t.Cleanup(l.Close)
	return l
}

// TestGarbageCollectRetentionEvents: every tag retention deletes reaches
// the configured endpoints as a delete event, before the command exits; a
// dry run sends nothing.
func TestGarbageCollectRetentionEvents(t *testing.T) {
	f := newRetentionFixture(t)
	l := newEventListener(t)
	cfg := filepath.Join(t.TempDir(), "config.yml")
	err := os.WriteFile(cfg, fmt.Appendf(nil, `version: 0.1
storage:
  filesystem:
    rootdirectory: %s
  maintenance:
    readonly:
      enabled: true
http:
  addr: :5000
notifications:
  endpoints:
    - name: audit
      url: %s
`, f.root, l.URL), 0o644)
	if err != nil {
		t.Fatal(err)
	}
	withTerminationLog(t)
	policy := writePolicy(t, keepTwoAndReleases)
	if code, _, stderr := runGC(t, "--dry-run", "--grace-period=0", "--retention-policy", policy, cfg); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if evs := l.Take(); len(evs) != 0 {
		t.Errorf("a dry run sent %d events", len(evs))
	}
	code, sum, stderr := runGC(t, "--grace-period=0", "--retention-policy", policy, cfg)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	// Delivered before the command returned.
	var tags []string
	host, _ := os.Hostname()
	for _, e := range l.Take() {
		if e.Action != notifications.ActionDelete || e.Target.Repository != "ci/app" || e.Target.Digest != "" ||
			e.Request.Method != http.MethodDelete || e.Source.Addr != host+":5000" || e.Source.InstanceID == "" {
			t.Errorf("event %+v", e)
		}
		tags = append(tags, e.Target.Tag)
	}
	slices.Sort(tags)
	if !slices.Equal(tags, []string{"b0", "b1", "b2"}) || sum.Retention.EventsDropped != 0 {
		t.Errorf("events for %v (%d dropped), want b0 b1 b2", tags, sum.Retention.EventsDropped)
	}
}

// TestTerminationMessageBounded: a run that deleted tags in many
// repositories with long names still fits the kubelet's 4096 bytes: the
// per-repository counts are cut, the rest counted as omitted, the total
// kept.
func TestTerminationMessageBounded(t *testing.T) {
	sum := &gc.Summary{Retention: &gc.RetentionSummary{Rules: 3, Repositories: 400, TagsDeleted: 4000},
		Deleted: &gc.Deleted{Tags: make([]gc.RepositoryTag, 4000)}}
	for i := range 400 {
		sum.Retention.ByRepository = append(sum.Retention.ByRepository,
			gc.RepositoryTags{Repository: fmt.Sprintf("team-%03d/%s", i, strings.Repeat("x", 200)), TagsDeleted: 10})
	}
	for i := range 60 {
		sum.Errors = append(sum.Errors, fmt.Sprintf("error %d: %s", i, strings.Repeat("e", 100)))
	}
	b, err := terminationMessage(sum)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) > maxTerminationMessage {
		t.Fatalf("%d bytes", len(b))
	}
	var short gc.Summary
	if err := json.Unmarshal(b, &short); err != nil {
		t.Fatal(err)
	}
	r := short.Retention
	if r.TagsDeleted != 4000 || len(r.ByRepository) == 0 || len(r.ByRepository)+r.RepositoriesOmitted != 400 || short.Deleted != nil || len(short.Errors) == 0 {
		t.Errorf("kept %d repositories, %d omitted, total %d", len(r.ByRepository), r.RepositoriesOmitted, r.TagsDeleted)
	}
	if len(sum.Retention.ByRepository) != 400 || len(sum.Errors) != 60 {
		t.Errorf("the summary itself was cut")
	}
	// What fits is not cut.
	small := &gc.Summary{Retention: &gc.RetentionSummary{TagsDeleted: 2, ByRepository: []gc.RepositoryTags{{Repository: "a", TagsDeleted: 2}}}}
	if b, _ := terminationMessage(small); !strings.Contains(string(b), `"byRepository":[{"repository":"a","tagsDeleted":2}]`) || strings.Contains(string(b), "Omitted") {
		t.Errorf("small summary: %s", b)
	}
}
