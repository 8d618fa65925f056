package gc_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/berth-dev/berth/registryd/gc"
	"github.com/berth-dev/berth/registryd/storage"
	"github.com/berth-dev/berth/registryd/storage/driver"
)

// TestCollectRandomStores builds random stores (images, Docker and OCI
// indexes, nested indexes, referrers and referrers of referrers, layers
// shared across repositories, tag and manifest deletes, stray uploads) and
// checks, after a collection, that every tagged image, every child of a
// live index and every referrer of a live subject still pulls byte for
// byte, and that every unreachable blob, revision and _layers link is gone.
func TestCollectRandomStores(t *testing.T) {
	seeds := []uint64{1, 2, 3, 4, 5, 6}
	if testing.Short() {
		seeds = seeds[:2]
	}
	for _, seed := range seeds {
		for _, untagged := range []bool{false, true} {
			t.Run(fmt.Sprintf("seed=%d/delete-untagged=%v", seed, untagged), func(t *testing.T) {
				t.Parallel()
				c, drv, _ := newRegistryd(t)
				collectRandomStore(t, c, drv, seed, untagged)
			})
		}
	}
}

// collectRandomStore builds a random store through c (served over drv),
// collects it and checks the result; then a second run must find nothing
// more to do. Every storage driver's store is checked by it.
func collectRandomStore(t *testing.T, c *client, drv driver.StorageDriver, seed uint64, untagged bool) {
	t.Helper()
	m := newModel(c, seed, 4, true)
	m.build(25)
	liveManifests, liveBlobs := m.live(untagged, true)

	sum, err := gc.Run(ctx, drv, gc.Options{DeleteUntagged: untagged, Workers: 3})
	if err != nil {
		t.Fatalf("Run: %v (%+v)", err, sum)
	}
	checkStore(t, m, drv, liveManifests, liveBlobs)
	if got, want := sum.BlobsMarked, len(liveBlobs); got != want {
		t.Errorf("BlobsMarked = %d, want %d", got, want)
	}
	if !untagged && sum.ManifestsDeleted != 0 {
		t.Errorf("without --delete-untagged %d manifests were deleted", sum.ManifestsDeleted)
	}

	// A second run finds nothing more to do.
	again, err := gc.Run(ctx, drv, gc.Options{DeleteUntagged: untagged})
	if err != nil {
		t.Fatal(err)
	}
	if again.ManifestsDeleted+again.BlobsDeleted+again.LayerLinksDeleted+again.TagIndexEntriesDeleted != 0 {
		t.Errorf("second run deleted more: %+v", again)
	}
}

// checkStore checks a collected store against the model's expectations.
func checkStore(t *testing.T, m *model, drv driver.StorageDriver, liveManifests map[string]map[digest.Digest]bool, liveBlobs map[digest.Digest]bool) {
	t.Helper()
	c := m.c
	s := storage.New(drv)
	for _, repo := range m.repos {
		live := liveManifests[repo.name]
		for tag, d := range repo.tags {
			got, status := c.get("manifests", repo.name, tag)
			if status != http.StatusOK || !bytes.Equal(got, repo.manifests[d].content) {
				t.Errorf("%s:%s: status %d, content differs: %v", repo.name, tag, status, !bytes.Equal(got, repo.manifests[d].content))
			}
		}
		for d := range live {
			rec := repo.manifests[d]
			got, status := c.get("manifests", repo.name, d.String())
			if status != http.StatusOK || !bytes.Equal(got, rec.content) {
				t.Errorf("live manifest %s@%s: status %d", repo.name, d, status)
			}
			for _, b := range rec.blobs {
				got, status := c.get("blobs", repo.name, b.String())
				if status != http.StatusOK || !bytes.Equal(got, repo.blobs[b]) {
					t.Errorf("blob %s of live manifest %s@%s: status %d", b, repo.name, d, status)
				}
			}
		}
		revs, err := s.ManifestDigests(ctx, repo.name)
		if err != nil {
			t.Fatal(err)
		}
		var want []digest.Digest
		for d := range live {
			want = append(want, d)
		}
		slices.Sort(want)
		if !slices.Equal(revs, want) {
			t.Errorf("%s: revisions after collection\n got %v\nwant %v", repo.name, revs, want)
		}
		links, err := s.LayerLinks(ctx, repo.name)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range links {
			if !liveBlobs[d] {
				t.Errorf("%s: _layers link to unreachable blob %s survived", repo.name, d)
			}
		}
		for d := range repo.blobs {
			if liveBlobs[d] && !slices.Contains(links, d) {
				t.Errorf("%s: _layers link to live blob %s was removed", repo.name, d)
			}
		}
	}
	onDisk := map[digest.Digest]bool{}
	if err := s.WalkBlobs(ctx, func(b storage.BlobInfo) error { onDisk[b.Digest] = true; return nil }); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(onDisk, liveBlobs) {
		for d := range onDisk {
			if !liveBlobs[d] {
				t.Errorf("unreachable blob %s survived", d)
			}
		}
		for d := range liveBlobs {
			if !onDisk[d] {
				t.Errorf("live blob %s was deleted", d)
			}
		}
	}
}

