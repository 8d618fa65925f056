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
