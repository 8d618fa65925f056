package server

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/berth-dev/berth/registryd/control"
	"github.com/berth-dev/berth/registryd/internal/httpx"
)

// Read-only mode can change while the server runs, from two sources:
//
//   - storage.maintenance.readonly.enabled in the configuration file
//     (reload.go): the user's own read-only setting;
//   - the read-only hold (hold.go, package hold): a file the operator
//     writes for the length of a garbage-collection run, which expires by
//     itself.
//
// The server refuses writes while either asks for it. What the operator
// needs before it garbage-collects is a promise: from the moment a replica
// reports read-only, no write will reach storage. A write admitted just
// before the switch (a long blob upload) would break that promise if the
// replica reported read-only as soon as the flag flipped, so the gate
// tracks admitted writes and reports read-only only when the last one
// admitted in read-write mode has finished. Writes arriving after the flip
// are refused at once with 405 UNSUPPORTED "registry is in read-only mode";
// reads are never held.
//
// Leaving read-only runs the OnWritable callbacks first (a cache of blob
// descriptors drops what a garbage collection may have swept), then admits
// writes again.
//
// The effective state is published two ways:
//
//   - the response header Berth-Read-Only: true|false on every response of
//     the main port (ReadOnlyHeader), the state when the response was
//     started;
//   - GET /berth/v1/status (StatusPath) on the debug server
//     (http.debug.addr; none without it): the Status JSON, without
//     authentication and with Cache-Control: no-store. It is served there,
//     not on the main port, so that the operator reads it whatever TLS,
//     client-certificate or auth settings the main port has, and so that it
//     says nothing to the registry's clients. It carries no configuration
//     value and no error text: a failed reload is a boolean, its error goes
//     to the log.

// ReadOnlyHeader is the response header carrying the effective read-only
// state.
const ReadOnlyHeader = "Berth-Read-Only"

// StatusPath is the status endpoint's path on the debug server.
const StatusPath = control.StatusPath

// writeGate admits or refuses writes and knows when none admitted in
// read-write mode is still running.
type writeGate struct {
	// mu is held shared by every admitted write; taking it exclusively
	// waits until the admitted writes have finished.
	mu        sync.RWMutex
	want      atomic.Bool // the configured mode
	effective atomic.Bool // reported: configured and drained
	seq       atomic.Uint64
}

func newWriteGate(readOnly bool) *writeGate {
	g := new(writeGate)
	g.want.Store(readOnly)
	g.effective.Store(readOnly)
	return g
}

// Set switches the mode. Switching to read-only reports it once the
// writes admitted before have finished.
func (g *writeGate) Set(readOnly bool) {
	n := g.seq.Add(1)
	g.want.Store(readOnly)
	if !readOnly {
		g.effective.Store(false)
		return
	}
	go func() {
		g.mu.Lock()   // waits for the writes admitted before the switch
		g.mu.Unlock() //nolint:staticcheck // SA2001: the empty critical section is the wait
		if g.seq.Load() == n && g.want.Load() {
			g.effective.Store(true)
		}
	}()
}

// ReadOnly is the configured mode: wrap refuses writes while it is true.
func (g *writeGate) ReadOnly() bool { return g.want.Load() }

// admit admits a storage write that does not come through the HTTP write
// path (the referrers index, written while answering a GET): refused while
// read-only is configured, and, once admitted, holding the gate like a
// write request until release, so that the mode is reported read-only only
// after it is done. It never waits: while a switch to read-only waits for
// the writes in flight, it refuses (the reader is answered without
// writing).
func (g *writeGate) admit() (release func(), ok bool) {
	if !g.mu.TryRLock() {
		return nil, false
	}
	if g.want.Load() {
		g.mu.RUnlock()
		return nil, false
	}
	return g.mu.RUnlock, true
}

// Effective is the reported mode.
func (g *writeGate) Effective() bool { return g.effective.Load() }

// wrap refuses writes while read-only and holds admitted ones in the gate.
func (g *writeGate) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !httpx.IsWrite(r.Method) {
			next.ServeHTTP(w, r)
			return
		}
		// Refuse without touching the lock once read-only is configured:
		// while a switch waits for the admitted writes, a pending Lock
		// makes every new RLock wait too, and a write that is refused
		// anyway must not wait for the drain.
		if httpx.RefuseReadOnly(w, r, g.ReadOnly) {
			return
		}
		g.mu.RLock()
		if httpx.RefuseReadOnly(w, r, g.ReadOnly) { // switched while this request waited
			g.mu.RUnlock()
			return
		}
		defer g.mu.RUnlock()
		next.ServeHTTP(w, r)
	})
}