// TestDryRunReportsWhatARealRunDeletes runs a dry run and a real run on
// copies of one store: the dry run changes no file, and names exactly the
// manifests, blobs and links the real run then deletes (compared both with
// the real run's report and with the files that disappeared).
func TestDryRunReportsWhatARealRunDeletes(t *testing.T) {
	for _, untagged := range []bool{false, true} {
		t.Run(fmt.Sprintf("delete-untagged=%v", untagged), func(t *testing.T) {
			c, _, root := newRegistryd(t)
			m := newModel(c, 42, 4, true)
			m.build(25)
			before := files(t, root)

			dryDrv, dryRoot := copyStore(t, root)
			dry, err := gc.Run(ctx, dryDrv, gc.Options{DryRun: true, DeleteUntagged: untagged})
			if err != nil {
				t.Fatal(err)
			}
			if after := files(t, dryRoot); !reflect.DeepEqual(after, before) {
				t.Fatalf("the dry run changed the store")
			}
			if dry.BlobsDeleted == 0 || (untagged && dry.ManifestsDeleted == 0) {
				t.Fatalf("the store has no garbage to test with: %+v", dry)
			}

			realDrv, realRoot := copyStore(t, root)
			real, err := gc.Run(ctx, realDrv, gc.Options{DeleteUntagged: untagged})
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(dry.Deleted, real.Deleted) {
				t.Errorf("dry run and real run differ\n dry %+v\nreal %+v", dry.Deleted, real.Deleted)
			}
			for _, f := range []struct {
				name      string
				dry, real int64
			}{
				{"manifests", int64(dry.ManifestsDeleted), int64(real.ManifestsDeleted)},
				{"blobs", int64(dry.BlobsDeleted), int64(real.BlobsDeleted)},
				{"bytes", dry.BytesFreed, real.BytesFreed},
				{"layer links", int64(dry.LayerLinksDeleted), int64(real.LayerLinksDeleted)},
				{"tag index entries", int64(dry.TagIndexEntriesDeleted), int64(real.TagIndexEntriesDeleted)},
			} {
				if f.dry != f.real {
					t.Errorf("%s: dry run %d, real run %d", f.name, f.dry, f.real)
				}
			}

			// The files that disappeared are exactly those the report names.
			want := map[string]bool{}
			deadRev := map[string]bool{}
			for _, md := range dry.Deleted.Manifests {
				deadRev[md.Repository+"@"+string(md.Digest)] = true
			}
			deadBlob := map[digest.Digest]bool{}
			for _, b := range dry.Deleted.Blobs {
				deadBlob[b.Digest] = true
			}
			deadLink := map[string]bool{}
			for _, l := range dry.Deleted.LayerLinks {
				deadLink[l.Repository+"@"+string(l.Digest)] = true
			}
			tagIndex := 0
			for rel := range before {
				repo, kind, d := layoutDigest(rel)
				switch {
				case kind == "blob" && deadBlob[d],
					kind == "revision" && deadRev[repo+"@"+string(d)],
					kind == "layer" && deadLink[repo+"@"+string(d)]:
					want[rel] = true
				case kind == "tagindex" && deadRev[repo+"@"+string(d)]:
					want[rel] = true
					tagIndex++
				}
			}
			if tagIndex != dry.TagIndexEntriesDeleted {
				t.Errorf("TagIndexEntriesDeleted = %d, the store had %d such entries", dry.TagIndexEntriesDeleted, tagIndex)
			}
			after := files(t, realRoot)
			gone := map[string]bool{}
			for rel := range before {
				if _, ok := after[rel]; !ok {
					gone[rel] = true
				}
			}
			if !reflect.DeepEqual(gone, want) {
				for rel := range gone {
					if !want[rel] {
						t.Errorf("deleted but not reported: %s", rel)
					}
				}
				for rel := range want {
					if !gone[rel] {
						t.Errorf("reported but not deleted: %s", rel)
					}
				}
			}
		})
	}
}

