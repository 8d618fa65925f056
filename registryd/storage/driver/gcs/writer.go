package gcs

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"

	"cloud.google.com/go/storage"

	"github.com/berth-dev/berth/registryd/storage/driver"
)

// Writer returns a FileWriter for path. With append it continues the
// object at path (if any); without, the object is replaced when the writer
// is closed or committed.
func (d *Driver) Writer(ctx context.Context, path string, append bool) (driver.FileWriter, error) {
	w := &writer{d: d, ctx: ctx, path: path, key: d.Key(path), truncate: !append}
	if append {
		a, err := d.bucket.Object(w.key).Attrs(ctx)
		switch {
		case err == nil:
			w.base, w.baseGen = a.Size, a.Generation
		case isNotFound(err):
			w.truncate = true
		default:
			return nil, err
		}
	}
	w.size = w.base
	return w, nil
}

// writer streams to the object (or, when it continues one that holds
// bytes, to a transient object composed onto it) and publishes on Close or
// Commit (see the package documentation).
type writer struct {
	d         *Driver
	ctx       context.Context // the Writer call's, for Write and Close
	path, key string

	base     int64 // size of the object continued
	baseGen  int64 // its generation
	truncate bool
	dirty    bool

	ow     *storage.Writer
	cancel context.CancelFunc // aborts ow's upload
	target string             // the key ow writes
	size   int64
	err    error
	driver.WriterState
}

func (w *writer) usable() error {
	if err := w.Usable(DriverName, w.path); err != nil {
		return err
	}
	return w.err
}

func (w *writer) Write(p []byte) (int, error) {
	if err := w.usable(); err != nil {
		return 0, err
	}
	if w.ow == nil {
		w.target = w.key
		if w.base > 0 {
			var b [8]byte
			_, _ = rand.Read(b[:])
			w.target = w.key + "~seg-" + hex.EncodeToString(b[:])
		}
		ctx, cancel := context.WithCancel(w.ctx)
		w.ow, w.cancel = w.d.newWriter(ctx, w.target), cancel
	}
	n, err := w.ow.Write(p)
	w.size += int64(n)
	w.dirty = true
	if err != nil {
		w.err = err
	}
	return n, err
}

func (w *writer) Size() int64 { return w.size }

// publish makes everything written so far the object at the path.
func (w *writer) publish(ctx context.Context) error {
	if w.err != nil {
		return w.err
	}
	if !w.dirty && !w.truncate {
		return nil
	}
	err := w.finish(ctx)
	if err != nil {
		w.err = err
		return err
	}
	w.dirty, w.truncate = false, false
	return nil
}

func (w *writer) finish(ctx context.Context) error {
	if w.ow == nil { // nothing written: a new, empty object
		return w.d.PutContent(ctx, w.path, nil)
	}
	ow, target := w.ow, w.target
	w.ow = nil
	defer w.cancel()
	if err := ow.Close(); err != nil {
		return err
	}
	if target == w.key {
		w.base, w.baseGen = w.size, ow.Attrs().Generation
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
		return fmt.Errorf("%s: appending to %s: %w", DriverName, w.path, err)
	}
	w.base, w.baseGen = attrs.Size, attrs.Generation
	if attrs.Size != w.size {
		return fmt.Errorf("%s: %s holds %d bytes after appending, want %d", DriverName, w.path, attrs.Size, w.size)
	}
	return nil
}

func (w *writer) Close() error {
	return w.WriterState.Close(DriverName, w.path, func() error { return w.publish(w.ctx) })
}

func (w *writer) Commit(ctx context.Context) error {
	return w.WriterState.Commit(w.usable, func() error { return w.publish(ctx) })
}

func (w *writer) Cancel(ctx context.Context) error {
	if err := w.Usable(DriverName, w.path); err != nil {
		return err
	}
	w.Cancelled = true
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
}
