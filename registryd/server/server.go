// Package server assembles registryd's HTTP server from a configuration:
// the storage driver, the OCI Distribution handler, response headers, the
// access log and the listener, and runs it until its context ends, then
// drains in-flight requests for http.draintimeout.
//
// What this build implements is declared once, in Supported; a
// configuration that uses anything else is refused at start with the key
// named (configuration.CheckSupported), never accepted and ignored.
package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/berth-dev/berth/registryd/configuration"
	"github.com/berth-dev/berth/registryd/handlers"
	"github.com/berth-dev/berth/registryd/storage/driver"
)

// Supported is what this build of registryd implements.
func Supported() configuration.Support {
	return configuration.Support{
		StorageDrivers: StorageDriverNames(),
		Features: []string{
			"log.formatter.json",
			"storage.delete",
			"storage.maintenance.readonly",
			"storage.redirect",
			"http.net.unix",
			"http.headers",
			"validation.manifests.indexes.none",
			"validation.manifests.indexes.list",
			"log.formatter.logstash",
			"http.debug",
			"http.debug.prometheus",
			"health.storagedriver",
			"health.file",
			"health.http",
			"health.tcp",
			"notifications.endpoints",
			"storage.maintenance.uploadpurging",
		},
	}
}

// Server is a configured registryd HTTP server.
type Server struct {
	cfg     *configuration.Configuration
	log     *slog.Logger
	driver  driver.StorageDriver
	handler http.Handler
	// ops are health, metrics, notifications, purging and the debug
	// server (operations.go).
	ops *operations
}

// Options are the process-level pieces a Server writes to.
type Options struct {
	// Logger receives the daemon's own log lines.
	Logger *slog.Logger
	// AccessLog receives the access log (Combined Log Format); os.Stdout
	// when nil.
	AccessLog io.Writer
}

// New checks cfg against what this build supports and builds the server.
func New(cfg *configuration.Configuration, o Options) (*Server, error) {
	if err := cfg.CheckSupported(Supported()); err != nil {
		return nil, err
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.AccessLog == nil {
		o.AccessLog = os.Stdout
	}
	drv, err := NewStorageDriver(&cfg.Storage)
	if err != nil {
		return nil, err
	}
	readOnly := cfg.Storage.Maintenance.ReadOnly.Enabled
	ops, drv, err := newOperations(cfg, drv, o.Logger, func() bool { return readOnly })
	if err != nil {
		return nil, err
	}
	var h http.Handler = handlers.New(drv,
		handlers.WithDeleteEnabled(cfg.Storage.Delete.Enabled),
		handlers.WithReadOnly(func() bool { return readOnly }),
		handlers.WithIndexValidation(indexValidation(&cfg.Validation)),
		handlers.WithRelativeURLs(cfg.HTTP.RelativeURLs),
		handlers.WithPrefix(cfg.HTTP.Prefix),
		handlers.WithHost(httpHost(&cfg.HTTP)),
		handlers.WithLogger(o.Logger),
		handlers.WithEventSink(ops.events()),
	)
	h = ops.wrap(cfg.HTTP.Prefix, h)
	if len(cfg.HTTP.Headers) > 0 {
		h = withHeaders(cfg.HTTP.Headers, h)
	}
	if !cfg.Log.AccessLog.Disabled {
		h = accessLog(o.AccessLog, h)
	}
	return &Server{cfg: cfg, log: o.Logger, driver: drv, handler: h, ops: ops}, nil
}

// Handler is the server's complete HTTP handler.
func (s *Server) Handler() http.Handler { return s.handler }

// Listen opens the listener http.addr and http.net describe.
func (s *Server) Listen() (net.Listener, error) {
	network := s.cfg.HTTP.Net
	if network == "" {
		network = "tcp"
	}
	if network == "unix" {
		// A stale socket from an earlier run would make Listen fail.
		if fi, err := os.Lstat(s.cfg.HTTP.Addr); err == nil && fi.Mode()&os.ModeSocket != 0 {
			_ = os.Remove(s.cfg.HTTP.Addr)
		}
	}
	l, err := net.Listen(network, s.cfg.HTTP.Addr)
	if err != nil {
		return nil, fmt.Errorf("http.addr: %w", err)
	}
	return l, nil
}

// Serve serves on l until ctx ends, then stops accepting and lets in-flight
// requests finish for up to http.draintimeout (immediately when unset)
// before closing what remains.
func (s *Server) Serve(ctx context.Context, l net.Listener) error {
	if err := s.serveDebug(ctx); err != nil {
		return err
	}
	bgCtx, stopBackground := context.WithCancel(context.Background())
	bgDone := make(chan struct{})
	go func() { s.ops.run(bgCtx); close(bgDone) }()
	defer func() { stopBackground(); <-bgDone }()
	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 30 * time.Second,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(l) }()
	s.log.Info("Listening", "network", l.Addr().Network(), "addr", l.Addr().String(), "storage", s.cfg.Storage.Driver())

	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	drain := s.cfg.HTTP.DrainTimeout
	s.log.Info("Draining", "timeout", drain.String())
	defer s.closeNotifications(drain)
	shutdownCtx, cancel := context.WithTimeout(context.Background(), drain)
	defer cancel()
	err := srv.Shutdown(shutdownCtx)
	if errors.Is(err, context.DeadlineExceeded) {
		s.log.Warn("Drain timeout reached, closing remaining connections")
		err = srv.Close()
	}
	if serr := <-errc; serr != nil && !errors.Is(serr, http.ErrServerClosed) {
		return serr
	}
	return err
}

// withHeaders adds http.headers to every response.
func withHeaders(hdr configuration.Header, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for k, vs := range hdr {
			for _, v := range vs {
				w.Header().Add(k, v)
			}
		}
		next.ServeHTTP(w, r)
	})
}

// indexValidation maps validation.manifests.indexes to the handler's option.
// validation.disabled turns index validation off, as it turns off all
// manifest validation in Distribution.
func indexValidation(v *configuration.Validation) handlers.IndexValidation {
	if v.Disabled {
		return handlers.IndexValidation{Mode: handlers.IndexValidateNone}
	}
	switch strings.ToLower(v.Manifests.Indexes.Platforms) {
	case "none":
		return handlers.IndexValidation{Mode: handlers.IndexValidateNone}
	case "list":
		iv := handlers.IndexValidation{Mode: handlers.IndexValidateList}
		for _, p := range v.Manifests.Indexes.PlatformList {
			iv.Platforms = append(iv.Platforms, handlers.Platform{OS: p.OS, Architecture: p.Architecture})
		}
		return iv
	default:
		return handlers.IndexValidation{Mode: handlers.IndexValidateAll}
	}
}
