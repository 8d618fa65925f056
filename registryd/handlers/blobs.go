package handlers

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/berth-dev/berth/registryd/errcode"
	"github.com/berth-dev/berth/registryd/notifications"
	"github.com/berth-dev/berth/registryd/storage"
)

// getBlob serves GET and HEAD /v2/<name>/blobs/<digest>, with Range
// support (206, 416) through http.ServeContent.
func (h *handler) getBlob(w http.ResponseWriter, r *http.Request, rt route) error {
	d, err := storage.ParseDigest(rt.Ref)
	if err != nil {
		return err
	}
	var desc storage.Descriptor
	if h.pullThrough != nil {
		var local bool
		if desc, local, err = h.pullThrough.StatBlob(r.Context(), rt.Name, d); err != nil {
			return err
		}
		if !local {
			h.emitBlob(r, notifications.ActionPull, rt.Name, "", desc)
			h.serveUpstreamBlob(w, r, rt.Name, desc)
			return nil
		}
	} else if desc, err = h.store.StatBlob(r.Context(), rt.Name, d); err != nil {
		return err
	}
	h.emitBlob(r, notifications.ActionPull, rt.Name, "", desc)
	if redirectable(r) {
		if u, err := h.store.BlobRedirectURL(r.Context(), r.Method, desc.Digest); err != nil {
			return err
		} else if u != "" {
			http.Redirect(w, r, u, http.StatusTemporaryRedirect) //nolint:gosec // G710: the URL is the storage driver's, not the client's
			return nil
		}
	}
	hd := w.Header()
	hd.Set("Docker-Content-Digest", d.String())
	hd.Set("Content-Type", "application/octet-stream")
	hd.Set("Etag", `"`+d.String()+`"`)
	hd.Set("Cache-Control", "max-age=31536000")
	hd.Set("Accept-Ranges", "bytes")
	content := &blobReader{ctx: r.Context(), store: h.store, digest: desc.Digest, size: desc.Size}
	defer content.Close()
	if r.Method == http.MethodGet {
		// Open the content before the status is sent: a blob whose content
		// is gone (a lookup answered from the cache) is 404, not a 200 with
		// a short body.
		rc, err := h.store.OpenBlob(r.Context(), desc.Digest, 0)
		if err != nil {
			return err
		}
		content.rc = rc
	}
	http.ServeContent(w, r, "", time.Time{}, content)
	return nil
}

// blobReader is an io.ReadSeeker over a blob that opens the driver reader
// at the offset of the first Read after a Seek, so that HEAD and Range
// requests read only what they send. Seeking alone opens nothing.
type blobReader struct {
	ctx    context.Context
	store  *storage.Store
	digest digest.Digest
	size   int64
	offset int64
	rc     io.ReadCloser
	rcAt   int64 // where rc reads next
}

func (b *blobReader) Read(p []byte) (int, error) {
	if b.offset >= b.size {
		return 0, io.EOF
	}
	if b.rc != nil && b.rcAt != b.offset {
		b.rc.Close()
		b.rc = nil
	}
	if b.rc == nil {
		rc, err := b.store.OpenBlob(b.ctx, b.digest, b.offset)
		if err != nil {
			return 0, err
		}
		b.rc, b.rcAt = rc, b.offset
	}
	n, err := b.rc.Read(p)
	b.offset += int64(n)
	b.rcAt += int64(n)
	return n, err
}

func (b *blobReader) Seek(offset int64, whence int) (int64, error) {
	var abs int64
	switch whence {
	case io.SeekStart:
		abs = offset
	case io.SeekCurrent:
		abs = b.offset + offset
	case io.SeekEnd:
		abs = b.size + offset
	default:
		return 0, errors.New("invalid whence")
	}
	if abs < 0 {
		return 0, errors.New("negative offset")
	}
	b.offset = abs
	return abs, nil
}

func (b *blobReader) Close() error {
	if b.rc != nil {
		return b.rc.Close()
	}
	return nil
}

// deleteBlob serves DELETE /v2/<name>/blobs/<digest>: it unlinks the blob
// from the repository (202).
func (h *handler) deleteBlob(w http.ResponseWriter, r *http.Request, rt route) error {
	if !h.deleteEnabled {
		return errcode.ErrUnsupported.WithMessage("deletion is disabled")
	}
	d, err := storage.ParseDigest(rt.Ref)
	if err != nil {
		return err
	}
	if err := h.store.DeleteBlob(r.Context(), rt.Name, d); err != nil {
		return err
	}
	h.emitDelete(r, rt.Name, "", d)
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusAccepted)
	return nil
}

