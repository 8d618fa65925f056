// Package handlers is registryd's HTTP API: the OCI Distribution Spec v1.1
// (pull, push, mount, tags, catalog, delete, referrers) plus Docker schema2
// manifests and manifest lists, served from a storage driver through the
// Distribution-compatible layout of package storage.
//
// One handler is built by New from options. Every error response is a
// *errcode.Error written by errcode.Write. Routes are declared once, in New; since
// repository names contain "/", a request path is matched from its end.
//
// Behaviour worth knowing (each decision is also documented where it is
// implemented):
//
//   - Every response carries Docker-Distribution-API-Version: registry/2.0.
//   - Location headers are absolute (scheme and host of the request,
//     honouring X-Forwarded-Proto/-Host) unless WithRelativeURLs; with
//     WithHost they are always absolute on that URL. The pagination Link
//     header is relative, as in Distribution. With WithPrefix the API lives
//     under <prefix>/v2/ and Locations carry the prefix (see urls.go).
//   - Upload sessions live in storage, so any replica sharing the storage
//     can continue one; the _state parameter of Locations (signed with
//     WithUploadStateSecret) is for Distribution replicas and never read
//     (see uploadstate.go). A chunk's Content-Range must start at the
//     current size and name exactly the bytes that arrive, chunked bodies
//     included (else 416 RANGE_INVALID; see appendChunk); without
//     Content-Range a PATCH body is appended (streamed upload). A digest
//     mismatch on commit cancels the upload, as in Distribution.
//   - Request bodies have a progress deadline, a failed body is a 4xx that
//     removes its upload, and manifest bodies in flight have a memory
//     budget with 429 past its queue: see body.go.
//   - POST with mount and from links the blob when the from repository has
//     it (201); otherwise, and always when from is missing, a regular
//     session is opened (202), as Distribution does.
//   - Manifests: config and layers must be linked in the repository
//     (MANIFEST_BLOB_UNKNOWN otherwise), index children must be manifests of
//     the repository as WithIndexValidation says, the subject need not
//     exist. Bodies over the size limit get 413 SIZE_INVALID. The stored
//     bytes decide the Content-Type served back. See getManifest for Accept
//     negotiation. URLs in descriptors must pass WithURLPolicy; by default
//     none is allowed, as in Distribution with validation on and no allow
//     list.
//   - Deleting a manifest by digest removes the tags pointing at it;
//     deleting by tag removes only the tag. Blob delete unlinks the blob
//     from the repository. Content is reclaimed by garbage collection.
//   - With WithPullThrough the registry is a pull-through cache: reads of
//     content it lacks go upstream, writes get 405 UNSUPPORTED (see
//     PullThrough).
//   - Referrers are answered from the repository's referrers index, which
//     each request brings up to date with the stored revisions (see
//     storage.Store.Referrers), and which is not written while read-only;
//     the artifactType filter is applied server side and announced with
//     OCI-Filters-Applied.
package handlers

import (
	"errors"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/berth-dev/berth/registryd/errcode"
	"github.com/berth-dev/berth/registryd/internal/httpx"
	"github.com/berth-dev/berth/registryd/routes"
	"github.com/berth-dev/berth/registryd/storage"
	"github.com/berth-dev/berth/registryd/storage/driver"
)

// DefaultMaxManifestSize is the largest manifest accepted (4 MiB), the
// limit of Distribution and of the OCI spec's guidance.
const DefaultMaxManifestSize = 4 << 20

// DefaultCatalogMaxEntries is how many repositories a catalog page holds
// at most, and when the client gives no n (Distribution's default).
const DefaultCatalogMaxEntries = 1000

// IndexValidationMode says which children of an image index must exist
// when the index is pushed (validation.manifests.indexes.platforms).
type IndexValidationMode int

const (
	// IndexValidateAll requires every child (the default).
	IndexValidateAll IndexValidationMode = iota
	// IndexValidateNone requires none.
	IndexValidateNone
	// IndexValidateList requires children whose platform is in the list.
	IndexValidateList
)

// Platform is an OS and architecture pair.
type Platform struct {
	OS           string
	Architecture string
}

// IndexValidation configures index child validation.
type IndexValidation struct {
	Mode      IndexValidationMode
	Platforms []Platform // for IndexValidateList
}