// TestPartialFailureThenRerun makes some deletions fail: the run reports
// them and fails, leaves no link to missing content, and a second run
// finishes the job with the same end state as a clean run.
func TestPartialFailureThenRerun(t *testing.T) {
	for _, match := range []string{"/revisions/", "/blobs/", "/_layers/", "/index/"} {
		t.Run(strings.Trim(match, "/"), func(t *testing.T) {
			c, _, root := newRegistryd(t)
			m := newModel(c, 7, 3, true)
			m.build(25)

			cleanDrv, cleanRoot := copyStore(t, root)
			if _, err := gc.Run(ctx, cleanDrv, gc.Options{DeleteUntagged: true}); err != nil {
				t.Fatal(err)
			}

			drv, brokenRoot := copyStore(t, root)
			broken := &breakingDriver{StorageDriver: drv, match: match, remaining: 3}
			sum, err := gc.Run(ctx, broken, gc.Options{DeleteUntagged: true})
			if !errors.Is(err, gc.ErrPartial) {
				t.Fatalf("Run = %v, want ErrPartial", err)
			}
			if injected := 3 - max(broken.remaining, 0); injected == 0 || sum.ErrorCount != injected || len(sum.Errors) != injected {
				t.Errorf("ErrorCount = %d, Errors = %q, want %d", sum.ErrorCount, sum.Errors, injected)
			}
			liveManifests, _ := m.live(true, true)
			// Everything live is still served after the failed run.
			checkLiveServed(t, m, serve(t, drv), liveManifests)

			if _, err := gc.Run(ctx, drv, gc.Options{DeleteUntagged: true}); err != nil {
				t.Fatalf("re-run: %v", err)
			}
			if got, want := files(t, brokenRoot), files(t, cleanRoot); !reflect.DeepEqual(got, want) {
				t.Errorf("after a re-run the store differs from a clean run's: %d files vs %d", len(got), len(want))
			}
		})
	}
}

// breakingDriver fails the first remaining Deletes of paths containing match.
type breakingDriver struct {
	driver.StorageDriver
	match     string
	mu        sync.Mutex
	remaining int
}

func (d *breakingDriver) Delete(ctx context.Context, p string) error {
	if strings.Contains(p, d.match) {
		d.mu.Lock()
		fail := d.remaining > 0
		d.remaining--
		d.mu.Unlock()
		if fail {
			return fmt.Errorf("injected failure deleting %s", p)
		}
	}
	return d.StorageDriver.Delete(ctx, p)
}

// checkLiveServed checks that every live manifest of the model, and every
// blob it references, is served by c byte for byte.
func checkLiveServed(t *testing.T, m *model, c *client, liveManifests map[string]map[digest.Digest]bool) {
	t.Helper()
	for _, repo := range m.repos {
		for d := range liveManifests[repo.name] {
			rec := repo.manifests[d]
			if got, status := c.get("manifests", repo.name, d.String()); status != http.StatusOK || !bytes.Equal(got, rec.content) {
				t.Errorf("live manifest %s@%s: status %d", repo.name, d, status)
			}
			for _, b := range rec.blobs {
				if got, status := c.get("blobs", repo.name, b.String()); status != http.StatusOK || !bytes.Equal(got, repo.blobs[b]) {
					t.Errorf("blob %s of live manifest %s@%s: status %d", b, repo.name, d, status)
				}
			}
		}
	}
}
