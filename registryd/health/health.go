// Package health runs registryd's periodic health checks (the health
// section of config.yml) and reports them.
//
// Every check is polled in its own goroutine: once at start, then every
// interval (Distribution waits one interval before the first poll, so a
// registry started with its "out of rotation" file present would look
// healthy for that long; registryd checks at once). A check turns
// unhealthy after threshold consecutive failures (one when threshold is 0)
// and healthy again on the first success.
//
// Results are served in two places, as Distribution serves them:
//
//   - Handler, mounted at /debug/health on the debug server: 200 with {}
//     when every check passes, 503 with a JSON object mapping each failing
//     check's name to its error otherwise.
//   - Guard, around the registry API on the main port: while any check
//     fails, every request gets 503 with an UNAVAILABLE error body
//     pointing at /debug/health. That is what takes an unhealthy replica
//     out of a load balancer's rotation.
//
// /debug/health itself is not served on the main port: Distribution keeps
// it on the debug server only, and the details of failing checks (paths,
// internal URIs) are not for registry clients.
package health

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// DefaultInterval is the poll interval of a check configured without one.
const DefaultInterval = 10 * time.Second

// Checker checks one thing; nil means healthy.
type Checker interface {
	Check(ctx context.Context) error
}

// CheckFunc adapts a function to Checker.
type CheckFunc func(ctx context.Context) error

// Check calls f.
func (f CheckFunc) Check(ctx context.Context) error { return f(ctx) }

// Status is the last known result of a polled check. Its Check answers
// from memory, so reporting health never waits on a slow check.
type Status struct {
	mu        sync.Mutex
	threshold int
	failures  int
	err       error
}

// NewStatus returns a healthy Status that turns unhealthy after threshold
// consecutive failures (one when threshold < 1).
func NewStatus(threshold int) *Status {
	if threshold < 1 {
		threshold = 1
	}
	return &Status{threshold: threshold}
}

// Update records the result of one check.
func (s *Status) Update(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err == nil {
		s.failures, s.err = 0, nil
		return
	}
	if s.failures < s.threshold {
		s.failures++
	}
	s.err = err
}

// Check returns the last error once threshold consecutive checks failed.
func (s *Status) Check(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failures >= s.threshold {
		return s.err
	}
	return nil
}

// Poll checks c at once and then every interval, recording results in s,
// until ctx ends.
func Poll(ctx context.Context, s *Status, c Checker, interval time.Duration) {
	if interval <= 0 {
		interval = DefaultInterval
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		s.Update(c.Check(ctx))
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Registry holds named checks.
type Registry struct {
	mu     sync.RWMutex
	checks map[string]Checker
}

// NewRegistry returns an empty Registry (healthy).
func NewRegistry() *Registry { return &Registry{checks: map[string]Checker{}} }

// Register adds a check under name. A name registered twice is an error:
// two checks of the same file or URI are a configuration mistake.
func (r *Registry) Register(name string, c Checker) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, dup := r.checks[name]; dup {
		return errors.New("health check " + strconv.Quote(name) + " configured twice")
	}
	r.checks[name] = c
	return nil
}

// Failing returns the error of each failing check, by name.
func (r *Registry) Failing(ctx context.Context) map[string]string {
	r.mu.RLock()
	checks := maps.Clone(r.checks)
	r.mu.RUnlock()
	out := map[string]string{}
	for name, c := range checks {
		if err := c.Check(ctx); err != nil {
			out[name] = err.Error()
		}
	}
	return out
}

// Handler serves the health report: GET or HEAD answers 200 {} when
// healthy, 503 with the failing checks otherwise; other methods get 405.
func (r *Registry) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Method != http.MethodGet && req.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		failing := r.Failing(req.Context())
		status := http.StatusOK
		if len(failing) > 0 {
			status = http.StatusServiceUnavailable
		}
		body, _ := json.Marshal(failing)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(status)
		if req.Method == http.MethodGet {
			_, _ = w.Write(body)
		}
	})
}

// unavailableBody is the OCI error body of Guard's 503.
var unavailableBody = []byte(`{"errors":[{"code":"UNAVAILABLE","message":"service unavailable","detail":"health check failed: please see /debug/health"}]}` + "\n")

// Guard answers 503 UNAVAILABLE to every request while any check fails,
// and passes requests to next otherwise.
func (r *Registry) Guard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if len(r.Failing(req.Context())) > 0 {
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Content-Length", strconv.Itoa(len(unavailableBody)))
			w.WriteHeader(http.StatusServiceUnavailable)
			if req.Method != http.MethodHead {
				_, _ = w.Write(unavailableBody)
			}
			return
		}
		next.ServeHTTP(w, req)
	})
}

// Manual is a check set by hand (POST /debug/health/down and /up on the
// debug server, as in Distribution), healthy until Down is called.
type Manual struct{ s Status }

// NewManual returns a healthy Manual check.
func NewManual() *Manual { return &Manual{s: Status{threshold: 1}} }

// Check reports the manual state.
func (m *Manual) Check(ctx context.Context) error { return m.s.Check(ctx) }

// Down marks the check failing.
func (m *Manual) Down() { m.s.Update(errors.New("manual check")) }

// Up marks the check passing.
func (m *Manual) Up() { m.s.Update(nil) }

// Handler serves POST <path>/down and POST <path>/up.
func (m *Manual) Handler(up bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Method != http.MethodPost {
			w.Header().Set("Allow", "POST")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		if up {
			m.Up()
		} else {
			m.Down()
		}
		w.WriteHeader(http.StatusNoContent)
	})
}
