package gc

import (
	"context"
	"slices"

	"github.com/berth-dev/berth/registryd/storage"
	"github.com/berth-dev/berth/registryd/storage/driver"
)

// blobBatch is the most blobs one batch delete removes: S3's DeleteObjects
// takes 1,000 keys (the driver splits further where its service takes
// fewer, as Azure's blob batch does at 256).
const blobBatch = 1000

// deleteBlobs deletes the dead blobs and calls done with each outcome
// (from several goroutines). On a driver with a batch delete
// (driver.FileDeleter: the object stores) it removes the blobs' data
// objects a batch per request, Workers batches at a time — no listing and
// no request per blob, which is what collecting a large bucket costs
// otherwise; a blob directory of an object store is gone with its data.
// Elsewhere, and in a dry run, each blob's directory is deleted, Workers
// at a time. Past the deadline no batch starts: its blobs are reported
// with errStopped, as deleteDir does.
func (c *collector) deleteBlobs(ctx context.Context, dead []Blob, done func(Blob, error)) {
	fd, ok := driver.AsFileDeleter(c.drv)
	if !ok || c.opts.DryRun {
		parallel(ctx, c.opts.Workers, dead, func(ctx context.Context, b Blob) {
			done(b, c.deleteDir(ctx, storage.BlobPath(b.Digest)))
		})
		return
	}
	batches := slices.Collect(slices.Chunk(dead, blobBatch))
	parallel(ctx, c.opts.Workers, batches, func(ctx context.Context, batch []Blob) {
		if c.expired() {
			for _, b := range batch {
				done(b, errStopped)
			}
			return
		}
		paths := make([]string, len(batch))
		for i, b := range batch {
			paths[i] = storage.BlobDataPath(b.Digest)
		}
		failed, err := fd.DeleteFiles(ctx, paths)
		for i, b := range batch {
			e, ok := failed[paths[i]]
			if !ok && err != nil {
				e = err
			}
			done(b, e)
		}
	})
}
