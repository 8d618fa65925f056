package s3

import (
	"bytes"
	"context"
	"fmt"
	"io"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

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
		o, err := d.Service.Head(ctx, w.key)
		switch {
		case err == nil:
			w.base = o.Size
		case objstore.IsNotExist(err):
			w.Truncate = true
		default:
			return nil, err
		}
	}
	w.Written = w.base
	return w, nil
}

// writer sends what it is given in parts of chunksize and publishes the
// object on Close or Commit (see the package documentation).
type writer struct {
	d   *Driver
	key string

	// base is the size of the committed object being continued; its
	// bytes are carried into the new object by the first Write.
	base        int64
	baseCarried bool

	uploadID string
	parts    []types.CompletedPart
	objstore.WriterBase
}

func (w *writer) Write(p []byte) (int, error) {
	return w.WriteParts(p, int(w.d.p.ChunkSize),
		func() error { return w.carryBase(w.Ctx) },
		func(part []byte) error { return w.uploadPart(w.Ctx, part) })
}

// carryBase makes the committed object's bytes the start of the new one:
// read into the buffer when smaller than a part, else copied server-side
// into the first parts of a multipart upload.
func (w *writer) carryBase(ctx context.Context) error {
	if w.base == 0 || w.baseCarried {
		return nil
	}
	w.baseCarried = true
	if w.base < MinChunkSize {
		out, err := w.d.client.GetObject(ctx, &s3.GetObjectInput{Bucket: w.d.bucket(), Key: aws.String(w.key)})
		if err != nil {
			return w.d.pathError(w.Path, err)
		}
		defer out.Body.Close()
		var b bytes.Buffer
		if _, err := io.Copy(&b, out.Body); err != nil {
			return err
		}
		if int64(b.Len()) != w.base {
			return fmt.Errorf("%s: %s changed while it was continued (%d bytes, was %d)", DriverName, w.Path, b.Len(), w.base)
		}
		w.Buf = append(b.Bytes(), w.Buf...)
		return nil
	}
	if err := w.startUpload(ctx); err != nil {
		return err
	}
	// Parts of at most 5 GiB, all but the last at least 5 MiB: equal
	// ranges of base do.
	n := (w.base + MaxChunkSize - 1) / MaxChunkSize
	step := (w.base + n - 1) / n
	for start := int64(0); start < w.base; start += step {
		end := min(start+step, w.base) - 1
		part, err := w.d.uploadPartCopy(ctx, w.key, w.uploadID, int32(len(w.parts)+1), w.key, start, end)
		if err != nil {
			return err
		}
		w.parts = append(w.parts, part)
	}
	return nil
}

func (w *writer) startUpload(ctx context.Context) error {
	if w.uploadID != "" {
		return nil
	}
	id, err := w.d.createMultipartUpload(ctx, w.key)
	if err != nil {
		return err
	}
	w.uploadID = id
	return nil
}

func (w *writer) uploadPart(ctx context.Context, b []byte) error {
	if err := w.startUpload(ctx); err != nil {
		return err
	}
	number := int32(len(w.parts) + 1)
	out, err := w.d.client.UploadPart(ctx, &s3.UploadPartInput{
		Bucket: w.d.bucket(), Key: aws.String(w.key), UploadId: aws.String(w.uploadID),
		PartNumber: aws.Int32(number), Body: bytes.NewReader(b), ContentLength: aws.Int64(int64(len(b))),
	})
	if err != nil {
		return err
	}
	w.parts = append(w.parts, types.CompletedPart{ETag: out.ETag, PartNumber: aws.Int32(number)})
	return nil
}

// publish makes everything written so far the object at the path.
func (w *writer) publish(ctx context.Context) error {
	if err := w.carryBase(ctx); err != nil {
		return err
	}
	var err error
	if w.uploadID == "" {
		_, err = w.d.client.PutObject(ctx, w.d.putObjectInput(w.key, bytes.NewReader(w.Buf)))
	} else {
		if len(w.Buf) > 0 {
			err = w.uploadPart(ctx, w.Buf)
		}
		if err == nil {
			err = w.d.completeMultipartUpload(ctx, w.key, w.uploadID, w.parts)
		} else {
			w.d.abort(w.key, w.uploadID)
		}
	}
	w.uploadID, w.parts, w.Buf = "", nil, nil
	if err != nil {
		return err
	}
	w.base, w.baseCarried = w.Written, false
	return nil
}

func (w *writer) Close() error { return w.WriterBase.Close(w.publish) }

func (w *writer) Commit(ctx context.Context) error { return w.WriterBase.Commit(ctx, w.publish) }

func (w *writer) Cancel(ctx context.Context) error {
	return w.WriterBase.Cancel(func() error {
		if w.uploadID != "" {
			w.d.abort(w.key, w.uploadID)
			w.uploadID, w.parts = "", nil
		}
		return w.d.DeleteKeys(ctx, []string{w.key})
	})
}
