package gc_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/berth-dev/berth/internal/testutil"
	"github.com/berth-dev/berth/internal/testutil/storagetest"
	"github.com/berth-dev/berth/registryd/gc"
	"github.com/berth-dev/berth/registryd/storage"
	"github.com/berth-dev/berth/registryd/storage/driver"
)

func TestMain(m *testing.M) { testutil.Main(m) }

// TestCollectRandomStoresOnObjectStores makes the checks of
// TestCollectRandomStores on the azure, s3 and gcs drivers against their
// emulators: what is reachable still pulls byte for byte, and every
// unreachable blob, revision and _layers link is gone.
func TestCollectRandomStoresOnObjectStores(t *testing.T) {
	// One seed per driver (the filesystem test runs six): each run builds
	// its store through HTTP requests to an emulator, the slow part.
	for _, store := range testutil.ObjectStorages() {
		for _, seed := range []uint64{1} {
			for _, untagged := range []bool{false, true} {
				t.Run(fmt.Sprintf("%s/seed=%d/delete-untagged=%v", store.Name, seed, untagged), func(t *testing.T) {
					t.Parallel()
					drv := storagetest.NewDriver(t, store)
					collectRandomStore(t, serve(t, drv), drv, seed, untagged)
				})
			}
		}
	}
}

// counting counts the deletes the collector asks of the driver it wraps.
type counting struct {
	driver.StorageDriver
	blobDeletes, batches, batched atomic.Int64
}

func (c *counting) Delete(ctx context.Context, p string) error {
	if strings.HasPrefix(p, storage.BlobsPath()+"/") {
		c.blobDeletes.Add(1)
	}
	return c.StorageDriver.Delete(ctx, p)
}

func (c *counting) DeleteFiles(ctx context.Context, paths []string) (map[string]error, error) {
	c.batches.Add(1)
	c.batched.Add(int64(len(paths)))
	fd, ok := driver.AsFileDeleter(c.StorageDriver)
	if !ok {
		return nil, errors.New("the wrapped driver has no batch delete")
	}
	return fd.DeleteFiles(ctx, paths)
}

// TestBlobsDeletedInBatches collects a bucket holding more unreferenced
// blobs than one batch delete takes: they go in ceil(n/1000) batch calls
// (S3's DeleteObjects takes 1,000 keys; the azure driver splits each into
// blob batches of 256), none blob by blob, and all of them are gone.
func TestBlobsDeletedInBatches(t *testing.T) {
	for _, tc := range []struct {
		store testutil.Storage
		n     int
	}{{testutil.ObjectStorages()[1], 1005}, {testutil.ObjectStorages()[0], 300}} {
		t.Run(tc.store.Name, func(t *testing.T) {
			drv := &counting{StorageDriver: storagetest.NewDriver(t, tc.store)}
			s := storage.New(drv)
			var wg sync.WaitGroup
			errs := make(chan error, tc.n)
			work := make(chan int)
			for range 16 {
				wg.Go(func() {
					for i := range work {
						b := fmt.Appendf(nil, "stray blob %d", i)
						if _, err := s.PutBlob(ctx, "strays", digest.FromBytes(b), b); err != nil {
							errs <- err
						}
					}
				})
			}
			for i := range tc.n {
				work <- i
			}
			close(work)
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatal(err)
			}
			sum, err := gc.Run(ctx, drv, gc.Options{})
			if err != nil {
				t.Fatalf("Run: %v (%+v)", err, sum)
			}
			if sum.BlobsDeleted != tc.n {
				t.Errorf("BlobsDeleted = %d, want %d", sum.BlobsDeleted, tc.n)
			}
			if want := int64((tc.n + 999) / 1000); drv.batches.Load() != want || drv.batched.Load() != int64(tc.n) || drv.blobDeletes.Load() != 0 {
				t.Errorf("%d batch calls for %d blobs and %d blob-by-blob deletes; want %d, %d and 0",
					drv.batches.Load(), drv.batched.Load(), drv.blobDeletes.Load(), want, tc.n)
			}
			left := 0
			if err := s.WalkBlobs(ctx, func(storage.BlobInfo) error { left++; return nil }); err != nil {
				t.Fatal(err)
			}
			if left != 0 {
				t.Errorf("%d blobs left after the collection", left)
			}
		})
	}
}

// TestDeadlineStopsBatchedDeletions: on a driver with a batch delete, the
// deadline is checked before each batch, as before each blob elsewhere:
// the batch under way finishes, no other starts, the blobs not started are
// no failures, and the run ends with ErrDeadline.
func TestDeadlineStopsBatchedDeletions(t *testing.T) {
	const n = 1500 // two batches
	drv := &counting{StorageDriver: storagetest.NewDriver(t, testutil.ObjectStorages()[1])}
	s := storage.New(drv)
	var failed atomic.Int64
	var wg sync.WaitGroup
	for w := range 16 {
		wg.Go(func() {
			for i := w; i < n; i += 16 {
				b := fmt.Appendf(nil, "stray blob %d", i)
				if _, err := s.PutBlob(ctx, "strays", digest.FromBytes(b), b); err != nil {
					failed.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if failed.Load() > 0 {
		t.Fatalf("%d blobs not stored", failed.Load())
	}
	base := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	deadline := base.Add(time.Minute)
	now := func() time.Time {
		if drv.batches.Load() >= 1 {
			return deadline
		}
		return base
	}
	sum, err := gc.Run(ctx, drv, gc.Options{Workers: 1, Deadline: deadline, Now: now})
	if !errors.Is(err, gc.ErrDeadline) || !strings.Contains(err.Error(), "while deleting blobs") {
		t.Fatalf("Run = %v, want ErrDeadline while deleting blobs", err)
	}
	if drv.batches.Load() != 1 || sum.BlobsDeleted != 1000 || sum.ErrorCount != 0 {
		t.Errorf("%d batches, %d blobs deleted, %d failures (%v); want 1, 1000, 0", drv.batches.Load(), sum.BlobsDeleted, sum.ErrorCount, sum.Errors)
	}
	left := 0
	if err := s.WalkBlobs(ctx, func(storage.BlobInfo) error { left++; return nil }); err != nil {
		t.Fatal(err)
	}
	if left != n-1000 {
		t.Errorf("%d blobs left, want %d", left, n-1000)
	}
}
