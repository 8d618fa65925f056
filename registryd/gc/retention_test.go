package gc_test

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
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
	"github.com/berth-dev/berth/registryd/retention"
	"github.com/berth-dev/berth/registryd/storage"
	"github.com/berth-dev/berth/registryd/storage/driver"
	"github.com/berth-dev/berth/registryd/storage/driver/filesystem"
)

// setPushed sets when tag of repo was last pushed, as the store says it
// (its current link's modification time).
func setPushed(t testing.TB, root, repo, tag string, at time.Time) {
	t.Helper()
	p := filepath.Join(root, filepath.FromSlash(storage.TagCurrentLinkPath(repo, tag)))
	if err := os.Chtimes(p, at, at); err != nil {
		t.Fatal(err)
	}
}

func mustPolicy(t testing.TB, rules ...retention.Rule) *retention.Compiled {
	t.Helper()
	p, err := retention.Policy{Rules: rules}.Compile()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func intp(n int) *int { return &n }

// recorder is a notifications.Sink that keeps what it is given.
type recorder struct {
	testutil.Collector[notifications.Event]
}

func (r *recorder) Write(e notifications.Event) { r.Add(e) }

// TestRetentionRandomStores applies policies to random stores (images,
// indexes, referrers, shared layers, deleted tags and manifests) whose tags
// have random push times: the tags the policy does not keep are gone, every
// other tag pulls byte for byte, and the store holds exactly what the kept
// tags (or, without delete-untagged, every manifest the deleted tags did
// not orphan) reach.
func TestRetentionRandomStores(t *testing.T) {
	now := time.Now().Truncate(time.Second)
	policy := mustPolicy(t,
		retention.Rule{Repositories: []string{"team/**"}, KeepTags: []string{"latest"}, KeepMostRecentlyPushed: intp(1)},
		retention.Rule{Repositories: []string{"repo0"}, PruneTags: []string{"t[0-3]", "signed"}, KeepPushedWithin: "40h"},
		// repo2 matches no rule.
	)
	seeds := []uint64{1, 2, 3, 4}
	if testing.Short() {
		seeds = seeds[:2]
	}
	for _, seed := range seeds {
		for _, untagged := range []bool{false, true} {
			t.Run(fmt.Sprintf("seed=%d/delete-untagged=%v", seed, untagged), func(t *testing.T) {
				t.Parallel()
				c, drv, root := newRegistryd(t)
				m := newModel(c, seed, 4, true)
				m.build(25)
				r := rand.New(rand.NewPCG(seed, 99))
				var wantDeleted []gc.RepositoryTag
				orphaned := map[string]map[digest.Digest]bool{}
				for _, repo := range m.repos {
					var tags []retention.Tag
					for _, tag := range sortedKeys(repo.tags) {
						at := now.Add(-time.Duration(r.IntN(100*60)) * time.Minute)
						setPushed(t, root, repo.name, tag, at)
						tags = append(tags, retention.Tag{Name: tag, Digest: repo.tags[tag], Pushed: at})
					}
					dec := policy.Apply(repo.name, tags, now)
					for _, del := range dec.Delete {
						wantDeleted = append(wantDeleted, gc.RepositoryTag{Repository: repo.name, Tag: del.Name, Digest: del.Digest})
						delete(repo.tags, del.Name)
					}
					for _, del := range dec.Delete {
						if !slices.Contains(slices.Collect(mapValues(repo.tags)), del.Digest) {
							if orphaned[repo.name] == nil {
								orphaned[repo.name] = map[digest.Digest]bool{}
							}
							orphaned[repo.name][del.Digest] = true
						}
					}
				}
				if len(wantDeleted) == 0 {
					t.Fatal("the policy deletes no tag of this store")
				}
				liveManifests, liveBlobs := m.liveAfterRetention(untagged, true, orphaned)

				sum, err := gc.Run(ctx, drv, gc.Options{DeleteUntagged: untagged, Retention: policy, Workers: 3, Now: func() time.Time { return now }})
				if err != nil {
					t.Fatalf("Run: %v (%+v)", err, sum)
				}
				if !reflect.DeepEqual(sum.Deleted.Tags, wantDeleted) {
					t.Errorf("deleted tags\n got %v\nwant %v", sum.Deleted.Tags, wantDeleted)
				}
				if sum.Retention == nil || sum.Retention.TagsDeleted != len(wantDeleted) || sum.Retention.Rules != 2 {
					t.Errorf("retention summary = %+v", sum.Retention)
				}
				for _, del := range wantDeleted {
					if _, status := c.get("manifests", del.Repository, del.Tag); status != http.StatusNotFound {
						t.Errorf("deleted tag %s:%s answers %d", del.Repository, del.Tag, status)
					}
				}
				checkStore(t, m, drv, liveManifests, liveBlobs)

				again, err := gc.Run(ctx, drv, gc.Options{DeleteUntagged: untagged, Retention: policy, Now: func() time.Time { return now }})
				if err != nil {
					t.Fatal(err)
				}
				if again.Retention.TagsDeleted+again.ManifestsDeleted+again.BlobsDeleted+again.LayerLinksDeleted != 0 {
					t.Errorf("second run deleted more: %+v %+v", again, again.Retention)
				}
			})
		}
	}
}

func mapValues[K comparable, V any](m map[K]V) func(func(V) bool) {
	return func(yield func(V) bool) {
		for _, v := range m {
			if !yield(v) {
				return
			}
		}
	}
}

// retentionStore is a store built for one policy, with what it must keep
// and free.
type retentionStore struct {
	c    *client
	root string
	// images by tag (ci/app unless said otherwise).
	images map[string]pushed
	// blobs: shared is in every ci image and in prod/app; u0 is build-0's
	// only layer of its own, and also a layer of prod/app.
	shared, u0 digest.Digest
	// signature is an untagged referrer of build-0; loose an untagged
	// image pushed by digest.
	signature, loose pushed
	// pushedAt says when each repository:tag was pushed.
	pushedAt map[string]time.Time
}

// setPushTimes gives the tags of the store below root (the store or a copy
// of it, which copyStore does not give the times of the files) their push
// times.
func (s *retentionStore) setPushTimes(t testing.TB, root string) {
	t.Helper()
	for ref, at := range s.pushedAt {
		repo, tag, _ := strings.Cut(ref, ":")
		setPushed(t, root, repo, tag, at)
	}
}

type pushed struct {
	repo    string
	digest  digest.Digest
	content []byte
	blobs   map[digest.Digest][]byte
}

// newRetentionStore pushes, to ci/app: build-0 .. build-4 (pushed 6h ..
// 2h ago), latest (30 minutes ago, on build-4's image), v1.0.0 (100h ago)
// and old-alias (200h ago, on v1.0.0's image); a signature of build-0 and
// an image pushed by digest only. To prod/app: stable, sharing two layers
// with build-0. To other: a tag no rule touches.
func newRetentionStore(t *testing.T) *retentionStore {
	t.Helper()
	c, _, root := newRegistryd(t)
	s := &retentionStore{c: c, root: root, images: map[string]pushed{}, pushedAt: map[string]time.Time{}}
	sharedLayer := []byte("a layer every image has")
	u0 := []byte("build-0's layer, also in prod/app")
	s.shared, s.u0 = digest.FromBytes(sharedLayer), digest.FromBytes(u0)
	push := func(repo, tag string, blobs ...[]byte) pushed {
		d, content := image(c, repo, tag, blobs...)
		p := pushed{repo: repo, digest: d, content: content, blobs: map[digest.Digest][]byte{}}
		for _, b := range blobs {
			p.blobs[digest.FromBytes(b)] = b
		}
		return p
	}
	now := time.Now()
	for i := range 5 {
		layer := []byte(fmt.Sprintf("build-%d's own layer", i))
		if i == 0 {
			layer = u0
		}
		tag := fmt.Sprintf("build-%d", i)
		s.images[tag] = push("ci/app", tag, []byte(fmt.Sprintf(`{"build":%d}`, i)), layer, sharedLayer)
		s.pushedAt["ci/app:"+tag] = now.Add(-time.Duration(6-i) * time.Hour)
	}
	s.images["latest"] = push("ci/app", "latest", []byte(`{"build":4}`), []byte("build-4's own layer"), sharedLayer)
	s.pushedAt["ci/app:latest"] = now.Add(-30 * time.Minute)
	s.images["v1.0.0"] = push("ci/app", "v1.0.0", []byte(`{"release":"1.0.0"}`), []byte("release layer"), sharedLayer)
	s.pushedAt["ci/app:v1.0.0"] = now.Add(-100 * time.Hour)
	s.images["old-alias"] = push("ci/app", "old-alias", []byte(`{"release":"1.0.0"}`), []byte("release layer"), sharedLayer)
	s.pushedAt["ci/app:old-alias"] = now.Add(-200 * time.Hour)

	b0 := s.images["build-0"]
	sigCfg, sigLayer := []byte(`{"signature":"of build-0"}`), []byte("signature bytes")
	sig := manifestJSON{SchemaVersion: 2, MediaType: mtOCIManifest, ArtifactType: "application/vnd.example.signature",
		Config:  &desc{MediaType: "application/vnd.example.config+json", Digest: c.putBlob("ci/app", sigCfg), Size: int64(len(sigCfg))},
		Layers:  []desc{{MediaType: "application/vnd.example.signature", Digest: c.putBlob("ci/app", sigLayer), Size: int64(len(sigLayer))}},
		Subject: &desc{MediaType: mtOCIManifest, Digest: b0.digest, Size: int64(len(b0.content))}}
	sigDigest, content := putJSON(c, "ci/app", "", sig)
	s.signature = pushed{repo: "ci/app", digest: sigDigest, content: content,
		blobs: map[digest.Digest][]byte{digest.FromBytes(sigCfg): sigCfg, digest.FromBytes(sigLayer): sigLayer}}
	s.loose = push("ci/app", "", []byte(`{"loose":true}`), []byte("a layer pushed by digest"))

	s.images["prod/app:stable"] = push("prod/app", "stable", []byte(`{"prod":1}`), u0, sharedLayer)
	s.images["other:any"] = push("other", "any", []byte(`{"other":1}`), []byte("other layer"))
	s.pushedAt["other:any"] = now.Add(-1000 * time.Hour)
	s.pushedAt["prod/app:stable"] = now.Add(-1000 * time.Hour)
	s.setPushTimes(t, root)
	return s
}

// ciPolicy keeps every semver tag and the two most recently pushed others
// in ci/**, and says nothing of other repositories.
func ciPolicy(t testing.TB) *retention.Compiled {
	return mustPolicy(t, retention.Rule{Repositories: []string{"ci/**"},
		KeepTags: []string{`v?[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]+)?`}, KeepMostRecentlyPushed: intp(2)})
}

// TestRetentionOnAStore: the tags the policy keeps pull byte for byte, the
// others are gone, the manifests only they named are deleted with their
// unshared blobs, blobs another kept image uses stay, a repository no rule
// matches is untouched, and a dry run deletes nothing and reports exactly
// what the real run deletes.
func TestRetentionOnAStore(t *testing.T) {
	for _, untagged := range []bool{false, true} {
		t.Run(fmt.Sprintf("delete-untagged=%v", untagged), func(t *testing.T) {
			s := newRetentionStore(t)
			before := files(t, s.root)
			dryDrv, dryRoot := copyStore(t, s.root)
			s.setPushTimes(t, dryRoot)
			opts := gc.Options{DeleteUntagged: untagged, Retention: ciPolicy(t)}

			dryOpts := opts
			dryOpts.DryRun = true
			dryEvents := &recorder{}
			dryOpts.Events = dryEvents
			dry, err := gc.Run(ctx, dryDrv, dryOpts)
			if err != nil {
				t.Fatal(err)
			}
			if after := files(t, dryRoot); !reflect.DeepEqual(after, before) {
				t.Errorf("the dry run changed the store")
			}
			if evs := dryEvents.Take(); len(evs) != 0 {
				t.Errorf("the dry run emitted %d events", len(evs))
			}

			realDrv, realRoot := copyStore(t, s.root)
			s.setPushTimes(t, realRoot)
			c := serve(t, realDrv)
			events := &recorder{}
			opts.Events = events
			sum, err := gc.Run(ctx, realDrv, opts)
			if err != nil {
				t.Fatal(err)
			}

			wantTags := []gc.RepositoryTag{}
			for _, tag := range []string{"build-0", "build-1", "build-2", "build-3", "old-alias"} {
				wantTags = append(wantTags, gc.RepositoryTag{Repository: "ci/app", Tag: tag, Digest: s.images[tag].digest})
			}
			if !reflect.DeepEqual(sum.Deleted.Tags, wantTags) {
				t.Errorf("deleted tags %v\nwant %v", sum.Deleted.Tags, wantTags)
			}
			wantRetention := &gc.RetentionSummary{Rules: 1, Repositories: 1, TagsDeleted: 5,
				ByRepository: []gc.RepositoryTags{{Repository: "ci/app", TagsDeleted: 5}}}
			if !reflect.DeepEqual(sum.Retention, wantRetention) {
				t.Errorf("retention summary %+v, want %+v", sum.Retention, wantRetention)
			}
			if !reflect.DeepEqual(dry.Deleted, sum.Deleted) || !reflect.DeepEqual(dry.Retention, sum.Retention) ||
				dry.BytesFreed != sum.BytesFreed || dry.ManifestsDeleted != sum.ManifestsDeleted || dry.BlobsDeleted != sum.BlobsDeleted {
				t.Errorf("dry run and real run differ\n dry %+v %+v\nreal %+v %+v", dry, dry.Deleted, sum, sum.Deleted)
			}

			// The kept tags pull byte for byte, with their blobs.
			for _, tag := range []string{"build-4", "latest", "v1.0.0", "prod/app:stable", "other:any"} {
				img := s.images[tag]
				ref := tag
				if img.repo != "ci/app" {
					ref = tag[len(img.repo)+1:]
				}
				if got, status := c.get("manifests", img.repo, ref); status != http.StatusOK || !bytes.Equal(got, img.content) {
					t.Errorf("kept %s: status %d", tag, status)
				}
				for d, b := range img.blobs {
					if got, status := c.get("blobs", img.repo, d.String()); status != http.StatusOK || !bytes.Equal(got, b) {
						t.Errorf("blob %s of kept %s: status %d", d, tag, status)
					}
				}
			}
			// The deleted tags are gone, and the manifests only they named,
			// with their unshared blobs.
			for _, tag := range []string{"build-0", "build-1", "build-2", "build-3", "old-alias"} {
				if _, status := c.get("manifests", "ci/app", tag); status != http.StatusNotFound {
					t.Errorf("deleted tag %s answers %d", tag, status)
				}
			}
			onDisk := map[digest.Digest]bool{}
			st := storage.New(realDrv)
			if err := st.WalkBlobs(ctx, func(b storage.BlobInfo) error { onDisk[b.Digest] = true; return nil }); err != nil {
				t.Fatal(err)
			}
			for i := range 4 {
				img := s.images[fmt.Sprintf("build-%d", i)]
				if _, status := c.get("manifests", "ci/app", img.digest.String()); status != http.StatusNotFound {
					t.Errorf("build-%d's manifest answers %d", i, status)
				}
				for d := range img.blobs {
					if d != s.shared && d != s.u0 && onDisk[d] {
						t.Errorf("build-%d's unshared blob %s survived", i, d)
					}
				}
			}
			// Shared blobs stay.
			if !onDisk[s.shared] || !onDisk[s.u0] {
				t.Errorf("a shared blob was swept: shared %v, u0 %v", onDisk[s.shared], onDisk[s.u0])
			}
			// build-0's signature goes with it; the image pushed by digest
			// stays unless the run deletes untagged manifests.
			if _, status := c.get("manifests", "ci/app", s.signature.digest.String()); status != http.StatusNotFound {
				t.Errorf("the signature of a deleted image answers %d", status)
			}
			_, status := c.get("manifests", "ci/app", s.loose.digest.String())
			if want := map[bool]int{false: http.StatusOK, true: http.StatusNotFound}[untagged]; status != want {
				t.Errorf("the untagged image answers %d, want %d", status, want)
			}
			if sum.BytesFreed <= 0 {
				t.Errorf("no bytes freed: %+v", sum)
			}

			// One delete event per deleted tag, shaped as the event of a
			// client's DELETE of a tag.
			client := clientTagDeleteEvent(t, realRoot)
			if want := (notifications.Target{Repository: "ci/app", Tag: "build-4"}); client.Action != notifications.ActionDelete || !reflect.DeepEqual(client.Target, want) {
				t.Fatalf("a client's DELETE of a tag emits %+v", client)
			}
			var gotTags []string
			for _, e := range events.Take() {
				if e.Action != client.Action || !reflect.DeepEqual(e.Target, notifications.Target{Repository: "ci/app", Tag: e.Target.Tag}) ||
					e.Request.Method != client.Request.Method || e.Request.UserAgent != gc.EventUserAgent || e.ID == "" || e.Timestamp.IsZero() {
					t.Errorf("event %+v", e)
				}
				gotTags = append(gotTags, e.Target.Tag)
			}
			slices.Sort(gotTags)
			if want := []string{"build-0", "build-1", "build-2", "build-3", "old-alias"}; !slices.Equal(gotTags, want) {
				t.Errorf("events for tags %v, want %v", gotTags, want)
			}
		})
	}
}

// clientTagDeleteEvent deletes tag build-4 of ci/app through the API of a
// registry on a copy of the store below root, and returns the event it
// emits.
func clientTagDeleteEvent(t *testing.T, root string) notifications.Event {
	t.Helper()
	drv, _ := copyStore(t, root)
	rec := &recorder{}
	srv := httptest.NewServer(handlers.New(drv, handlers.WithDeleteEnabled(true), handlers.WithEventSink(rec, handlers.EventOptions{})))
	t.Cleanup(srv.Close)
	(&client{t: t, base: srv.URL}).deleteManifest("ci/app", "build-4")
	evs := rec.Take()
	if len(evs) != 1 {
		t.Fatalf("a client's DELETE emitted %d events", len(evs))
	}
	return evs[0]
}

// TestRetentionSafety: a tag that cannot be deleted stops the run before
// any manifest or blob (they are what that tag reaches); a deadline
// already reached deletes no tag; the grace period keeps the content of a
// young tag retention deletes; the last-tag guard keeps a repository's
// newest tag.
func TestRetentionSafety(t *testing.T) {
	t.Run("a tag deletion fails", func(t *testing.T) {
		s := newRetentionStore(t)
		drv, root := copyStore(t, s.root)
		s.setPushTimes(t, root)
		before := files(t, root)
		broken := &breakingDriver{StorageDriver: drv, match: "/_manifests/tags/build-1", remaining: 1}
		sum, err := gc.Run(ctx, broken, gc.Options{Retention: ciPolicy(t)})
		if !errors.Is(err, gc.ErrPartial) || !strings.Contains(err.Error(), "1 tags could not be deleted, so no blob was deleted") {
			t.Fatalf("err = %v", err)
		}
		// The other tags went, each with the revision only it named (and
		// build-0's signature).
		if sum.Retention.TagsDeleted != 4 || sum.ManifestsDeleted != 4 || sum.BlobsDeleted+sum.LayerLinksDeleted != 0 || sum.ErrorCount != 1 {
			t.Errorf("summary %+v %+v", sum, sum.Retention)
		}
		after := files(t, root)
		for rel := range before {
			if _, ok := after[rel]; !ok && !strings.Contains(rel, "/_manifests/") {
				t.Errorf("%s was deleted", rel)
			}
		}
		c := serve(t, drv)
		img := s.images["build-1"]
		if got, status := c.get("manifests", "ci/app", "build-1"); status != http.StatusOK || !bytes.Equal(got, img.content) {
			t.Errorf("the tag that could not be deleted answers %d", status)
		}
		for d, b := range img.blobs {
			if got, status := c.get("blobs", "ci/app", d.String()); status != http.StatusOK || !bytes.Equal(got, b) {
				t.Errorf("blob %s of the tag that could not be deleted answers %d", d, status)
			}
		}
		// A re-run finishes the job: the store is then what one clean run
		// leaves.
		again, err := gc.Run(ctx, drv, gc.Options{Retention: ciPolicy(t)})
		if err != nil || again.Retention.TagsDeleted != 1 || again.ManifestsDeleted != 1 {
			t.Errorf("re-run: %v %+v %+v", err, again, again.Retention)
		}
		cleanDrv, cleanRoot := copyStore(t, s.root)
		s.setPushTimes(t, cleanRoot)
		if _, err := gc.Run(ctx, cleanDrv, gc.Options{Retention: ciPolicy(t)}); err != nil {
			t.Fatal(err)
		}
		if got, want := files(t, root), files(t, cleanRoot); !reflect.DeepEqual(got, want) {
			t.Errorf("after the re-run the store differs from a clean run's: %d files vs %d", len(got), len(want))
		}
	})
	t.Run("deadline reached", func(t *testing.T) {
		s := newRetentionStore(t)
		before := files(t, s.root)
		drv := mustDriver(t, s.root)
		sum, err := gc.Run(ctx, drv, gc.Options{Retention: ciPolicy(t), Deadline: time.Now().Add(-time.Second)})
		if !errors.Is(err, gc.ErrDeadline) || sum.Retention.TagsDeleted != 0 {
			t.Fatalf("err = %v, %+v", err, sum.Retention)
		}
		if after := files(t, s.root); !reflect.DeepEqual(after, before) {
			t.Errorf("a run past its deadline changed the store")
		}
	})
	t.Run("grace period keeps the content of young tags", func(t *testing.T) {
		s := newRetentionStore(t)
		drv := mustDriver(t, s.root)
		// Every file is as young as the test; the grace period covers it.
		sum, err := gc.Run(ctx, drv, gc.Options{Retention: ciPolicy(t), GracePeriod: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		// build-0 .. build-3 and build-0's signature are kept as young.
		if sum.Retention.TagsDeleted != 5 || sum.ManifestsDeleted != 0 || sum.BlobsDeleted != 0 || sum.ManifestsKeptYoung != 5 {
			t.Errorf("summary %+v %+v", sum, sum.Retention)
		}
		for i := range 4 {
			img := s.images[fmt.Sprintf("build-%d", i)]
			if _, status := s.c.get("manifests", "ci/app", fmt.Sprintf("build-%d", i)); status != http.StatusNotFound {
				t.Errorf("young tag build-%d kept: %d", i, status)
			}
			if got, status := s.c.get("manifests", "ci/app", img.digest.String()); status != http.StatusOK || !bytes.Equal(got, img.content) {
				t.Errorf("the young manifest of build-%d answers %d", i, status)
			}
		}
	})
	t.Run("last-tag guard", func(t *testing.T) {
		s := newRetentionStore(t)
		drv := mustDriver(t, s.root)
		policy := mustPolicy(t, retention.Rule{Repositories: []string{"other", "prod/*"}, PruneTags: []string{".*"}})
		sum, err := gc.Run(ctx, drv, gc.Options{Retention: policy})
		if err != nil {
			t.Fatal(err)
		}
		want := &gc.RetentionSummary{Rules: 1, Repositories: 2, TagsKeptByLastTagGuard: 2}
		if !reflect.DeepEqual(sum.Retention, want) || sum.ManifestsDeleted+sum.BlobsDeleted != 0 {
			t.Errorf("summary %+v %+v, want %+v", sum, sum.Retention, want)
		}
		deleteAll := mustPolicy(t, retention.Rule{Repositories: []string{"other"}, PruneTags: []string{".*"}, DeleteLastTag: true})
		sum, err = gc.Run(ctx, drv, gc.Options{Retention: deleteAll})
		if err != nil || sum.Retention.TagsDeleted != 1 || sum.ManifestsDeleted != 1 {
			t.Errorf("deleteLastTag: %v %+v %+v", err, sum, sum.Retention)
		}
		if _, status := s.c.get("manifests", "other", "any"); status != http.StatusNotFound {
			t.Errorf("other:any answers %d", status)
		}
	})
}

// mustDriver opens a filesystem driver on the store below root.
func mustDriver(t testing.TB, root string) driver.StorageDriver {
	t.Helper()
	drv, err := filesystem.New(filesystem.Parameters{RootDirectory: root})
	if err != nil {
		t.Fatal(err)
	}
	return drv
}
