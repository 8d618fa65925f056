package storage_test

import (
	"context"
	"errors"
	"io"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/berth-dev/berth/registryd/storage"
	"github.com/berth-dev/berth/registryd/storage/cache"
	"github.com/berth-dev/berth/registryd/storage/driver"
	"github.com/berth-dev/berth/registryd/storage/driver/inmemory"
)

var ctx = context.Background()

// countingDriver counts the reads of a driver (Stat and GetContent).
type countingDriver struct {
	driver.StorageDriver
	reads atomic.Int64
}

func (c *countingDriver) Stat(ctx context.Context, p string) (driver.FileInfo, error) {
	c.reads.Add(1)
	return c.StorageDriver.Stat(ctx, p)
}

func (c *countingDriver) GetContent(ctx context.Context, p string) ([]byte, error) {
	c.reads.Add(1)
	return c.StorageDriver.GetContent(ctx, p)
}

func newCachedStore(t *testing.T) (*storage.Store, *countingDriver, *cache.InMemory) {
	t.Helper()
	drv := &countingDriver{StorageDriver: inmemory.New()}
	c := cache.NewInMemory(100)
	return storage.New(drv, storage.WithBlobDescriptorCache(c)), drv, c
}

// upload pushes content into repo through an upload session.
func upload(t *testing.T, s *storage.Store, repo string, content []byte) digest.Digest {
	t.Helper()
	u, err := s.CreateUpload(ctx, repo)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.AppendUpload(ctx, repo, u.ID, 0, strings.NewReader(string(content))); err != nil {
		t.Fatal(err)
	}
	d := digest.FromBytes(content)
	if _, err := s.CommitUpload(ctx, repo, u.ID, d); err != nil {
		t.Fatal(err)
	}
	return d
}

// TestBlobDescriptorCache checks what the store reads from the cache and
// when it evicts.
func TestBlobDescriptorCache(t *testing.T) {
	t.Run("a stat is answered from the cache", func(t *testing.T) {
		s, drv, _ := newCachedStore(t)
		d := upload(t, s, "app", []byte("layer"))
		before := drv.reads.Load()
		for range 3 {
			desc, err := s.StatBlob(ctx, "app", d)
			if err != nil || desc.Size != 5 {
				t.Fatalf("StatBlob = %+v, %v", desc, err)
			}
		}
		if n := drv.reads.Load() - before; n != 0 {
			t.Errorf("three stats read storage %d times", n)
		}
		if _, err := s.StatBlob(ctx, "other", d); !errors.Is(err, storage.ErrBlobUnknown) {
			t.Errorf("another repository sees the blob: %v", err)
		}
	})
	t.Run("without a cache every stat reads storage", func(t *testing.T) {
		drv := &countingDriver{StorageDriver: inmemory.New()}
		s := storage.New(drv)
		d := upload(t, s, "app", []byte("layer"))
		before := drv.reads.Load()
		if _, err := s.StatBlob(ctx, "app", d); err != nil {
			t.Fatal(err)
		}
		if drv.reads.Load() == before {
			t.Error("a stat read nothing")
		}
	})
	t.Run("a blob deleted through the API is evicted", func(t *testing.T) {
		s, _, c := newCachedStore(t)
		d := upload(t, s, "app", []byte("layer"))
		if err := s.DeleteBlob(ctx, "app", d); err != nil {
			t.Fatal(err)
		}
		if _, ok, _ := c.Link(ctx, "app", d); ok {
			t.Error("the deleted link is still cached")
		}
		if _, err := s.StatBlob(ctx, "app", d); !errors.Is(err, storage.ErrBlobUnknown) {
			t.Errorf("StatBlob after delete: %v", err)
		}
	})
	t.Run("content found gone is evicted", func(t *testing.T) {
		s, drv, c := newCachedStore(t)
		d := upload(t, s, "app", []byte("layer"))
		// Another process (a garbage collection) removes the blob and the
		// link behind this store's back: the cache still has them.
		if err := drv.Delete(ctx, storage.BlobPath(d)); err != nil {
			t.Fatal(err)
		}
		if _, err := drv.StorageDriver.Stat(ctx, storage.BlobDataPath(d)); !errors.Is(err, driver.ErrNotFound) {
			t.Fatal(err)
		}
		if _, err := s.OpenBlob(ctx, d, 0); !errors.Is(err, storage.ErrBlobUnknown) {
			t.Fatalf("OpenBlob of removed content: %v", err)
		}
		if _, ok, _ := c.Blob(ctx, d); ok {
			t.Fatal("the blob is still cached after a read found it gone")
		}
		if _, err := s.StatBlob(ctx, "app", d); !errors.Is(err, storage.ErrBlobUnknown) {
			t.Fatalf("StatBlob: %v", err)
		}
		if _, ok, _ := c.Link(ctx, "app", d); ok {
			t.Error("the link to the missing blob is still cached")
		}
	})
	t.Run("writes do not trust a stale cache", func(t *testing.T) {
		s, drv, c := newCachedStore(t)
		content := []byte("layer")
		d := upload(t, s, "app", content)
		if err := drv.Delete(ctx, storage.BlobPath(d)); err != nil {
			t.Fatal(err)
		}
		if _, ok, _ := c.Blob(ctx, d); !ok {
			t.Fatal("setup: the blob should still be cached")
		}
		// A mount from a repository whose blob is gone fails...
		if _, err := s.MountBlob(ctx, "mounted", "app", d); !errors.Is(err, storage.ErrBlobUnknown) {
			t.Errorf("MountBlob of a swept blob: %v", err)
		}
		// ...and an upload of the same content stores it again.
		upload(t, s, "other", content)
		rc, err := s.OpenBlob(ctx, d, 0)
		if err != nil {
			t.Fatalf("the re-uploaded blob is not stored: %v", err)
		}
		got, _ := io.ReadAll(rc)
		rc.Close()
		if string(got) != string(content) {
			t.Errorf("content %q", got)
		}
	})
}
