package handlers

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync/atomic"
	"time"

	"golang.org/x/sync/semaphore"

	"github.com/berth-dev/berth/registryd/errcode"
	"github.com/berth-dev/berth/registryd/routes"
)

// Request bodies come from clients that may be slow, broken or hostile.
// What registryd does about it:
//
//   - Progress deadline: every read of a request body first moves the
//     connection's read deadline WithBodyTimeout ahead (DefaultBodyTimeout).
//     An upload that keeps sending, however slowly, is never cut; one that
//     sends nothing for that long fails. The deadline is cleared once the
//     body is fully read, so the work that follows (hashing a large blob on
//     commit) is not limited by it.
//   - A body that fails (truncated before its Content-Length or its
//     chunked end, stalled past the deadline, or reset by the client) is
//     the client's fault: 400 (408 when it stalled) with
//     BLOB_UPLOAD_INVALID on upload routes and MANIFEST_INVALID on
//     manifests, logged at debug level, never as a server error. An upload
//     whose body failed is removed at once, on a context that outlives the
//     request; a later request for it gets 404 BLOB_UPLOAD_UNKNOWN and the
//     client starts again.
//   - Manifest bodies are the only bodies held in memory (blobs stream to
//     storage). The bytes of manifest bodies in flight are bounded by
//     WithManifestMemory (DefaultManifestMemory): a PUT reserves its
//     Content-Length (the size limit when the length is not declared)
//     before reading, and waits in line when the budget is spent. When
//     DefaultManifestQueue requests already wait, it is refused at once with
//     429 TOOMANYREQUESTS and Retry-After; its body is read through a small
//     buffer and dropped first, so that a client still sending it reads
//     the 429 rather than a reset connection.

// DefaultBodyTimeout is how long a request body may send nothing before
// the request fails.
const DefaultBodyTimeout = time.Minute

// DefaultManifestMemory is how many bytes of manifest bodies are held at
// once: four manifests at the 4 MiB limit, thousands of ordinary ones.
const DefaultManifestMemory = 16 << 20

// DefaultManifestQueue is how many manifest PUTs may wait for the memory
// budget before more are refused with 429.
const DefaultManifestQueue = 64

// retryAfterSeconds is the Retry-After sent with 429.
const retryAfterSeconds = 1

// WithBodyTimeout sets how long a request body may send nothing; 0 or less
// turns the deadline off.
func WithBodyTimeout(d time.Duration) Option { return func(o *options) { o.bodyTimeout = d } }

// WithManifestMemory bounds the bytes of manifest bodies held at once and
// how many PUTs may wait for them (see the package documentation).
func WithManifestMemory(bytes int64, queue int) Option {
	return func(o *options) { o.manifestMemory, o.manifestQueue = bytes, queue }
}

// bodyError is a failure to read the request body.
type bodyError struct {
	err     error
	timeout bool  // the body stalled past the deadline
	read    int64 // bytes read before it failed
}

func (e *bodyError) Error() string {
	if e.timeout {
		return "request body stalled: " + e.err.Error()
	}
	return "reading request body: " + e.err.Error()
}

func (e *bodyError) Unwrap() error { return e.err }

// protocolError is what the client gets for a failed body on route kind.
func (e *bodyError) protocolError(kind routes.Kind) *errcode.Error {
	base := errcode.ErrBlobUploadInvalid
	if kind == routes.Manifest {
		base = errcode.ErrManifestInvalid
	}
	out := base.WithMessage("request body incomplete: the client stopped sending or closed the connection")
	if e.timeout {
		out = base.WithMessage("request body stalled: nothing received for too long")
		out.Status = http.StatusRequestTimeout
	}
	return out
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, os.ErrDeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}

// body wraps a request body with the progress deadline and turns every
// read error into a *bodyError.
type body struct {
	rc      io.ReadCloser
	ctl     *http.ResponseController // nil when deadlines are off or unsupported
	timeout time.Duration
	read    int64
	done    bool
}

func (b *body) Read(p []byte) (int, error) {
	if b.done {
		return 0, io.EOF
	}
	if b.ctl != nil {
		if err := b.ctl.SetReadDeadline(time.Now().Add(b.timeout)); err != nil {
			b.ctl = nil // not a real connection (a test recorder): no deadline
		}
	}
	n, err := b.rc.Read(p)
	b.read += int64(n)
	switch {
	case err == nil:
	case errors.Is(err, io.EOF):
		b.done = true
		b.clearDeadline()
	default:
		return n, &bodyError{err: err, timeout: isTimeout(err), read: b.read}
	}
	return n, err
}

// clearDeadline lifts the read deadline once the body is read: net/http
// then reads the connection in the background to notice a client that
// goes away, and a deadline hit there would cancel the request's context
// in the middle of its work.
func (b *body) clearDeadline() {
	if b.ctl != nil {
		_ = b.ctl.SetReadDeadline(time.Time{})
	}
}

func (b *body) Close() error { return b.rc.Close() }

// wrapBody installs the body wrapper on r when it carries a body.
func (h *handler) wrapBody(w http.ResponseWriter, r *http.Request) {
	if r.Body == nil || r.Body == http.NoBody {
		return
	}
	b := &body{rc: r.Body, timeout: h.bodyTimeout}
	if h.bodyTimeout > 0 {
		b.ctl = http.NewResponseController(w)
	}
	r.Body = b
}

// cleanupTimeout bounds clean-up that runs after the request has ended.
const cleanupTimeout = 30 * time.Second

// detached returns a context that outlives r (its values, not its
// cancellation), for clean-up after the client went away.
func detached(r *http.Request) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(r.Context()), cleanupTimeout)
}

// manifestBudget bounds the bytes of manifest bodies in flight.
type manifestBudget struct {
	sem      *semaphore.Weighted
	capacity int64
	queue    int64
	waiting  atomic.Int64
}

func newManifestBudget(capacity int64, queue int) *manifestBudget {
	return &manifestBudget{sem: semaphore.NewWeighted(capacity), capacity: capacity, queue: int64(queue)}
}

// errBusy is the 429 for a manifest PUT past the queue.
var errBusy = errcode.ErrTooManyRequests.WithMessage("too many manifest uploads in flight; retry later")

// acquire reserves n bytes, waiting in line when they are not free. It
// fails with errBusy when the line is full, and with the context's error
// when the client goes away while waiting.
func (b *manifestBudget) acquire(ctx context.Context, n int64) (release func(), err error) {
	n = min(n, b.capacity)
	release = func() { b.sem.Release(n) }
	if b.sem.TryAcquire(n) {
		return release, nil
	}
	if b.waiting.Add(1) > b.queue {
		b.waiting.Add(-1)
		return nil, errBusy
	}
	defer b.waiting.Add(-1)
	if err := b.sem.Acquire(ctx, n); err != nil {
		return nil, err
	}
	return release, nil
}

// setRetryAfter adds Retry-After to a 429.
func setRetryAfter(w http.ResponseWriter) {
	w.Header().Set("Retry-After", strconv.Itoa(retryAfterSeconds))
}
