package server

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/berth-dev/berth/registryd/handlers"
)

// Read-only mode (storage.maintenance.readonly.enabled) can change while
// the server runs (see reload.go). What the operator needs before it
// garbage-collects is a promise: from the moment a replica reports
// read-only, no write will reach storage. A write admitted just before the
// switch (a long blob upload) would break that promise if the replica
// reported read-only as soon as the flag flipped, so the gate tracks admitted
// writes and reports read-only only when the last one admitted in
// read-write mode has finished. Writes arriving after the flip are refused
// at once with 405 UNSUPPORTED "registry is in read-only mode"; reads are
// never held.
//
// The effective state is published two ways:
//
//   - the response header Berth-Read-Only: true|false on every response
//     (ReadOnlyHeader), the state when the response was started;
//   - GET /berth/v1/status (StatusPath, under http.prefix too) returns JSON
//     {"readOnly": bool, "readOnlyConfigured": bool, "configGeneration": n,
//     "configHash": "sha256:…", "configError": "…"} without
//     authentication: readOnly is the effective state, readOnlyConfigured
//     what the configuration asks for, configGeneration counts the
//     configurations applied since start (1 for the first), configHash is
//     the SHA-256 of the configuration file bytes last applied (empty for
//     the embedded default), configError the last reload failure, if the
//     file on disk could not be applied.

// ReadOnlyHeader is the response header carrying the effective read-only
// state.
const ReadOnlyHeader = "Berth-Read-Only"

// StatusPath is the status endpoint's path (after http.prefix).
const StatusPath = "/berth/v1/status"

// writeGate admits or refuses writes and knows when none admitted in
// read-write mode is still running.
type writeGate struct {
	// mu is held shared by every admitted write; taking it exclusively
	// waits until the admitted writes have finished.
	mu        sync.RWMutex
	want      atomic.Bool // the configured mode
	effective atomic.Bool // reported: configured and drained
	seq       atomic.Uint64

	// OnWritable are called after every switch from read-only to
	// read-write, in order. Set them before the gate is used.
	OnWritable []func()
}

func newWriteGate(readOnly bool) *writeGate {
	g := new(writeGate)
	g.want.Store(readOnly)
	g.effective.Store(readOnly)
	return g
}

// Set switches the mode. Switching to read-only reports it once the
// writes admitted before have finished; switching to read-write calls
// OnWritable.
func (g *writeGate) Set(readOnly bool) {
	n := g.seq.Add(1)
	was := g.want.Swap(readOnly)
	if !readOnly {
		g.effective.Store(false)
		if was {
			for _, f := range g.OnWritable {
				f()
			}
		}
		return
	}
	go func() {
		g.mu.Lock() // waits for the writes admitted before the switch
		g.mu.Unlock()
		if g.seq.Load() == n && g.want.Load() {
			g.effective.Store(true)
		}
	}()
}

// ReadOnly is the configured mode, for the handler's own check.
func (g *writeGate) ReadOnly() bool { return g.want.Load() }

// Effective is the reported mode.
func (g *writeGate) Effective() bool { return g.effective.Load() }

func isWriteMethod(m string) bool {
	switch m {
	case http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete:
		return true
	}
	return false
}

// wrap refuses writes while read-only and holds admitted ones in the gate.
func (g *writeGate) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !isWriteMethod(r.Method) {
			next.ServeHTTP(w, r)
			return
		}
		g.mu.RLock()
		if g.want.Load() {
			g.mu.RUnlock()
			handlers.WriteError(w, r, handlers.ErrReadOnly)
			return
		}
		defer g.mu.RUnlock()
		next.ServeHTTP(w, r)
	})
}

// Status is the body of GET /berth/v1/status.
type Status struct {
	ReadOnly           bool   `json:"readOnly"`
	ReadOnlyConfigured bool   `json:"readOnlyConfigured"`
	ConfigGeneration   uint64 `json:"configGeneration"`
	ConfigHash         string `json:"configHash"`
	ConfigError        string `json:"configError,omitempty"`
}

// withStatus serves the status endpoint and adds ReadOnlyHeader to every
// response; everything else goes to next.
func (s *Server) withStatus(prefix string, next http.Handler) http.Handler {
	prefixed := strings.TrimSuffix(prefix, "/") + StatusPath
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set(ReadOnlyHeader, strconv.FormatBool(s.gate.Effective()))
		if r.URL.Path != StatusPath && r.URL.Path != prefixed {
			next.ServeHTTP(w, r)
			return
		}
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

// Status reports the effective read-only state and the configuration
// applied.
func (s *Server) Status() Status {
	st := Status{ReadOnly: s.gate.Effective(), ReadOnlyConfigured: s.gate.ReadOnly()}
	if s.reload != nil {
		s.reload.mu.Lock()
		st.ConfigGeneration, st.ConfigHash, st.ConfigError = s.reload.generation, s.reload.hash, s.reload.lastErr
		s.reload.mu.Unlock()
	} else {
		st.ConfigGeneration = 1
	}
	return st
}