// startUpload serves POST /v2/<name>/blobs/uploads/: a cross-repository
// mount (?mount=&from=), a monolithic upload (?digest= with the body), or
// a new upload session.
//
// A mount without from is not attempted: like Distribution, registryd then
// opens a regular session (202). Mounting "from anywhere" would let anyone
// who knows a digest link a blob of a repository they cannot read.
func (h *handler) startUpload(w http.ResponseWriter, r *http.Request, rt route) error {
	ctx := r.Context()
	q := r.URL.Query()
	if mount, from := q.Get("mount"), q.Get("from"); mount != "" && from != "" {
		d, err := storage.ParseDigest(mount)
		if err != nil {
			return err
		}
		if storage.ValidName(from) {
			desc, err := h.store.MountBlob(ctx, rt.Name, from, d)
			switch {
			case err == nil:
				h.emitBlob(r, notifications.ActionMount, rt.Name, from, desc)
				return h.blobCreated(w, r, rt.Name, desc.Digest)
			case !errors.Is(err, storage.ErrBlobUnknown):
				return err
			}
		}
	}
	if ds := q.Get("digest"); ds != "" {
		d, err := storage.ParseDigest(ds)
		if err != nil {
			return err
		}
		u, err := h.store.CreateUpload(ctx, rt.Name)
		if err != nil {
			return err
		}
		if err := h.finishUpload(w, r, rt.Name, u.ID, d); err != nil {
			// The session is ours, not the client's: remove it whatever
			// went wrong, even when the client is gone (already gone after
			// a digest mismatch or a failed body).
			h.dropUpload(r, rt.Name, u.ID)
			return err
		}
		return nil
	}
	u, err := h.store.CreateUpload(ctx, rt.Name)
	if err != nil {
		return err
	}
	return h.uploadAccepted(w, r, rt.Name, u.ID, 0, http.StatusAccepted)
}

// uploadAccepted writes the response describing an open upload session.
func (h *handler) uploadAccepted(w http.ResponseWriter, r *http.Request, name, id string, size int64, status int) error {
	loc, err := h.uploadLocation(r.Context(), name, id, size)
	if err != nil {
		return err
	}
	hd := w.Header()
	hd.Set("Location", h.absURL(r, loc))
	hd.Set("Docker-Upload-UUID", id)
	hd.Set("Range", rangeHeader(size))
	hd.Set("Content-Length", "0")
	w.WriteHeader(status)
	return nil
}

// rangeHeader is the Range of an upload holding size bytes. Like
// Distribution it says "0-0" for an empty upload.
func rangeHeader(size int64) string {
	end := size - 1
	if end < 0 {
		end = 0
	}
	return "0-" + strconv.FormatInt(end, 10)
}

func (h *handler) blobCreated(w http.ResponseWriter, r *http.Request, name string, d digest.Digest) error {
	hd := w.Header()
	hd.Set("Location", h.absURL(r, "/v2/"+name+"/blobs/"+d.String()))
	hd.Set("Docker-Content-Digest", d.String())
	hd.Set("Content-Length", "0")
	w.WriteHeader(http.StatusCreated)
	return nil
}

// uploadStatus serves GET /v2/<name>/blobs/uploads/<id> (204).
func (h *handler) uploadStatus(w http.ResponseWriter, r *http.Request, rt route) error {
	u, err := h.store.StatUpload(r.Context(), rt.Name, rt.Ref)
	if err != nil {
		return err
	}
	return h.uploadAccepted(w, r, rt.Name, u.ID, u.Size, http.StatusNoContent)
}

// parseContentRange reads a chunk's Content-Range ("<start>-<end>",
// optionally prefixed "bytes " or "bytes="). ok is false when absent.
func parseContentRange(r *http.Request) (start, end int64, ok bool, err error) {
	v := strings.TrimSpace(r.Header.Get("Content-Range"))
	if v == "" {
		return 0, 0, false, nil
	}
	v = strings.TrimPrefix(strings.TrimPrefix(v, "bytes="), "bytes ")
	if i := strings.IndexByte(v, '/'); i >= 0 {
		v = v[:i]
	}
	s, e, found := strings.Cut(v, "-")
	if !found {
		return 0, 0, false, errcode.ErrRangeInvalid.WithDetail("malformed Content-Range")
	}
	start, err1 := strconv.ParseInt(s, 10, 64)
	end, err2 := strconv.ParseInt(e, 10, 64)
	if err1 != nil || err2 != nil || start < 0 || end < start-1 {
		return 0, 0, false, errcode.ErrRangeInvalid.WithDetail("malformed Content-Range")
	}
	return start, end, true, nil
}