type options struct {
	deleteEnabled     bool
	indexValidation   IndexValidation
	urlPolicy         URLPolicy
	maxManifestSize   int64
	catalogMaxEntries int
	relativeURLs      bool
	prefix            string // http.prefix, "" or "/x" (see cleanPrefix)
	hostRoot          string // http.host without a trailing slash, or ""
	logger            *slog.Logger
	events            eventConfig // WithEventSink (events.go)
	bodyTimeout       time.Duration
	manifestMemory    int64
	manifestQueue     int
	writeAdmission    func() (release func(), ok bool)
	storeOpts         []storage.Option
	pullThrough       PullThrough
	uploadSecret      []byte // WithUploadStateSecret (uploadstate.go)
}

// Option configures the handler built by New.
type Option func(*options)

// WithDeleteEnabled allows DELETE of blobs, manifests and tags
// (storage.delete.enabled). Without it they answer 405 UNSUPPORTED.
func WithDeleteEnabled(enabled bool) Option { return func(o *options) { o.deleteEnabled = enabled } }

// WithIndexValidation sets validation.manifests.indexes.
func WithIndexValidation(v IndexValidation) Option {
	return func(o *options) { o.indexValidation = v }
}

// WithMaxManifestSize sets the largest manifest accepted, in bytes.
func WithMaxManifestSize(n int64) Option { return func(o *options) { o.maxManifestSize = n } }

// WithCatalogMaxEntries sets the largest catalog page (catalog.maxentries).
func WithCatalogMaxEntries(n int) Option { return func(o *options) { o.catalogMaxEntries = n } }

// WithRelativeURLs makes Location headers relative (http.relativeurls).
// By default they are absolute, built from the request's Host and scheme
// (honouring X-Forwarded-Proto and X-Forwarded-Host), as Distribution does.
func WithRelativeURLs(relative bool) Option { return func(o *options) { o.relativeURLs = relative } }

// WithWriteAdmission sets what is asked before storage is written other
// than by a write request (the referrers index, written while answering a
// GET): ok false refuses, otherwise release ends the write. Without it,
// such writes are always admitted. Read-only mode is not the handler's:
// the server refuses write requests before they reach it, and admits
// these writes through this option (server.writeGate).
func WithWriteAdmission(admit func() (release func(), ok bool)) Option {
	return func(o *options) { o.writeAdmission = admit }
}

// admitWrite is the storage write admission from the options.
func (h *handler) admitWrite() func() (func(), bool) {
	if h.writeAdmission != nil {
		return h.writeAdmission
	}
	return func() (func(), bool) { return func() {}, true }
}

// WithStorageOptions configures the storage layer the handler serves from
// (storage.WithTagConcurrency, the blob descriptor cache, ...).
func WithStorageOptions(opts ...storage.Option) Option {
	return func(o *options) { o.storeOpts = append(o.storeOpts, opts...) }
}

// WithLogger sets the logger for unexpected errors.
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// handlerFunc serves one route and method. A returned error is mapped to a
// protocol error and written by ServeHTTP; nothing must have been written.
type handlerFunc func(w http.ResponseWriter, r *http.Request, rt route) error

type handler struct {
	options
	store     *storage.Store
	routes    map[routes.Kind]map[string]handlerFunc
	manifests *manifestBudget
}