// readOnlyMode combines the sources of read-only mode into the gate, and
// records when the server last switched.
type readOnlyMode struct {
	gate *writeGate
	log  *slog.Logger
	now  func() time.Time

	// switching serializes transitions; it is held while the OnWritable
	// callbacks run, so they never overlap a later switch.
	switching sync.Mutex

	mu       sync.Mutex
	config   bool // storage.maintenance.readonly.enabled
	hold     bool // an active hold
	refusing bool // what the gate was last set to
	since    time.Time
	hooks    []func()
}

func newReadOnlyMode(config, hold bool, log *slog.Logger, now func() time.Time) *readOnlyMode {
	refusing := config || hold
	return &readOnlyMode{
		gate: newWriteGate(refusing), log: log, now: now,
		config: config, hold: hold, refusing: refusing, since: now(),
	}
}

// setConfig and setHold change one source; the gate follows.
func (m *readOnlyMode) setConfig(v bool) { m.update(func() { m.config = v }) }
func (m *readOnlyMode) setHold(v bool)   { m.update(func() { m.hold = v }) }

// onWritable registers f to run on every switch from read-only to
// read-write, before writes are admitted again.
func (m *readOnlyMode) onWritable(f func()) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.hooks = append(m.hooks, f)
}

func (m *readOnlyMode) update(change func()) {
	m.switching.Lock()
	defer m.switching.Unlock()
	m.mu.Lock()
	change()
	want, was := m.config || m.hold, m.refusing
	config, hold := m.config, m.hold
	hooks := slices.Clone(m.hooks)
	m.mu.Unlock()
	if want == was {
		return
	}
	if want {
		m.mu.Lock()
		m.refusing, m.since = true, m.now()
		m.gate.Set(true)
		m.mu.Unlock()
		m.log.Info("Refusing writes", "config", config, "hold", hold)
		return
	}
	for _, f := range hooks {
		f()
	}
	m.mu.Lock()
	m.refusing, m.since = false, m.now()
	m.gate.Set(false)
	m.mu.Unlock()
	m.log.Info("Accepting writes", "callbacks", len(hooks))
}

// state is the configured mode and when it began.
func (m *readOnlyMode) state() (refusing bool, since time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.refusing, m.since
}

// OnWritable registers f to run every time the server leaves read-only
// mode (the hold removed or expired, or the configuration's read-only flag
// cleared, with the other source not asking for read-only), before writes
// are admitted again. Callbacks run one at a time, in registration order,
// on the goroutine that applied the change; they must be quick and must
// not call back into the Server. A server that starts read-write does not
// call them at start.
func (s *Server) OnWritable(f func()) { s.mode.onWritable(f) }

// Status is the body of GET /berth/v1/status on the debug server: the
// wire type the operator reads (package control).
type Status = control.Status

// withReadOnlyHeader adds ReadOnlyHeader to every response of next.
func (s *Server) withReadOnlyHeader(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set(ReadOnlyHeader, strconv.FormatBool(s.mode.gate.Effective()))
		next.ServeHTTP(w, r)
	})
}

// statusHandler serves the status endpoint (on the debug server).
func (s *Server) statusHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		body, _ := json.Marshal(s.Status())
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.Header().Set("Cache-Control", "no-store")
		if r.Method == http.MethodGet {
			_, _ = w.Write(body)
		}
	})
}

// Status reports the read-only state, the hold and the configuration
// applied.
func (s *Server) Status() Status {
	refusing, since := s.mode.state()
	st := Status{ReadOnlyConfigured: refusing}
	// Effective read-only implies refusing; read after it, so that a
	// switch to read-write in between never shows readOnly alone.
	st.ReadOnly = s.mode.gate.Effective() && refusing
	if refusing {
		st.ReadOnlySince = since.UTC()
	} else {
		st.WritableSince = since.UTC()
	}
	if s.hold != nil {
		if h, active, invalid := s.hold.state(); active {
			st.Hold = &control.HoldRef{ID: h.ID, Expires: h.Expires.UTC()}
		} else {
			st.HoldInvalid = invalid
		}
	}
	if s.reload != nil {
		s.reload.mu.Lock()
		st.ConfigGeneration, st.ConfigHash, st.ReloadFailed = s.reload.generation, s.reload.hash, s.reload.failed
		s.reload.mu.Unlock()
	} else {
		st.ConfigGeneration = 1
	}
	return st
}
