package gc_test

import (
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/berth-dev/berth/registryd/gc"
	"github.com/berth-dev/berth/registryd/storage"
	"github.com/berth-dev/berth/registryd/storage/cache"
)

// TestCollectionEvictsWhatItSweeps runs a collection with a blob descriptor
// cache holding every blob and layer link of the store: afterwards the
// cache has forgotten exactly what was swept and still knows the rest. A
// dry run evicts nothing.
func TestCollectionEvictsWhatItSweeps(t *testing.T) {
	c, drv, _ := newRegistryd(t)
	m := newModel(c, 7, 3, true)
	m.build(25)

	// What a run deletes, from a dry run.
	dry, err := gc.Run(ctx, drv, gc.Options{DryRun: true, DeleteUntagged: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(dry.Deleted.Blobs) == 0 || len(dry.Deleted.LayerLinks) == 0 {
		t.Fatalf("the store has no garbage to test with: %+v", dry)
	}
	sweptBlob := map[digest.Digest]bool{}
	for _, b := range dry.Deleted.Blobs {
		sweptBlob[b.Digest] = true
	}
	sweptLink := map[string]bool{}
	for _, l := range dry.Deleted.LayerLinks {
		sweptLink[l.Repository+"@"+l.Digest.String()] = true
	}

	// Fill the cache with every blob and layer link, as lookups would.
	bdc := cache.NewInMemory(0)
	store := storage.New(drv)
	var blobs []digest.Digest
	if err := store.WalkBlobs(ctx, func(b storage.BlobInfo) error {
		blobs = append(blobs, b.Digest)
		return bdc.SetBlob(ctx, storage.Descriptor{Digest: b.Digest, Size: b.Size})
	}); err != nil {
		t.Fatal(err)
	}
	type link struct {
		repo string
		d    digest.Digest
	}
	var links []link
	for _, repo := range m.repos {
		ds, err := store.LayerLinks(ctx, repo.name)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range ds {
			links = append(links, link{repo.name, d})
			if err := bdc.SetLink(ctx, repo.name, d, d); err != nil {
				t.Fatal(err)
			}
		}
	}
	entries := bdc.Len()

	if _, err := gc.Run(ctx, drv, gc.Options{DryRun: true, DeleteUntagged: true, Cache: bdc}); err != nil {
		t.Fatal(err)
	}
	if bdc.Len() != entries {
		t.Fatalf("a dry run evicted %d entries", entries-bdc.Len())
	}

	sum, err := gc.Run(ctx, drv, gc.Options{DeleteUntagged: true, Cache: bdc})
	if err != nil {
		t.Fatalf("Run: %v (%+v)", err, sum)
	}
	for _, d := range blobs {
		_, cached, _ := bdc.Blob(ctx, d)
		if cached == sweptBlob[d] {
			t.Errorf("blob %s: cached %v after the run, swept %v", d, cached, sweptBlob[d])
		}
	}
	for _, l := range links {
		_, cached, _ := bdc.Link(ctx, l.repo, l.d)
		if swept := sweptLink[l.repo+"@"+l.d.String()]; cached == swept {
			t.Errorf("layer link %s@%s: cached %v after the run, swept %v", l.repo, l.d, cached, swept)
		}
	}
}
