package azure

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/bloberror"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blockblob"

	"github.com/berth-dev/berth/registryd/storage/driver"
)

// blockIDLen is the length of every block ID the driver writes: all IDs of
// one blob must have the same length.
const blockIDLen = 24

func newBlockID() string {
	var b [18]byte
	_, _ = rand.Read(b[:])
	return base64.StdEncoding.EncodeToString(b[:])
}

// Writer returns a FileWriter for path. With append it continues the blob
// at path (if any); without, the blob is replaced when the writer is
// closed or committed.
func (d *Driver) Writer(ctx context.Context, path string, append bool) (driver.FileWriter, error) {
	w := &writer{d: d, ctx: ctx, path: path, client: d.blob(path), truncate: !append}
	if append {
		if err := w.loadBase(ctx); err != nil {
			return nil, err
		}
	}
	w.size = w.base
	return w, nil
}

// writer stages blocks of blockSize as bytes arrive and commits the block
// list on Close or Commit (see the package documentation).
type writer struct {
	d      *Driver
	ctx    context.Context // the Writer call's, for Write and Close
	path   string
	client *blockblob.Client

	// base is the committed blob being continued: its size and block IDs.
	base    int64
	baseIDs []string
	// copyBase: the blob has no usable block list; its bytes are read
	// back into blocks before anything is added.
	copyBase bool
	truncate bool
	dirty    bool

	ids  []string // blocks staged by this writer, in order
	buf  []byte
	size int64
	err  error
	driver.WriterState
}

func (w *writer) loadBase(ctx context.Context) error {
	resp, err := w.client.GetBlockList(ctx, blockblob.BlockListTypeCommitted, nil)
	switch {
	case isNotFound(err):
		w.truncate = true
		return nil
	case bloberror.HasCode(err, bloberror.InvalidBlobType):
		// An append or page blob: its bytes become blocks.
		props, err := w.client.GetProperties(ctx, nil)
		if err != nil {
			return w.d.pathError(w.path, err)
		}
		if props.ContentLength != nil {
			w.base = *props.ContentLength
		}
		w.copyBase = w.base > 0
		return nil
	case err != nil:
		return err
	}
	if resp.BlobContentLength != nil {
		w.base = *resp.BlobContentLength
	}
	var sum int64
	for _, b := range resp.CommittedBlocks {
		id := deref(b.Name)
		if len(id) != blockIDLen {
			w.copyBase = true
		}
		if b.Size != nil {
			sum += *b.Size
		}
		w.baseIDs = append(w.baseIDs, id)
	}
	if sum != w.base {
		w.copyBase = true // written in one Put Blob: no blocks
	}
	if w.copyBase {
		w.baseIDs = nil
		w.copyBase = w.base > 0
	}
	return nil
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
	if err := w.carryBase(w.ctx); err != nil {
		w.err = err
		return 0, err
	}
	w.buf = append(w.buf, p...)
	w.size += int64(len(p))
	w.dirty = true
	for len(w.buf) >= blockSize {
		if err := w.stage(w.ctx, w.buf[:blockSize]); err != nil {
			w.err = err
			return 0, err
		}
		w.buf = w.buf[:copy(w.buf, w.buf[blockSize:])]
	}
	return len(p), nil
}

func (w *writer) Size() int64 { return w.size }

// carryBase reads a blob without a block list back into blocks.
func (w *writer) carryBase(ctx context.Context) error {
	if !w.copyBase {
		return nil
	}
	w.copyBase = false
	resp, err := w.client.DownloadStream(ctx, nil)
	if err != nil {
		return w.d.pathError(w.path, err)
	}
	defer resp.Body.Close()
	chunk := make([]byte, blockSize)
	var n int64
	for {
		m, err := io.ReadFull(resp.Body, chunk)
		if m > 0 {
			if err := w.stage(ctx, chunk[:m]); err != nil {
				return err
			}
			n += int64(m)
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			break
		}
		if err != nil {
			return err
		}
	}
	if n != w.base {
		return fmt.Errorf("%s: %s changed while it was continued (%d bytes, was %d)", DriverName, w.path, n, w.base)
	}
	return nil
}

func (w *writer) stage(ctx context.Context, b []byte) error {
	id := newBlockID()
	if _, err := w.client.StageBlock(ctx, id, nopSeekCloser{bytes.NewReader(b)}, nil); err != nil {
		return err
	}
	w.ids = append(w.ids, id)
	return nil
}

// publish commits the base blocks and the staged ones as the blob.
func (w *writer) publish(ctx context.Context) error {
	if w.err != nil {
		return w.err
	}
	if !w.dirty && !w.truncate {
		return nil
	}
	if err := w.carryBase(ctx); err != nil {
		w.err = err
		return err
	}
	if len(w.buf) > 0 {
		if err := w.stage(ctx, w.buf); err != nil {
			w.err = err
			return err
		}
		w.buf = w.buf[:0]
	}
	ids := append(append([]string(nil), w.baseIDs...), w.ids...)
	_, err := w.client.CommitBlockList(ctx, ids, &blockblob.CommitBlockListOptions{
		HTTPHeaders: &blob.HTTPHeaders{BlobContentType: &octetStream},
	})
	if err != nil {
		w.err = err
		return err
	}
	w.baseIDs, w.ids, w.base = ids, nil, w.size
	w.dirty, w.truncate = false, false
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
	w.buf, w.ids = nil, nil
	if _, err := w.client.Delete(ctx, nil); err != nil && !isNotFound(err) {
		return err
	}
	return nil
}