// New returns the registry's HTTP handler over drv.
func New(drv driver.StorageDriver, opts ...Option) http.Handler {
	h := &handler{
		options: options{
			maxManifestSize:   DefaultMaxManifestSize,
			urlPolicy:         DenyAllURLs,
			catalogMaxEntries: DefaultCatalogMaxEntries,
			logger:            slog.New(slog.DiscardHandler),
			bodyTimeout:       DefaultBodyTimeout,
			manifestMemory:    DefaultManifestMemory,
			manifestQueue:     DefaultManifestQueue,
		},
	}
	for _, o := range opts {
		o(&h.options)
	}
	h.store = storage.New(drv, append([]storage.Option{storage.WithLogger(h.logger), storage.WithWriteAdmission(h.admitWrite())}, h.storeOpts...)...)
	h.manifests = newManifestBudget(max(h.manifestMemory, 1), max(h.manifestQueue, 0))
	h.routes = map[routes.Kind]map[string]handlerFunc{
		routes.Base:        {http.MethodGet: h.ping, http.MethodHead: h.ping},
		routes.Catalog:     {http.MethodGet: h.catalog},
		routes.Tags:        {http.MethodGet: h.tagsList},
		routes.Blob:        {http.MethodGet: h.getBlob, http.MethodHead: h.getBlob, http.MethodDelete: h.deleteBlob},
		routes.UploadStart: {http.MethodPost: h.startUpload},
		routes.Upload: {
			http.MethodGet:    h.uploadStatus,
			http.MethodPatch:  h.patchUpload,
			http.MethodPut:    h.putUpload,
			http.MethodDelete: h.cancelUpload,
		},
		routes.Manifest: {
			http.MethodGet:    h.getManifest,
			http.MethodHead:   h.getManifest,
			http.MethodPut:    h.putManifest,
			http.MethodDelete: h.deleteManifest,
		},
		routes.Referrers: {http.MethodGet: h.referrers},
	}
	return h
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Docker-Distribution-API-Version", "registry/2.0")
	r, m := routes.Of(r, h.prefix)
	if !m.Served {
		http.NotFound(w, r)
		return
	}
	rt := m.Route
	methods := h.routes[rt.Kind]
	fn, ok := methods[r.Method]
	if !ok {
		allowed := make([]string, 0, len(methods))
		for m := range methods {
			allowed = append(allowed, m)
		}
		slices.Sort(allowed)
		w.Header().Set("Allow", strings.Join(allowed, ", "))
		errcode.Write(w, r, errcode.ErrUnsupported.WithMessage("method "+r.Method+" not allowed"))
		return
	}
	if rt.Name != "" && !storage.ValidName(rt.Name) {
		errcode.Write(w, r, errcode.ErrNameInvalid.WithDetail(map[string]string{"name": rt.Name}))
		return
	}
	// A slash percent-encoded into a segment becomes a separator once
	// decoded: no name, reference or upload id holds one, so it is only
	// ever an attempt to smuggle a path through.
	if strings.Contains(strings.ToLower(r.URL.RawPath), "%2f") {
		errcode.Write(w, r, errcode.ErrNameInvalid.WithMessage("percent-encoded slash in the request path"))
		return
	}
	if httpx.IsWrite(r.Method) && h.pullThrough != nil {
		errcode.Write(w, r, errPullThroughWrite)
		return
	}
	h.wrapBody(w, r)
	if err := fn(w, r, rt); err != nil {
		h.writeFailure(w, r, rt, err)
	}
}

// writeFailure answers a request whose handler failed. A failed request
// body and a client that went away are the client's doing: logged at
// debug level. Any other unexpected error is logged as a server error.
func (h *handler) writeFailure(w http.ResponseWriter, r *http.Request, rt route, err error) {
	var be *bodyError
	switch {
	case errors.As(err, &be):
		h.logger.DebugContext(r.Context(), "Request body failed", "method", r.Method, "path", r.URL.Path, "received", be.read, "error", be.err)
		errcode.Write(w, r, be.protocolError(rt.Kind))
		return
	case r.Context().Err() != nil && errors.Is(err, r.Context().Err()):
		h.logger.DebugContext(r.Context(), "Client went away", "method", r.Method, "path", r.URL.Path, "error", err)
		errcode.Write(w, r, errcode.ErrClientClosed)
		return
	}
	e, known := toError(err)
	if !known {
		h.logger.ErrorContext(r.Context(), "Request failed", "method", r.Method, "path", r.URL.Path, "error", err)
	}
	if e.Status == http.StatusTooManyRequests {
		setRetryAfter(w)
	}
	errcode.Write(w, r, e)
}

// absURL turns a path into the URL put in a Location header.
func (h *handler) absURL(r *http.Request, p string) string {
	if h.hostRoot != "" {
		return h.hostRoot + p
	}
	p = h.prefix + p
	if h.relativeURLs {
		return p
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	if fp := r.Header.Get("X-Forwarded-Proto"); fp != "" {
		scheme = strings.TrimSpace(strings.Split(fp, ",")[0])
	}
	host := r.Host
	if fh := r.Header.Get("X-Forwarded-Host"); fh != "" {
		host = strings.TrimSpace(strings.Split(fh, ",")[0])
	}
	return scheme + "://" + host + p
}

func (h *handler) ping(w http.ResponseWriter, r *http.Request, _ route) error {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", "2")
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodGet {
		_, _ = io.WriteString(w, "{}")
	}
	return nil
}
