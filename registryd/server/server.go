// Package server assembles registryd's HTTP server from a configuration:
// the storage driver, the OCI Distribution handler, response headers, the
// access log and the listener, and runs it until its context ends, then
// drains in-flight requests for http.draintimeout. Connections have a
// header timeout, an idle timeout and a request body progress deadline
// (Options; Distribution has no keys for the last two).
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
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/berth-dev/berth/registryd/configuration"
	"github.com/berth-dev/berth/registryd/handlers"
	"github.com/berth-dev/berth/registryd/proxy"
	"github.com/berth-dev/berth/registryd/routes"
	"github.com/berth-dev/berth/registryd/storage"
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

	// mode combines the configuration's read-only flag and the hold into
	// the gate that refuses writes (readonly.go).
	mode *readOnlyMode
	// reload re-applies the configuration file (reload.go); nil when
	// the server was not started from a file.
	reload *configReloader
	// hold watches the read-only hold file (hold.go); nil without one.
	hold *holdWatcher
	// tls is the TLS configuration (tls.go); nil without http.tls.
	tls *tls.Config
	// secret is http.secret or a generated one (see httpSecret).
	secret string
	// background runs for as long as Serve: file watchers.
	background []func(context.Context)
	// ops are health, metrics, notifications, purging and the debug
	// server (operations.go).
	ops *operations
	// idleTimeout is http.Server's IdleTimeout (0: none).
	idleTimeout time.Duration
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
	// HoldFile is the read-only hold file (hold.go): read before New
	// returns and watched while Serve runs. Its directory must exist.
	HoldFile string
	// IdleTimeout closes a keep-alive connection that carries no request
	// for this long: 0 selects DefaultIdleTimeout, a negative value keeps
	// idle connections open forever. Distribution has no key for it
	// (`registryd serve --idle-timeout`).
	IdleTimeout time.Duration
	// BodyTimeout fails a request whose body sends nothing for this long
	// (progress extends it, see package handlers): 0 selects
	// handlers.DefaultBodyTimeout, a negative value turns it off
	// (`registryd serve --body-timeout`).
	BodyTimeout time.Duration
}

// DefaultIdleTimeout is how long an idle keep-alive connection stays open:
// longer than the 60 s idle timeout of common load balancers, so that the
// balancer, not registryd, closes a connection it may be about to reuse.
const DefaultIdleTimeout = 2 * time.Minute

// headerTimeout bounds the reading of a request's headers.
const headerTimeout = 30 * time.Second

// timeout applies the convention of Options: 0 is def, negative is off (0).
func timeout(d, def time.Duration) time.Duration {
	switch {
	case d == 0:
		return def
	case d < 0:
		return 0
	}
	return d
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
	s := &Server{cfg: cfg, log: o.Logger, driver: drv}
	s.mode = newReadOnlyMode(cfg.Storage.Maintenance.ReadOnly.Enabled, false, o.Logger, time.Now)
	if o.HoldFile != "" {
		h, err := newHoldWatcher(o.HoldFile, o.Logger, time.Now)
		if err != nil {
			return nil, err
		}
		h.apply = s.mode.setHold
		// Before the first request: a pod started mid-run refuses writes
		// from the start.
		h.check()
		s.hold = h
		s.background = append(s.background, h.Run)
	}
	s.idleTimeout = timeout(o.IdleTimeout, DefaultIdleTimeout)
	storeOpts := []storage.Option{storage.WithTagConcurrency(cfg.Storage.Tag.ConcurrencyLimit)}
	bdc, closeCache, err := newBlobDescriptorCache(cfg, s.mode.onWritable, o.Logger)
	if err != nil {
		return nil, err
	}
	if bdc != nil {
		storeOpts = append(storeOpts, storage.WithBlobDescriptorCache(bdc))
	}
	if closeCache != nil {
		s.background = append(s.background, closeCache)
	}
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
		rl, err := newConfigReloader(o.ConfigPath, cfg, o.Logger, o.LogLevel, s.mode.setConfig)
		if err != nil {
			return nil, err
		}
		s.reload = rl
		s.background = append(s.background, rl.Run)
	}
	ops, drv, err := newOperations(cfg, drv, o.Logger, s.mode.gate.ReadOnly, s.statusHandler())
	if err != nil {
		return nil, err
	}
	s.ops, s.driver = ops, drv
	s.background = append(s.background, ops.run)
	handlerOpts, err := s.pullThrough(drv, storeOpts)
	if err != nil {
		return nil, err
	}
	h := handlers.New(drv, append(handlerOpts,
		handlers.WithDeleteEnabled(cfg.Storage.Delete.Enabled),
		handlers.WithWriteAdmission(s.mode.gate.admit),
		handlers.WithIndexValidation(indexValidation(&cfg.Validation)),
		handlers.WithURLPolicy(urlPolicy(&cfg.Validation)),
		handlers.WithStorageOptions(storeOpts...),
		handlers.WithUploadStateSecret(s.secret),
		handlers.WithRelativeURLs(cfg.HTTP.RelativeURLs),
		handlers.WithPrefix(cfg.HTTP.Prefix),
		handlers.WithHost(httpHost(&cfg.HTTP)),
		handlers.WithLogger(o.Logger),
		handlers.WithEventSink(ops.events()),
		handlers.WithBodyTimeout(timeout(o.BodyTimeout, handlers.DefaultBodyTimeout)),
	)...)
	// The gate is the one read-only refusal (the handler has none):
	// a write it admitted runs to the end, and the switch waits for it.
	h = s.mode.gate.wrap(h)
	h, authRunner, err := withAuth(cfg, o.Logger, h)
	if err != nil {
		return nil, err
	}
	if authRunner != nil {
		s.background = append(s.background, authRunner.Run)
	}
	h = ops.wrap(cfg.HTTP.Prefix, h)
	h = s.withReadOnlyHeader(h)
	if len(cfg.HTTP.Headers) > 0 {
		h = withHeaders(cfg.HTTP.Headers, h)
	}
	if !cfg.Log.AccessLog.Disabled {
		h = accessLog(o.AccessLog, h)
	}
	// The path is classified once, here, for auth, the metrics and the
	// handler below (package routes).
	h = routes.Middleware(cfg.HTTP.Prefix, h)
	s.handler = recoverPanics(o.Logger, h)
	return s, nil
}

