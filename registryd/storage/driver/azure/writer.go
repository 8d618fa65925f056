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
	"github.com/berth-dev/berth/registryd/storage/driver/objstore"
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
	w := &writer{d: d, client: d.blob(path)}
	w.Name, w.Path, w.Ctx, w.Truncate = DriverName, path, ctx, !append
	if append {
		if err := w.loadBase(ctx); err != nil {
			return nil, err
		}
	}
	w.Written = w.base
	return w, nil
}

// writer stages blocks of blockSize as bytes arrive and commits the block
// list on Close or Commit (see the package documentation).
type writer struct {
	d      *Driver
	client *blockblob.Client

	// base is the committed blob being continued: its size and block IDs.
	base    int64
	baseIDs []string
	// copyBase: the blob has no usable block list; its bytes are read
	// back into blocks before anything is added.
	copyBase bool

	ids []string // blocks staged by this writer, in order
	objstore.WriterBase
}

func (w *writer) loadBase(ctx context.Context) error {
	resp, err := w.client.GetBlockList(ctx, blockblob.BlockListTypeCommitted, nil)
	switch {
	case isNotFound(err):
		w.Truncate = true
		return nil
	case bloberror.HasCode(err, bloberror.InvalidBlobType):
		// An append or page blob: its bytes become blocks.
		props, err := w.client.GetProperties(ctx, nil)
		if err != nil {
			return w.d.pathError(w.Path, err)
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

func (w *writer) Write(p []byte) (int, error) {
	return w.WriteParts(p, blockSize,
		func() error { return w.carryBase(w.Ctx) },
		func(block []byte) error { return w.stage(w.Ctx, block) })
}

// carryBase reads a blob without a block list back into blocks.
func (w *writer) carryBase(ctx context.Context) error {
	if !w.copyBase {
		return nil
	}
	w.copyBase = false
	resp, err := w.client.DownloadStream(ctx, nil)
	if err != nil {
		return w.d.pathError(w.Path, err)
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
		return fmt.Errorf("%s: %s changed while it was continued (%d bytes, was %d)", DriverName, w.Path, n, w.base)
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
	if err := w.carryBase(ctx); err != nil {
		return err
	}
	if len(w.Buf) > 0 {
		if err := w.stage(ctx, w.Buf); err != nil {
			return err
		}
		w.Buf = w.Buf[:0]
	}
	ids := append(append([]string(nil), w.baseIDs...), w.ids...)
	_, err := w.client.CommitBlockList(ctx, ids, &blockblob.CommitBlockListOptions{
		HTTPHeaders: &blob.HTTPHeaders{BlobContentType: &octetStream},
	})
	if err != nil {
		return err
	}
	w.baseIDs, w.ids, w.base = ids, nil, w.Written
	return nil
}

func (w *writer) Close() error { return w.WriterBase.Close(w.publish) }

func (w *writer) Commit(ctx context.Context) error { return w.WriterBase.Commit(ctx, w.publish) }

func (w *writer) Cancel(ctx context.Context) error {
	return w.WriterBase.Cancel(func() error {
		w.ids = nil
		if _, err := w.client.Delete(ctx, nil); err != nil && !isNotFound(err) {
			return err
		}
		return nil
	})
}
