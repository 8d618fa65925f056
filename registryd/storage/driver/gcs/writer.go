package gcs

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"

	"cloud.google.com/go/storage"

	"github.com/berth-dev/berth/registryd/storage/driver"
	"github.com/berth-dev/berth/registryd/storage/driver/objstore"
)

// Writer returns a FileWriter for path. With append it continues the
// object at path (if any); without, the object is replaced when the writer
// is closed or committed.
func (d *Driver) Writer(ctx context.Context, path string, append bool) (driver.FileWriter, error) {
	w := &writer{d: d, key: d.Key(path)}
	w.Name, w.Path, w.Ctx, w.Truncate = DriverName, path, ctx, !append
	if append {
		a, err := d.bucket.Object(w.key).Attrs(ctx)
		switch {
		case err == nil:
			w.base, w.baseGen = a.Size, a.Generation
		case isNotFound(err):
			w.Truncate = true
		default:
			return nil, err
		}
	}
	w.Written = w.base
	return w, nil
}

// writer streams to the object (or, when it continues one that holds
// bytes, to a transient object composed onto it) and publishes on Close or
// Commit (see the package documentation).
type writer struct {
	d   *Driver
	key string

	base    int64 // size of the object continued
	baseGen int64 // its generation

	ow     *storage.Writer
	cancel context.CancelFunc // aborts ow's upload
	target string             // the key ow writes
	objstore.WriterBase
}

func (w *writer) Write(p []byte) (int, error) {
	if err := w.Usable(); err != nil {
		return 0, err
	}
	if w.ow == nil {
		w.target = w.key
		if w.base > 0 {
			var b [8]byte
			_, _ = rand.Read(b[:])
			w.target = w.key + "~seg-" + hex.EncodeToString(b[:])
		}
		ctx, cancel := context.WithCancel(w.Ctx)
		w.ow, w.cancel = w.d.newWriter(ctx, w.target), cancel
	}
	n, err := w.ow.Write(p)
	w.Written += int64(n)
	w.Dirty = true
	if err != nil {
		w.Err = err
	}
	return n, err
}

// publish makes everything written so far the object at the path.
func (w *writer) publish(ctx context.Context) error {
	if w.ow == nil { // nothing written: a new, empty object
		return w.d.PutContent(ctx, w.Path, nil)
	}
	ow, target := w.ow, w.target
	w.ow = nil
	defer w.cancel()
	if err := ow.Close(); err != nil {
		return err
	}
	if target == w.key {
		w.base, w.baseGen = w.Written, ow.Attrs().Generation
		return nil
	}
	seg := w.d.bucket.Object(target)
	defer func() {
		if err := seg.Delete(context.WithoutCancel(ctx)); err != nil && !errors.Is(err, storage.ErrObjectNotExist) {
			w.d.p.Logger.Warn("Could not delete a transient object; a recursive delete of its directory removes it", "driver", DriverName, "key", target, "error", err)
		}
	}()
	dst := w.d.bucket.Object(w.key)
	c := dst.ComposerFrom(dst.Generation(w.baseGen), seg)
	c.ContentType = "application/octet-stream"
	attrs, err := c.Run(ctx)
	if err != nil {
		return fmt.Errorf("%s: appending to %s: %w", DriverName, w.Path, err)
	}
	w.base, w.baseGen = attrs.Size, attrs.Generation
	if attrs.Size != w.Written {
		return fmt.Errorf("%s: %s holds %d bytes after appending, want %d", DriverName, w.Path, attrs.Size, w.Written)
	}
	return nil
}

func (w *writer) Close() error { return w.WriterBase.Close(w.publish) }

func (w *writer) Commit(ctx context.Context) error { return w.WriterBase.Commit(ctx, w.publish) }

func (w *writer) Cancel(ctx context.Context) error {
	return w.WriterBase.Cancel(func() error {
		if w.ow != nil {
			w.cancel() // abandons the upload
			if w.target != w.key {
				_ = w.d.bucket.Object(w.target).Delete(ctx)
			}
			w.ow = nil
		}
		if err := w.d.bucket.Object(w.key).Delete(ctx); err != nil && !errors.Is(err, storage.ErrObjectNotExist) {
			return err
		}
		return nil
	})
}
