package handlers

import (
	"context"
	"fmt"
	"io"
	"net/http"

	"github.com/opencontainers/go-digest"

	"github.com/berth-dev/berth/registryd/errcode"
	"github.com/berth-dev/berth/registryd/storage"
)

// PullThrough is the upstream side of a pull-through cache (the proxy
// section; registryd/proxy implements it). With one, the handler serves
// reads of content it does not store from the upstream registry, and
// refuses every write (push, mount, delete) with 405 UNSUPPORTED, as the
// configuration reference says a pull-through cache does. The catalog and
// the referrers API answer from what is stored.
type PullThrough interface {
	// ResolveTag returns the digest tag points at: upstream's answer when
	// upstream answers, else the locally recorded tag.
	ResolveTag(ctx context.Context, name, tag string) (digest.Digest, error)
	// Manifest returns the content of manifest d: the stored copy, or
	// upstream's.
	Manifest(ctx context.Context, name string, d digest.Digest) ([]byte, error)
	// StatBlob describes blob d: the stored copy (local true), or
	// upstream's.
	StatBlob(ctx context.Context, name string, d digest.Digest) (desc storage.Descriptor, local bool, err error)
	// CopyBlob writes upstream's blob d to w. What was written before an
	// error cannot be taken back.
	CopyBlob(ctx context.Context, name string, d digest.Digest, w io.Writer) error
	// Tags lists the tags of repository name: upstream's when upstream
	// answers, else the local ones.
	Tags(ctx context.Context, name string) ([]string, error)
}

// WithPullThrough makes the registry a pull-through cache of p's upstream.
func WithPullThrough(p PullThrough) Option { return func(o *options) { o.pullThrough = p } }

// errPullThroughWrite is what every write to a pull-through cache gets.
var errPullThroughWrite = errcode.ErrUnsupported.WithMessage("the registry is a pull-through cache: pushes and deletes are unsupported")

// loadManifest returns manifest d of repository name, parsed: through the
// pull-through cache when there is one, else from the store (whose
// manifest cache serves repeated reads, the revision link checked each
// time).
func (h *handler) loadManifest(ctx context.Context, name string, d digest.Digest) (*storage.StoredManifest, error) {
	if h.pullThrough == nil {
		return h.store.ReadManifest(ctx, name, d)
	}
	content, err := h.pullThrough.Manifest(ctx, name, d)
	if err != nil {
		return nil, err
	}
	m, mt, err := storage.ParseManifest(content, "")
	if err != nil {
		return nil, fmt.Errorf("stored manifest %s: %w", d, err)
	}
	return &storage.StoredManifest{Digest: d, Content: content, Manifest: m, MediaType: mt}, nil
}

// serveUpstreamBlob answers GET or HEAD of a blob the pull-through cache
// does not store yet: HEAD from upstream's description, GET streamed from
// upstream (and stored meanwhile). A Range is not honoured on such a miss:
// the whole blob is sent with 200, which HTTP allows.
func (h *handler) serveUpstreamBlob(w http.ResponseWriter, r *http.Request, name string, desc storage.Descriptor) {
	hd := w.Header()
	hd.Set("Docker-Content-Digest", desc.Digest.String())
	hd.Set("Content-Type", "application/octet-stream")
	hd.Set("Content-Length", formatInt(desc.Size))
	hd.Set("Etag", `"`+desc.Digest.String()+`"`)
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return
	}
	if err := h.pullThrough.CopyBlob(r.Context(), name, desc.Digest, w); err != nil {
		// The status is sent: the client sees a short body.
		h.logger.ErrorContext(r.Context(), "Streaming a blob from upstream failed", "repository", name, "digest", desc.Digest, "error", err)
	}
}
