package gc_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/berth-dev/berth/registryd/gc"
	"github.com/berth-dev/berth/registryd/storage"
	"github.com/berth-dev/berth/registryd/storage/driver"
	"github.com/berth-dev/berth/registryd/storage/driver/filesystem"
	"github.com/berth-dev/berth/registryd/storage/driver/inmemory"
)

// agingStore is a store whose content can be written "long ago" and then
// "recently", through the registry API, on a real driver.
type agingStore struct {
	drv driver.StorageDriver
	c   *client
	// now is the collector's clock.
	now func() time.Time
	// recent switches from writing old content to writing young content.
	recent func()
	// snapshot describes every stored object, to prove a run changed
	// nothing.
	snapshot func() map[string]string
}

// inmemoryAging writes through an inmemory driver whose clock is moved:
// old content two hours before the collection, young content ten minutes
// before it.
func inmemoryAging(t *testing.T) *agingStore {
	base := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	clock := base.Add(-2 * time.Hour)
	drv := inmemory.New(inmemory.WithClock(func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }))
	return &agingStore{
		drv: drv,
		c:   serve(t, drv),
		now: func() time.Time { return base },
		recent: func() {
			mu.Lock()
			clock = base.Add(-10 * time.Minute)
			mu.Unlock()
		},
		snapshot: func() map[string]string { return driverFiles(t, drv) },
	}
}

// filesystemAging writes through a filesystem driver; the old content's
// files get a modification time two hours in the past (what the kernel
// would report for content written then), young content keeps the real
// time.
func filesystemAging(t *testing.T) *agingStore {
	root := tempDir(t)
	drv, err := filesystem.New(filesystem.Parameters{RootDirectory: root})
	if err != nil {
		t.Fatal(err)
	}
	return &agingStore{
		drv: drv,
		c:   serve(t, drv),
		now: time.Now,
		recent: func() {
			old := time.Now().Add(-2 * time.Hour)
			err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
				if err != nil || d.IsDir() {
					return err
				}
				return os.Chtimes(p, old, old)
			})
			if err != nil {
				t.Fatal(err)
			}
		},
		snapshot: func() map[string]string { return files(t, root) },
	}
}

