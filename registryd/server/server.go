// Package server assembles registryd's HTTP server from a configuration:
// the storage driver, the OCI Distribution handler, response headers, the
// access log and the listener, and runs it until its context ends, then
// drains in-flight requests for http.draintimeout.
//
// What this build implements is declared once, in
// configuration.Implemented (returned by Supported); a
// configuration that uses anything else is refused at start with the key
// named (configuration.CheckSupported), never accepted and ignored.
package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/berth-dev/berth/registryd/configuration"
	"github.com/berth-dev/berth/registryd/handlers"
	"github.com/berth-dev/berth/registryd/storage/driver"
)

// Supported is what this build of registryd implements:
// configuration.Implemented, the one list the operator checks too. The
// drivers it names are exactly those of the driver map (drivers.go; a test
// keeps the two equal).
func Supported() configuration.Support { return configuration.Implemented() }

// Server is a configured registryd HTTP server.
type Server struct {
	cfg     *configuration.Configuration
	log     *slog.Logger
	driver  driver.StorageDriver
	handler http.Handler

	// gate refuses writes while read-only (readonly.go).
	gate *writeGate
	// reload re-applies the configuration file (reload.go); nil when
	// the server was not started from a file.
	reload *configReloader
	// tls is the TLS configuration (tls.go); nil without http.tls.
	tls *tls.Config
	// secret is http.secret or a generated one (see httpSecret).
	secret string
	// background runs for as long as Serve: file watchers.
	background []func(context.Context)
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
	// ConfigPath is the configuration file the server was started with;
	// when set, Serve watches it and applies changes (see reload.go).
	ConfigPath string
	// LogLevel is the level variable of Logger (NewLoggerLevel), which a
	// configuration reload sets; nil when the level cannot change.
	LogLevel *slog.LevelVar
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
	drv, err := NewStorageDriver(&cfg.Storage, WithDriverLogger(o.Logger))
	if err != nil {
		return nil, err
	}
	if drv, err = withRedirects(cfg, drv); err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, log: o.Logger, driver: drv, gate: newWriteGate(cfg.Storage.Maintenance.ReadOnly.Enabled)}
	s.secret = httpSecret(cfg, o.Logger)
	if cfg.HTTP.TLS != nil {
		conf, certs, err := newTLSConfig(cfg.HTTP.TLS, !cfg.HTTP.HTTP2.Disabled, o.Logger)
		if err != nil {
			return nil, err
		}
		s.tls = conf
		s.background = append(s.background, certs.Run)
	}
	if o.ConfigPath != "" {
		rl, err := newConfigReloader(o.ConfigPath, cfg, o.Logger, o.LogLevel, s.gate)
		if err != nil {
			return nil, err
		}
		s.reload = rl
		s.background = append(s.background, rl.Run)
	}
	ops, drv, err := newOperations(cfg, drv, o.Logger, s.gate.ReadOnly)
	if err != nil {
		return nil, err
	}
	s.ops, s.driver = ops, drv
	s.background = append(s.background, ops.run)
	var h http.Handler = handlers.New(drv,
		handlers.WithDeleteEnabled(cfg.Storage.Delete.Enabled),
		handlers.WithReadOnly(s.gate.ReadOnly),
		handlers.WithIndexValidation(indexValidation(&cfg.Validation)),
		handlers.WithRelativeURLs(cfg.HTTP.RelativeURLs),
		handlers.WithPrefix(cfg.HTTP.Prefix),
		handlers.WithHost(httpHost(&cfg.HTTP)),
		handlers.WithLogger(o.Logger),
		handlers.WithEventSink(ops.events()),
	)
	h = s.gate.wrap(h)
	h, authRunner, err := withAuth(cfg, o.Logger, h)
	if err != nil {
		return nil, err
	}
	if authRunner != nil {
		s.background = append(s.background, authRunner.Run)
	}
	h = ops.wrap(cfg.HTTP.Prefix, h)
	h = s.withStatus(cfg.HTTP.Prefix, h)
	if len(cfg.HTTP.Headers) > 0 {
		h = withHeaders(cfg.HTTP.Headers, h)
	}
	if !cfg.Log.AccessLog.Disabled {
		h = accessLog(o.AccessLog, h)
	}
	s.handler = h
	return s, nil
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
	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 30 * time.Second,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		TLSConfig:         s.tls,
		Protocols:         s.protocols(),
	}
	bgCtx, stopBackground := context.WithCancel(context.Background())
	var bg sync.WaitGroup
	for _, run := range s.background {
		bg.Go(func() { run(bgCtx) })
	}
	defer func() { stopBackground(); bg.Wait() }()
	errc := make(chan error, 1)
	go func() {
		if s.tls != nil {
			errc <- srv.ServeTLS(l, "", "")
			return
		}
		errc <- srv.Serve(l)
	}()
	s.log.Info("Listening", "network", l.Addr().Network(), "addr", l.Addr().String(), "storage", s.cfg.Storage.Driver(), "tls", s.tls != nil)

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

// protocols are the HTTP versions served: HTTP/1.1, HTTP/2 over TLS unless
// http.http2.disabled, and HTTP/2 over cleartext when http.h2c.enabled.
func (s *Server) protocols() *http.Protocols {
	p := new(http.Protocols)
	p.SetHTTP1(true)
	p.SetHTTP2(s.tls != nil && !s.cfg.HTTP.HTTP2.Disabled)
	p.SetUnencryptedHTTP2(s.cfg.HTTP.H2C.Enabled)
	return p
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