// appendChunk appends the request body to upload id. With a
// Content-Range, the chunk must start at the upload's size and carry
// exactly the bytes the range names, counted as they arrive (a chunked
// body declares no length): at most that many are appended, and a body
// that ends short or goes on longer gets 416 RANGE_INVALID. The bytes
// appended are the chunk's first ones, at their right offsets, so the
// client can ask for the upload's size and resume from there.
//
// A body that fails (truncated, stalled, reset) removes the upload: what
// arrived is of unknown extent, and an abandoned session would hold it
// until upload purging.
func (h *handler) appendChunk(r *http.Request, name, id string) (int64, error) {
	size, err := h.appendRange(r, name, id)
	var be *bodyError
	if errors.As(err, &be) {
		h.dropUpload(r, name, id)
	}
	return size, err
}

func (h *handler) appendRange(r *http.Request, name, id string) (int64, error) {
	start, end, ranged, err := parseContentRange(r)
	if err != nil {
		return 0, err
	}
	if !ranged {
		return h.store.AppendUpload(r.Context(), name, id, -1, r.Body)
	}
	want := end - start + 1
	if r.ContentLength >= 0 && r.ContentLength != want {
		return 0, errcode.ErrRangeInvalid.WithDetail("Content-Range does not match Content-Length")
	}
	size, err := h.store.AppendUpload(r.Context(), name, id, start, io.LimitReader(r.Body, want))
	if err != nil {
		return size, err
	}
	if got := size - start; got != want {
		return size, errcode.ErrRangeInvalid.WithDetail(fmt.Sprintf("Content-Range names %d bytes, the body carried %d", want, got))
	}
	if r.ContentLength < 0 {
		var extra [1]byte
		n, err := io.ReadFull(r.Body, extra[:])
		var be *bodyError
		if errors.As(err, &be) {
			return size, err
		}
		if n > 0 {
			return size, errcode.ErrRangeInvalid.WithDetail(fmt.Sprintf("the body carries more than the %d bytes Content-Range names", want))
		}
	}
	return size, nil
}

// dropUpload removes upload id after its request failed, on a context
// that outlives the request. An upload already gone is not an error.
func (h *handler) dropUpload(r *http.Request, name, id string) {
	ctx, cancel := detached(r)
	defer cancel()
	if err := h.store.CancelUpload(ctx, name, id); err != nil && !errors.Is(err, storage.ErrUploadUnknown) {
		h.logger.WarnContext(ctx, "Removing a failed upload", "repository", name, "upload", id, "error", err)
	}
}

// patchUpload serves PATCH /v2/<name>/blobs/uploads/<id>: a chunk with a
// Content-Range that must start at the current size, or a streamed body
// appended as is (202).
func (h *handler) patchUpload(w http.ResponseWriter, r *http.Request, rt route) error {
	size, err := h.appendChunk(r, rt.Name, rt.Ref)
	if err != nil {
		return err
	}
	return h.uploadAccepted(w, r, rt.Name, rt.Ref, size, http.StatusAccepted)
}

// putUpload serves PUT /v2/<name>/blobs/uploads/<id>?digest=: appends the
// optional last chunk, verifies the digest and commits (201).
func (h *handler) putUpload(w http.ResponseWriter, r *http.Request, rt route) error {
	d, err := storage.ParseDigest(r.URL.Query().Get("digest"))
	if err != nil {
		return errcode.ErrDigestInvalid.WithMessage("digest parameter missing or invalid")
	}
	return h.finishUpload(w, r, rt.Name, rt.Ref, d)
}

func (h *handler) finishUpload(w http.ResponseWriter, r *http.Request, name, id string, d digest.Digest) error {
	// A PUT that only names the digest (the usual last step after PATCH)
	// carries no body: nothing to append, and no file to open and fsync.
	if r.ContentLength != 0 || r.Header.Get("Content-Range") != "" {
		if _, err := h.appendChunk(r, name, id); err != nil {
			return err
		}
	}
	desc, err := h.store.CommitUpload(r.Context(), name, id, d)
	if err != nil {
		return err
	}
	h.emitBlob(r, notifications.ActionPush, name, "", desc)
	return h.blobCreated(w, r, name, desc.Digest)
}

// cancelUpload serves DELETE /v2/<name>/blobs/uploads/<id> (204).
func (h *handler) cancelUpload(w http.ResponseWriter, r *http.Request, rt route) error {
	if err := h.store.CancelUpload(r.Context(), rt.Name, rt.Ref); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func formatInt(n int64) string { return strconv.FormatInt(n, 10) }