// pullThrough makes the handler a pull-through cache (proxy) over its own
// store of drv when the proxy section is set: proxy.ttl defaults to 168h,
// nothing is stored while read-only. See package proxy.
func (s *Server) pullThrough(drv driver.StorageDriver, storeOpts []storage.Option) ([]handlers.Option, error) {
	p := s.cfg.Proxy
	if p == nil {
		return nil, nil
	}
	auth, err := proxy.Authenticator(p)
	if err != nil {
		return nil, err
	}
	ttl := configuration.DefaultProxyTTL
	if p.TTL != nil {
		ttl = *p.TTL
	}
	c, err := proxy.New(storage.New(drv, storeOpts...), proxy.Options{
		RemoteURL: p.RemoteURL,
		Auth:      auth,
		TTL:       ttl,
		Admit:     s.mode.gate.admit,
		Logger:    s.log.With("component", "proxy"),
	})
	if err != nil {
		return nil, err
	}
	s.log.Info("Pull-through cache", "remoteurl", p.RemoteURL, "ttl", ttl.String(), "auth", p.Exec != nil || p.Username != "")
	return []handlers.Option{handlers.WithPullThrough(c)}, nil
}

// Handler is the server's complete HTTP handler.
func (s *Server) Handler() http.Handler { return s.handler }

// Listen opens the listener http.addr and http.net describe, or takes the
// socket a service manager passed (socket activation): when LISTEN_PID is
// this process and LISTEN_FDS is 1, file descriptor 3 is the listener and
// http.addr and http.net are not used, as the reference says. Without
// http.addr registryd must be socket-activated.
func (s *Server) Listen() (net.Listener, error) {
	if l, ok, err := activatedListener(); ok || err != nil {
		return l, err
	}
	if s.cfg.HTTP.Addr == "" {
		return nil, errors.New("http.addr: not set, and registryd was not socket-activated (LISTEN_FDS); set http.addr, such as :5000")
	}
	network := s.cfg.HTTP.Net
	if network == "" {
		network = "tcp"
	}
	if network == "unix" {
		// A stale socket from an earlier run would make Listen fail. The
		// path is http.addr, from the operator's configuration.
		if fi, err := os.Lstat(s.cfg.HTTP.Addr); err == nil && fi.Mode()&os.ModeSocket != 0 { //nolint:gosec // G703: see above
			_ = os.Remove(s.cfg.HTTP.Addr) //nolint:gosec // G703: see above
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
		ReadHeaderTimeout: headerTimeout,
		IdleTimeout:       s.idleTimeout,
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

// activatedListener returns the socket passed by socket activation
// (sd_listen_fds: LISTEN_PID names this process, LISTEN_FDS counts the
// sockets from file descriptor 3 on); ok is false when there is none. The
// variables are unset so children do not take them for theirs.
func activatedListener() (l net.Listener, ok bool, err error) {
	fds, pid := os.Getenv("LISTEN_FDS"), os.Getenv("LISTEN_PID")
	if fds == "" || pid != strconv.Itoa(os.Getpid()) {
		return nil, false, nil
	}
	os.Unsetenv("LISTEN_FDS")
	os.Unsetenv("LISTEN_PID")
	os.Unsetenv("LISTEN_FDNAMES")
	switch n, err := strconv.Atoi(fds); {
	case err != nil || n < 1:
		return nil, true, fmt.Errorf("socket activation: LISTEN_FDS=%q is not a number of sockets", fds)
	case n > 1:
		return nil, true, fmt.Errorf("socket activation: %d sockets passed, registryd serves one", n)
	}
	f := os.NewFile(3, "activated-socket")
	defer f.Close()
	l, err = net.FileListener(f)
	if err != nil {
		return nil, true, fmt.Errorf("socket activation: file descriptor 3: %w", err)
	}
	return l, true, nil
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
// With validation off (see configuration.Validation.On) index children are
// not checked, as in Distribution.
func indexValidation(v *configuration.Validation) handlers.IndexValidation {
	if !v.On() {
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

// urlPolicy maps validation.manifests.urls to the handler's option, as
// Distribution reads it: with validation on, URLs must match one of the
// allow expressions and none of the deny ones, and with neither list set
// no URL is allowed; with validation off any http(s) URL passes. The
// expressions compiled when the configuration was validated.
func urlPolicy(v *configuration.Validation) handlers.URLPolicy {
	if !v.On() {
		return handlers.URLPolicy{}
	}
	u := v.Manifests.URLs
	if len(u.Allow) == 0 && len(u.Deny) == 0 {
		return handlers.DenyAllURLs
	}
	var p handlers.URLPolicy
	if len(u.Allow) > 0 {
		p.Allow = regexp.MustCompile(anyOf(u.Allow))
	}
	if len(u.Deny) > 0 {
		p.Deny = regexp.MustCompile(anyOf(u.Deny))
	}
	return p
}

// anyOf joins regular expressions into one that matches where any does.
func anyOf(exprs []string) string {
	parts := make([]string, len(exprs))
	for i, e := range exprs {
		parts[i] = "(?:" + e + ")"
	}
	return strings.Join(parts, "|")
}
