package server

import (
	"context"
	"errors"
	"expvar"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/berth-dev/berth/registryd/configuration"
	"github.com/berth-dev/berth/registryd/handlers"
	"github.com/berth-dev/berth/registryd/health"
	"github.com/berth-dev/berth/registryd/metrics"
	"github.com/berth-dev/berth/registryd/notifications"
	"github.com/berth-dev/berth/registryd/purge"
	"github.com/berth-dev/berth/registryd/storage/driver"
)

// Operations: the pieces of the server that are not the registry API.
//
//   - Health checks (health section) are polled while Serve runs; results
//     are on the debug server's /debug/health, and while one fails the
//     main port answers 503 UNAVAILABLE to everything (see package health
//     for why /debug/health is not on the main port).
//   - The debug server (http.debug.addr) is a separate listener opened by
//     Serve: /debug/health, POST /debug/health/down and /debug/health/up
//     (a manual check, as in Distribution), /debug/pprof/, /debug/vars
//     (expvar), Berth's status endpoint /berth/v1/status (readonly.go)
//     and, with http.debug.prometheus.enabled, the Prometheus metrics at
//     http.debug.prometheus.path (/metrics by default). It has no
//     authentication: keep it off public networks, as the reference warns.
//   - Notifications (notifications.endpoints) are delivered from New to
//     Close, which Serve calls once the API has drained; queued events
//     then get the drain timeout (at least notificationDrainMin).
//   - Upload purging runs while Serve runs, with Distribution's defaults
//     when the section is absent (package purge).

// notificationDrainMin is the least time Close gives queued events.
const notificationDrainMin = 5 * time.Second

// operations holds the server's operational pieces.
type operations struct {
	log       *slog.Logger
	metrics   *metrics.Metrics // nil unless prometheus is enabled
	health    *health.Registry
	polls     []func(ctx context.Context)
	notify    *notifications.Broadcaster // nil without endpoints
	evOpts    handlers.EventOptions
	purger    *purge.Purger // nil when disabled
	debug     http.Handler  // nil without http.debug
	debugAddr string

	mu     sync.Mutex
	debugL net.Listener
}

// newOperations builds the operational pieces from cfg. It returns the
// storage driver to use, instrumented when metrics are on.
func newOperations(cfg *configuration.Configuration, drv driver.StorageDriver, log *slog.Logger, readOnly func() bool, status http.Handler) (*operations, driver.StorageDriver, error) {
	o := &operations{log: log, health: health.NewRegistry()}
	if d := cfg.HTTP.Debug; d != nil && d.Prometheus.Enabled {
		o.metrics = metrics.New()
		drv = o.metrics.InstrumentDriver(drv)
	}
	if err := o.addHealthChecks(&cfg.Health, drv); err != nil {
		return nil, nil, err
	}
	o.addNotifications(&cfg.Notifications, cfg.HTTP.Addr)
	if pc, ok := purgeSettings(&cfg.Storage.Maintenance); ok {
		pc.Driver, pc.ReadOnly, pc.Logger = drv, readOnly, log.With("component", "uploadpurging")
		if o.metrics != nil {
			pc.OnRun = func(r purge.Result) {
				if !pc.DryRun {
					o.metrics.PurgedUploads.Add(float64(len(r.Deleted)))
				}
			}
		}
		o.purger = pc
	}
	if d := cfg.HTTP.Debug; d != nil {
		o.debugAddr = d.Addr
		o.debug = o.debugMux(d.Prometheus, status)
	}
	return o, drv, nil
}

// purgeSettings applies Distribution's defaults to
// storage.maintenance.uploadpurging; ok is false when purging is disabled.
func purgeSettings(m *configuration.Maintenance) (*purge.Purger, bool) {
	p := &purge.Purger{Age: configuration.DefaultUploadPurgingAge, Interval: configuration.DefaultUploadPurgingInterval}
	if up := m.UploadPurging; up != nil {
		if up.Enabled != nil && !*up.Enabled {
			return nil, false
		}
		if up.Age > 0 {
			p.Age = up.Age
		}
		if up.Interval > 0 {
			p.Interval = up.Interval
		}
		p.DryRun = up.DryRun
	}
	return p, true
}

func (o *operations) addHealthChecks(h *configuration.Health, drv driver.StorageDriver) error {
	add := func(name string, threshold int, interval time.Duration, c health.Checker) error {
		st := health.NewStatus(threshold)
		if err := o.health.Register(name, st); err != nil {
			return err
		}
		o.polls = append(o.polls, func(ctx context.Context) { health.Poll(ctx, st, c, interval) })
		return nil
	}
	var errs []error
	if s := h.StorageDriver; s != nil && s.Enabled {
		errs = append(errs, add("storagedriver_"+drv.Name(), s.Threshold, s.Interval, health.StorageDriverCheck(drv)))
	}
	for i, f := range h.File {
		if err := add(f.File, f.Threshold, f.Interval, health.FileCheck(f.File)); err != nil {
			errs = append(errs, fmt.Errorf("health.file[%d]: %w", i, err))
		}
	}
	for i, c := range h.HTTP {
		chk := health.HTTPCheck(c.URI, c.StatusCode, c.Timeout, http.Header(c.Headers), nil)
		if err := add(c.URI, c.Threshold, c.Interval, chk); err != nil {
			errs = append(errs, fmt.Errorf("health.http[%d]: %w", i, err))
		}
	}
	for i, c := range h.TCP {
		if err := add(c.Addr, c.Threshold, c.Interval, health.TCPCheck(c.Addr, c.Timeout)); err != nil {
			errs = append(errs, fmt.Errorf("health.tcp[%d]: %w", i, err))
		}
	}
	return errors.Join(errs...)
}