// driverFiles lists every file of drv with its content and time.
func driverFiles(t *testing.T, drv driver.StorageDriver) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := drv.Walk(ctx, "/", func(fi driver.FileInfo) error {
		if fi.IsDir() {
			return nil
		}
		b, err := drv.GetContent(ctx, fi.Path())
		if err != nil {
			return err
		}
		out[fi.Path()] = fi.ModTime().String() + " " + string(b)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// image pushes an OCI image of the given blobs (first the config) to
// repo, tagged when tag is set, and returns its digest and content.
func image(c *client, repo, tag string, blobs ...[]byte) (digest.Digest, []byte) {
	mj := manifestJSON{SchemaVersion: 2, MediaType: mtOCIManifest}
	for i, b := range blobs {
		d := desc{MediaType: "application/vnd.oci.image.layer.v1.tar", Digest: c.putBlob(repo, b), Size: int64(len(b))}
		if i == 0 {
			d.MediaType = "application/vnd.oci.image.config.v1+json"
			mj.Config = &d
			continue
		}
		mj.Layers = append(mj.Layers, d)
	}
	return putJSON(c, repo, tag, mj)
}

func putJSON(c *client, repo, tag string, mj manifestJSON) (digest.Digest, []byte) {
	content, err := json.Marshal(mj)
	if err != nil {
		c.t.Fatal(err)
	}
	d := digest.FromBytes(content)
	ref := d.String()
	if tag != "" {
		ref = tag
	}
	c.putManifest(repo, ref, mj.MediaType, content)
	return d, content
}

// graceStore is what the grace-period tests push, and what they expect.
type graceStore struct {
	tagged, oldUntagged, youngUntagged, youngIndex, oldChild digest.Digest
	manifests                                                map[digest.Digest][]byte
	oldStray, oldCfg, youngStray, youngCfg, sharedLayer      digest.Digest
	childCfg, reclaimed                                      digest.Digest
	blobs                                                    map[digest.Digest][]byte
}

// pushGraceStore writes, long ago: a tagged image; an untagged image
// (config oldCfg, layer sharedLayer); an untagged image oldChild; a stray
// blob; a blob reclaimed that nothing references. Then, recently: a stray
// blob; an untagged image whose layer is sharedLayer; an untagged index
// whose child is oldChild; and the reclaimed blob uploaded again to
// another repository (its content already stored, so only the _layers
// link is new).
func pushGraceStore(t *testing.T, s *agingStore) *graceStore {
	c := s.c
	g := &graceStore{manifests: map[digest.Digest][]byte{}, blobs: map[digest.Digest][]byte{}}
	blob := func(b []byte) []byte { g.blobs[digest.FromBytes(b)] = b; return b }
	var content []byte
	g.tagged, content = image(c, "app", "v1", blob([]byte(`{"tagged":1}`)), blob([]byte("tagged layer")))
	g.manifests[g.tagged] = content
	oldCfg, shared := blob([]byte(`{"old":1}`)), blob([]byte("layer shared by old and young"))
	g.oldUntagged, _ = image(c, "app", "", oldCfg, shared)
	g.oldCfg, g.sharedLayer = digest.FromBytes(oldCfg), digest.FromBytes(shared)
	childCfg := blob([]byte(`{"child":1}`))
	g.oldChild, content = image(c, "app", "", childCfg, blob([]byte("child layer")))
	g.manifests[g.oldChild] = content
	g.childCfg = digest.FromBytes(childCfg)
	g.oldStray = c.putBlob("app", blob([]byte("old stray upload")))
	g.reclaimed = c.putBlob("app", blob([]byte("reclaimed by a new upload")))
	c.deleteBlob("app", g.reclaimed)

	s.recent()
	g.youngStray = c.putBlob("app", blob([]byte("young stray upload")))
	youngCfg := blob([]byte(`{"young":1}`))
	g.youngUntagged, content = image(c, "app", "", youngCfg, shared)
	g.manifests[g.youngUntagged] = content
	g.youngCfg = digest.FromBytes(youngCfg)
	g.youngIndex, content = putJSON(c, "app", "", manifestJSON{SchemaVersion: 2, MediaType: mtOCIIndex,
		Manifests: []desc{{MediaType: mtOCIManifest, Digest: g.oldChild, Size: int64(len(g.manifests[g.oldChild]))}}})
	g.manifests[g.youngIndex] = content
	c.putBlob("other", g.blobs[g.reclaimed])
	return g
}

func (c *client) deleteBlob(repo string, d digest.Digest) {
	c.t.Helper()
	resp := c.do(http.MethodDelete, c.base+"/v2/"+repo+"/blobs/"+d.String(), "", nil, http.StatusAccepted)
	resp.Body.Close()
}

// TestGracePeriodKeepsYoungContent runs the collector with a one-hour
// grace period on the filesystem and inmemory drivers: old garbage goes,
// young unreferenced blobs and young untagged manifests stay with
// everything they reference, a dry run names exactly what the real run
// deletes, and the kept counts are what a run without a grace period
// would have deleted in addition.
func TestGracePeriodKeepsYoungContent(t *testing.T) {
	drivers := map[string]func(*testing.T) *agingStore{"inmemory": inmemoryAging, "filesystem": filesystemAging}
	for name, mk := range drivers {
		for _, untagged := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s/delete-untagged=%v", name, untagged), func(t *testing.T) {
				s := mk(t)
				g := pushGraceStore(t, s)
				opts := func(dry bool, grace time.Duration) gc.Options {
					return gc.Options{DryRun: dry, DeleteUntagged: untagged, GracePeriod: grace, Now: s.now}
				}
				before := s.snapshot()
				without, err := gc.Run(ctx, s.drv, opts(true, 0))
				if err != nil {
					t.Fatal(err)
				}
				dry, err := gc.Run(ctx, s.drv, opts(true, time.Hour))
				if err != nil {
					t.Fatal(err)
				}
				if after := s.snapshot(); !reflect.DeepEqual(after, before) {
					t.Fatal("a dry run changed the store")
				}
				sum, err := gc.Run(ctx, s.drv, opts(false, time.Hour))
				if err != nil {
					t.Fatal(err)
				}
				if !reflect.DeepEqual(dry.Deleted, sum.Deleted) || dry.BlobsKeptYoung != sum.BlobsKeptYoung || dry.ManifestsKeptYoung != sum.ManifestsKeptYoung {
					t.Errorf("dry run and real run differ\n dry %+v %+v\nreal %+v %+v", dry, dry.Deleted, sum, sum.Deleted)
				}

				wantManifests := []gc.RepositoryDigest{}
				wantBlobs := []digest.Digest{g.oldStray}
				if untagged {
					wantManifests = []gc.RepositoryDigest{{Repository: "app", Digest: g.oldUntagged}}
					wantBlobs = append(wantBlobs, g.oldUntagged, g.oldCfg)
				}
				slices.Sort(wantBlobs)
				var gotBlobs []digest.Digest
				for _, b := range sum.Deleted.Blobs {
					gotBlobs = append(gotBlobs, b.Digest)
				}
				if !slices.Equal(gotBlobs, wantBlobs) {
					t.Errorf("deleted blobs %v, want %v", gotBlobs, wantBlobs)
				}
				if !reflect.DeepEqual(sum.Deleted.Manifests, wantManifests) {
					t.Errorf("deleted manifests %v, want %v", sum.Deleted.Manifests, wantManifests)
				}
				if sum.GracePeriodSeconds != 3600 || without.GracePeriodSeconds != 0 {
					t.Errorf("gracePeriodSeconds = %v and %v", sum.GracePeriodSeconds, without.GracePeriodSeconds)
				}
				// Without a grace period the young garbage goes too.
				if got, want := without.BlobsDeleted-sum.BlobsDeleted, sum.BlobsKeptYoung; got != want || want == 0 {
					t.Errorf("blobsKeptYoung = %d; a run without a grace period deletes %d more", want, got)
				}
				if got, want := without.ManifestsDeleted-sum.ManifestsDeleted, sum.ManifestsKeptYoung; got != want {
					t.Errorf("manifestsKeptYoung = %d; a run without a grace period deletes %d more", want, got)
				}
				if untagged && sum.ManifestsKeptYoung != 3 {
					t.Errorf("manifestsKeptYoung = %d, want 3 (the young image, the young index and its old child)", sum.ManifestsKeptYoung)
				}

				// What was kept is served, byte for byte.
				for d, content := range g.manifests {
					if got, status := s.c.get("manifests", "app", d.String()); status != http.StatusOK || string(got) != string(content) {
						t.Errorf("manifest %s: status %d", d, status)
					}
				}
				for _, d := range []digest.Digest{g.youngStray, g.youngCfg, g.sharedLayer, g.childCfg} {
					if got, status := s.c.get("blobs", "app", d.String()); status != http.StatusOK || string(got) != string(g.blobs[d]) {
						t.Errorf("blob %s: status %d", d, status)
					}
				}
				if got, status := s.c.get("blobs", "other", g.reclaimed.String()); status != http.StatusOK || string(got) != string(g.blobs[g.reclaimed]) {
					t.Errorf("the blob uploaded again recently: status %d", status)
				}
				if _, status := s.c.get("blobs", "app", g.oldStray.String()); status != http.StatusNotFound {
					t.Errorf("the old stray blob: status %d, want 404", status)
				}

				// A second run keeps the same; a run without a grace period
				// then deletes exactly what the first one said it kept.
				again, err := gc.Run(ctx, s.drv, opts(false, time.Hour))
				if err != nil {
					t.Fatal(err)
				}
				if again.BlobsDeleted+again.ManifestsDeleted+again.LayerLinksDeleted != 0 || again.BlobsKeptYoung != sum.BlobsKeptYoung {
					t.Errorf("second run: %+v", again)
				}
				last, err := gc.Run(ctx, s.drv, opts(false, 0))
				if err != nil {
					t.Fatal(err)
				}
				if last.BlobsDeleted != sum.BlobsKeptYoung || last.ManifestsDeleted != sum.ManifestsKeptYoung || last.BlobsKeptYoung != 0 {
					t.Errorf("without a grace period afterwards: %+v, want %d blobs and %d manifests", last, sum.BlobsKeptYoung, sum.ManifestsKeptYoung)
				}
			})
		}
	}
}

