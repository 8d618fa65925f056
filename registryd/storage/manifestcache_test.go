package storage

import (
	"context"
	"errors"
	"fmt"
	"path"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/berth-dev/berth/registryd/storage/driver/inmemory"
)

// TestManifestCacheNeverDecidesExistence caches a manifest, then removes
// it from its repository in every way a registry sees: a delete through
// the Store, and a removal behind its back (garbage collection, another
// replica). Every read after that is ErrManifestUnknown, and a manifest
// cached for one repository is not served from another.
func TestManifestCacheNeverDecidesExistence(t *testing.T) {
	ctx := context.Background()
	for name, remove := range map[string]func(s *Store, repo string, d digest.Digest) error{
		"DeleteManifest": func(s *Store, repo string, d digest.Digest) error {
			_, err := s.DeleteManifest(ctx, repo, d)
			return err
		},
		"removed in storage": func(s *Store, repo string, d digest.Digest) error {
			return s.driver.Delete(ctx, path.Dir(RevisionLinkPath(repo, d)))
		},
	} {
		t.Run(name, func(t *testing.T) {
			drv := &countingDriver{StorageDriver: inmemory.New()}
			s := New(drv)
			m := manifestWith(t, "cached", "", "")
			d := digest.FromBytes(m)
			if err := s.PutManifest(ctx, "app", d, m, "v1"); err != nil {
				t.Fatal(err)
			}
			drv.take()
			sm, err := s.ReadManifest(ctx, "app", d)
			if err != nil || string(sm.Content) != string(m) || sm.MediaType != MediaTypeOCIManifest {
				t.Fatalf("ReadManifest: %v %v", sm, err)
			}
			if reads, _ := drv.take(); reads != 0 {
				t.Fatalf("a manifest just written was read again from storage (%d reads)", reads)
			}
			if _, err := s.ReadManifest(ctx, "other", d); !errors.Is(err, ErrManifestUnknown) {
				t.Fatalf("ReadManifest from another repository: %v, want ErrManifestUnknown", err)
			}
			if err := remove(s, "app", d); err != nil {
				t.Fatal(err)
			}
			if _, err := s.ReadManifest(ctx, "app", d); !errors.Is(err, ErrManifestUnknown) {
				t.Fatalf("ReadManifest after removal: %v, want ErrManifestUnknown", err)
			}
			if _, err := s.GetManifest(ctx, "app", d); !errors.Is(err, ErrManifestUnknown) {
				t.Fatalf("GetManifest after removal: %v, want ErrManifestUnknown", err)
			}
			if ok, err := s.ManifestExists(ctx, "app", d); ok || err != nil {
				t.Fatalf("ManifestExists after removal: %v %v", ok, err)
			}
		})
	}
}

// TestManifestCacheKeepsOnlyVerifiedContent stores content under a
// digest it does not hash to (a corrupt store): it is served as stored,
// but not remembered, so a repaired file is served at once.
func TestManifestCacheKeepsOnlyVerifiedContent(t *testing.T) {
	ctx := context.Background()
	drv := inmemory.New()
	s := New(drv)
	good := manifestWith(t, "good", "", "")
	d := digest.FromBytes(good)
	bad := manifestWith(t, "corrupt", "", "")
	if err := drv.PutContent(ctx, BlobDataPath(d), bad); err != nil {
		t.Fatal(err)
	}
	if err := drv.PutContent(ctx, RevisionLinkPath("app", d), []byte(d)); err != nil {
		t.Fatal(err)
	}
	if sm, err := s.ReadManifest(ctx, "app", d); err != nil || string(sm.Content) != string(bad) {
		t.Fatalf("corrupt content: %v %v", sm, err)
	}
	if err := drv.PutContent(ctx, BlobDataPath(d), good); err != nil {
		t.Fatal(err)
	}
	if sm, err := s.ReadManifest(ctx, "app", d); err != nil || string(sm.Content) != string(good) {
		t.Fatalf("repaired content: %v %v", sm, err)
	}
}

// TestManifestCacheBound fills the cache past its budget: the least
// recently used entries go first, and nothing larger than the budget is
// kept.
func TestManifestCacheBound(t *testing.T) {
	entry := func(i int) *StoredManifest {
		content := fmt.Appendf(nil, "%0100d", i)
		return &StoredManifest{Digest: digest.FromBytes(content), Content: content}
	}
	c := newManifestCache(5 * 200) // five entries of 100 bytes, counted twice
	for i := range 5 {
		c.add(entry(i))
	}
	c.get(entry(0).Digest) // 0 is now the most recently used
	c.add(entry(5))
	c.add(entry(6))
	for i, want := range []bool{true, false, false, true, true, true, true} {
		if got := c.get(entry(i).Digest) != nil; got != want {
			t.Errorf("entry %d cached: %v, want %v", i, got, want)
		}
	}
	if c.size > c.max {
		t.Errorf("size %d over the budget %d", c.size, c.max)
	}
	big := &StoredManifest{Digest: "sha256:big", Content: make([]byte, 600)}
	c.add(big)
	if c.get(big.Digest) != nil {
		t.Error("an entry over the budget was kept")
	}
	off := newManifestCache(0)
	off.add(entry(1))
	if off.get(entry(1).Digest) != nil {
		t.Error("a cache of 0 bytes kept an entry")
	}
}