// addNotifications builds the notifications endpoints (NewNotifier).
func (o *operations) addNotifications(n *configuration.Notifications, httpAddr string) {
	b, src := NewNotifier(n, httpAddr, o.log.With("component", "notifications"), 0)
	if b == nil {
		return
	}
	o.notify = b
	if o.metrics != nil {
		o.metrics.ObserveNotifications(b.Endpoints())
	}
	o.evOpts = handlers.EventOptions{IncludeReferences: n.Events.IncludeReferences, Source: src}
}

// NewNotifier builds one endpoint per enabled notifications endpoint, and
// the Source of the events sent to them: this host and the port of
// httpAddr, and a random instance ID per call (per process), as in
// Distribution. It returns a nil Broadcaster when no endpoint is enabled.
// queueSize bounds each endpoint's queue (notifications.DefaultQueueSize
// when 0).
func NewNotifier(n *configuration.Notifications, httpAddr string, log *slog.Logger, queueSize int) (*notifications.Broadcaster, notifications.Source) {
	var eps []*notifications.Endpoint
	for _, e := range n.Endpoints {
		if e.Disabled {
			continue
		}
		eps = append(eps, notifications.NewEndpoint(notifications.EndpointConfig{
			Name:              e.Name,
			URL:               e.URL,
			Headers:           http.Header(e.Headers),
			Timeout:           e.Timeout,
			Threshold:         e.Threshold,
			Backoff:           e.Backoff,
			IgnoredMediaTypes: append(append([]string(nil), e.IgnoredMediaTypes...), e.Ignore.MediaTypes...),
			IgnoredActions:    e.Ignore.Actions,
			QueueSize:         queueSize,
			Logger:            log,
		}))
	}
	if len(eps) == 0 {
		return nil, notifications.Source{}
	}
	host, _ := os.Hostname()
	_, port, _ := net.SplitHostPort(httpAddr)
	return notifications.NewBroadcaster(eps...), notifications.Source{Addr: net.JoinHostPort(host, port), InstanceID: uuid.NewString()}
}

// events is the handler's event sink and options; a nil sink when no
// endpoint is enabled.
func (o *operations) events() (notifications.Sink, handlers.EventOptions) {
	if o.notify == nil {
		return nil, handlers.EventOptions{}
	}
	return o.notify, o.evOpts
}

// wrap puts the health guard and the request metrics around the API.
func (o *operations) wrap(prefix string, h http.Handler) http.Handler {
	h = o.health.Guard(h)
	if o.metrics != nil {
		h = o.metrics.Middleware(prefix, h)
	}
	return h
}

// debugMux is the debug server's handler.
func (o *operations) debugMux(p configuration.Prometheus, status http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.Handle(StatusPath, status)
	manual := health.NewManual()
	_ = o.health.Register("manual_http_status", manual)
	mux.Handle("/debug/health", o.health.Handler())
	mux.Handle("/debug/health/down", manual.Handler(false))
	mux.Handle("/debug/health/up", manual.Handler(true))
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	mux.Handle("/debug/vars", expvar.Handler())
	if p.Enabled && o.metrics != nil {
		path := p.Path
		if path == "" {
			path = "/metrics"
		}
		mux.Handle(path, o.metrics.Handler())
	}
	return mux
}

// DebugHandler is the debug server's handler, nil without http.debug.
func (s *Server) DebugHandler() http.Handler { return s.ops.debug }

// DebugAddr is the debug listener's address once Serve opened it, "" before
// or without http.debug.
func (s *Server) DebugAddr() string {
	s.ops.mu.Lock()
	defer s.ops.mu.Unlock()
	if s.ops.debugL == nil {
		return ""
	}
	return s.ops.debugL.Addr().String()
}

// run is the background work (health checks, upload purging) for as
// long as ctx lasts; New adds it to the server's background.
func (o *operations) run(ctx context.Context) {
	var wg sync.WaitGroup
	for _, poll := range o.polls {
		wg.Go(func() { poll(ctx) })
	}
	if p := o.purger; p != nil {
		wg.Go(func() { p.Run(ctx) })
	}
	wg.Wait()
}

// Close delivers the queued notifications until ctx ends, then drops what
// is left.
func (s *Server) Close(ctx context.Context) error {
	if s.ops.notify == nil {
		return nil
	}
	return s.ops.notify.Close(ctx)
}

// serveDebug opens the debug listener and serves it until ctx ends.
func (s *Server) serveDebug(ctx context.Context) error {
	if s.ops.debug == nil {
		return nil
	}
	l, err := net.Listen("tcp", s.ops.debugAddr)
	if err != nil {
		return fmt.Errorf("http.debug.addr: %w", err)
	}
	s.ops.mu.Lock()
	s.ops.debugL = l
	s.ops.mu.Unlock()
	srv := &http.Server{
		Handler:           s.ops.debug,
		ReadHeaderTimeout: 30 * time.Second,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	s.log.Info("Debug server listening", "addr", l.Addr().String())
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	go func() {
		if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("Debug server failed", "error", err)
		}
	}()
	return nil
}

// closeNotifications delivers queued events for the drain timeout, at
// least notificationDrainMin, once the API has stopped serving.
func (s *Server) closeNotifications(drain time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), max(drain, notificationDrainMin))
	defer cancel()
	if err := s.Close(ctx); err != nil {
		s.log.Warn("Notifications not fully delivered at shutdown", "error", err)
	}
}