// countingDriver counts the Deletes it passes on.
type countingDriver struct {
	driver.StorageDriver
	deletes atomic.Int64
}

func (d *countingDriver) Delete(ctx context.Context, p string) error {
	d.deletes.Add(1)
	return d.StorageDriver.Delete(ctx, p)
}

// TestDeadlineStopsDeletions moves the collector's clock to its deadline
// after a given number of deletions: no deletion starts after it, the run
// fails with ErrDeadline and the summary counts what was done. Reached
// while marking, nothing is deleted.
func TestDeadlineStopsDeletions(t *testing.T) {
	base := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	deadline := base.Add(time.Minute)
	tests := map[string]struct {
		after    int64 // deletions before the clock reaches the deadline
		wantLeft int
		wantMsg  string
	}{
		"while marking":  {after: -1, wantLeft: 10, wantMsg: "deadline reached while marking: nothing was deleted"},
		"while sweeping": {after: 3, wantLeft: 7, wantMsg: "deadline reached while deleting blobs"},
		"never":          {after: 1000, wantLeft: 0},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			drv := &countingDriver{StorageDriver: inmemory.New()}
			s := storage.New(drv)
			// A tagged (empty) index, so that there is a repository to mark.
			index := []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}`)
			if err := s.PutManifest(ctx, "app", digest.FromBytes(index), index); err != nil {
				t.Fatal(err)
			}
			if err := s.Tag(ctx, "app", "v1", digest.FromBytes(index)); err != nil {
				t.Fatal(err)
			}
			for i := range 10 {
				b := fmt.Appendf(nil, "stray %d", i)
				if _, err := s.PutBlob(ctx, "app", digest.FromBytes(b), b); err != nil {
					t.Fatal(err)
				}
			}
			now := func() time.Time {
				if tc.after < 0 || drv.deletes.Load() >= tc.after {
					return deadline
				}
				return base
			}
			sum, err := gc.Run(ctx, drv, gc.Options{Workers: 1, Deadline: deadline, Now: now})
			left := -1 // the live index
			if err := s.WalkBlobs(ctx, func(storage.BlobInfo) error { left++; return nil }); err != nil {
				t.Fatal(err)
			}
			if left != tc.wantLeft || sum.BlobsDeleted != 10-tc.wantLeft || int64(sum.BlobsDeleted+sum.LayerLinksDeleted) != drv.deletes.Load() {
				t.Errorf("%d blobs left, %d reported deleted, %d Deletes; want %d left", left, sum.BlobsDeleted, drv.deletes.Load(), tc.wantLeft)
			}
			if tc.wantMsg == "" {
				if err != nil {
					t.Fatalf("Run: %v", err)
				}
				return
			}
			if !errors.Is(err, gc.ErrDeadline) || !strings.Contains(err.Error(), tc.wantMsg) || sum.Error != err.Error() {
				t.Errorf("Run = %v (summary error %q), want ErrDeadline %q", err, sum.Error, tc.wantMsg)
			}
			if sum.ErrorCount != 0 {
				t.Errorf("deletions not started were counted as failures: %+v", sum.Errors)
			}
		})
	}
}

// TestYoungUndecodableManifest: an untagged revision whose content is not
// a manifest stops no run. Young, it is kept (with a warning) and the run
// goes on; once old, it is garbage like any other.
func TestYoungUndecodableManifest(t *testing.T) {
	base := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	drv := inmemory.New(inmemory.WithClock(func() time.Time { return base.Add(-time.Minute) }))
	bad := []byte("half a manifest {")
	d := digest.FromBytes(bad)
	put(t, drv, storage.BlobDataPath(d), bad)
	put(t, drv, storage.RevisionLinkPath("app", d), []byte(d))
	var logs strings.Builder
	opts := gc.Options{DeleteUntagged: true, GracePeriod: time.Hour, Now: func() time.Time { return base },
		Logger: slog.New(slog.NewTextHandler(&logs, nil))}
	sum, err := gc.Run(ctx, drv, opts)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if sum.ManifestsKeptYoung != 1 || sum.ManifestsDeleted != 0 || sum.BlobsKeptYoung != 1 {
		t.Errorf("summary = %+v", sum)
	}
	if !strings.Contains(logs.String(), "Young manifest cannot be decoded") {
		t.Errorf("no warning:\n%s", logs.String())
	}
	opts.Now = func() time.Time { return base.Add(2 * time.Hour) }
	sum, err = gc.Run(ctx, drv, opts)
	if err != nil {
		t.Fatalf("Run two hours later: %v", err)
	}
	if sum.ManifestsDeleted != 1 || sum.BlobsDeleted != 1 {
		t.Errorf("two hours later: %+v", sum)
	}
}
