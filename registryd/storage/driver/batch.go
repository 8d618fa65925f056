package driver

import "context"

// ContentWrite is one file of a PutContents call.
type ContentWrite struct {
	Path    string
	Content []byte
}

// BatchPutter is an optional capability of a StorageDriver: storing
// several small files in one call, so that a driver that must wait for
// each write to be durable (the filesystem's fsync) can wait for many at
// once instead of one after another.
//
// PutContents stores every file as PutContent would, group after group:
// no file of a group becomes visible before every file of the groups
// before it is stored durably, so a crash never leaves a file of a later
// group without the files of an earlier one (a manifest's link without
// its content). Within a group, files become visible in the order given.
// When PutContents returns nil, every file is stored durably. On an error
// some groups may have been stored, as after an error part way through a
// sequence of PutContent calls.
type BatchPutter interface {
	PutContents(ctx context.Context, groups ...[]ContentWrite) error
}

// PutContents stores groups on d: through d's own PutContents when it is
// a BatchPutter, else with one PutContent after another, which keeps the
// same order.
func PutContents(ctx context.Context, d StorageDriver, groups ...[]ContentWrite) error {
	if b, ok := d.(BatchPutter); ok {
		return b.PutContents(ctx, groups...)
	}
	return putEach(ctx, d, groups)
}

func putEach(ctx context.Context, d StorageDriver, groups [][]ContentWrite) error {
	for _, g := range groups {
		for _, w := range g {
			if err := d.PutContent(ctx, w.Path, w.Content); err != nil {
				return err
			}
		}
	}
	return nil
}

// UnsyncedPutter is an optional capability of a StorageDriver: storing a
// file atomically (a reader sees the old content or the new, whole)
// without waiting for it to be durable. It is for content whose loss or
// corruption in a crash does no harm because its reader checks it and
// can do without it (an upload's hash state). A driver whose every write
// is durable when it returns (an object store) has no use for it.
type UnsyncedPutter interface {
	PutContentUnsynced(ctx context.Context, path string, content []byte) error
}

// PutContentUnsynced stores content at path through the UnsyncedPutter
// behind d and the wrappers around it (found as AsFileDeleter finds a
// FileDeleter), or else with d.PutContent. The path is not validated on
// the first way: callers pass layout paths.
func PutContentUnsynced(ctx context.Context, d StorageDriver, path string, content []byte) error {
	for u := d; u != nil; {
		if p, ok := u.(UnsyncedPutter); ok {
			return p.PutContentUnsynced(ctx, path, content)
		}
		w, ok := u.(interface{ Unwrap() StorageDriver })
		if !ok {
			break
		}
		u = w.Unwrap()
	}
	return d.PutContent(ctx, path, content)
}
