package objstore

import (
	"context"

	"github.com/berth-dev/berth/registryd/storage/driver"
)

// WriterBase is what the object-store drivers' FileWriters share: where
// the writer is in its life (driver.WriterState), the error that stopped
// it, whether there is anything to publish, and the order of the steps of
// Write, Close, Commit and Cancel around the driver's own (publish the
// object, send a part, discard the upload). A driver's writer embeds it
// and sets Name, Path and Ctx.
type WriterBase struct {
	driver.WriterState
	// Name is the driver's name and Path the driver path written, for
	// the errors.
	Name, Path string
	// Ctx is the Writer call's context, for Write and Close.
	Ctx context.Context
	// Written is the size of the object as written so far (Size).
	Written int64
	// Dirty: something was written since the last publish. Truncate:
	// publish even when nothing was written (a new, empty object).
	Dirty, Truncate bool
	// Buf holds bytes written and not sent yet, for drivers that send
	// the object in parts (WriteParts).
	Buf []byte
	// Err is a failed write or publish: the writer can only be
	// cancelled.
	Err error
}

// Size returns the object's size as written so far.
func (w *WriterBase) Size() int64 { return w.Written }

// Usable returns an error when the writer can no longer be written to
// or committed: closed, committed, cancelled or failed.
func (w *WriterBase) Usable() error {
	if err := w.WriterState.Usable(w.Name, w.Path); err != nil {
		return err
	}
	return w.Err
}

// WriteParts is Write for drivers that send the object in parts of
// partSize: once the writer is usable and prepare (the driver's step
// before the first bytes, such as carrying over the object continued) has
// run, p is added to Buf and every full part at Buf's front is handed to
// send. A failure is kept in Err.
func (w *WriterBase) WriteParts(p []byte, partSize int, prepare func() error, send func(part []byte) error) (int, error) {
	if err := w.Usable(); err != nil {
		return 0, err
	}
	if err := prepare(); err != nil {
		w.Err = err
		return 0, err
	}
	w.Buf = append(w.Buf, p...)
	w.Written += int64(len(p))
	w.Dirty = true
	for len(w.Buf) >= partSize {
		if err := send(w.Buf[:partSize]); err != nil {
			w.Err = err
			return 0, err
		}
		w.Buf = w.Buf[:copy(w.Buf, w.Buf[partSize:])]
	}
	return len(p), nil
}

// Publish runs publish, the driver's step that makes everything written
// so far the object, unless there is nothing to publish; a failure is
// kept in Err, so that the writer can then only be cancelled.
func (w *WriterBase) Publish(ctx context.Context, publish func(context.Context) error) error {
	if w.Err != nil {
		return w.Err
	}
	if !w.Dirty && !w.Truncate {
		return nil
	}
	if err := publish(ctx); err != nil {
		w.Err = err
		return err
	}
	w.Dirty, w.Truncate = false, false
	return nil
}

// Close is FileWriter.Close: it publishes with the Writer call's context
// unless the writer was committed or cancelled.
func (w *WriterBase) Close(publish func(context.Context) error) error {
	return w.WriterState.Close(w.Name, w.Path, func() error { return w.Publish(w.Ctx, publish) })
}

// Commit is FileWriter.Commit: it publishes with ctx.
func (w *WriterBase) Commit(ctx context.Context, publish func(context.Context) error) error {
	return w.WriterState.Commit(w.Usable, func() error { return w.Publish(ctx, publish) })
}

// Cancel is FileWriter.Cancel: unless the writer was closed, committed or
// cancelled, it is marked cancelled, forgets what it buffered and runs
// discard, the driver's step that removes the upload and the object.
func (w *WriterBase) Cancel(discard func() error) error {
	if err := w.WriterState.Usable(w.Name, w.Path); err != nil {
		return err
	}
	w.Cancelled = true
	w.Buf = nil
	return discard()
}
