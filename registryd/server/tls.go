package server

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync/atomic"

	"golang.org/x/crypto/acme"
	"golang.org/x/crypto/acme/autocert"

	"github.com/berth-dev/berth/registryd/configuration"
	"github.com/berth-dev/berth/registryd/internal/filewatch"
)

// TLS (http.tls). The certificate and key, and the client CAs, are read at
// start and again whenever one of their files changes on disk (a Secret
// update, cert-manager renewal, a rotated client CA): every new handshake
// gets the pair and the CA pool loaded last, so established connections
// keep theirs and nothing is dropped. Files that fail to load (a
// half-written update) are logged and what was loaded before stays in use.
// The minimum version, cipher suites and client auth mode are read once;
// changing them needs a restart.
//
// Defaults follow Distribution: TLS 1.2 minimum, Go's default cipher suites,
// and with clientcas set, require-and-verify-client-cert. The TLS 1.3
// suites are always on in Go and cannot be turned off; naming them in
// ciphersuites is allowed and changes nothing. With letsencrypt the
// certificates come from an ACME server instead of files (see
// newACMEManager); the client CAs still reload live.

var tlsVersions = map[string]uint16{
	"tls1.0": tls.VersionTLS10,
	"tls1.1": tls.VersionTLS11,
	"tls1.2": tls.VersionTLS12,
	"tls1.3": tls.VersionTLS13,
}

var clientAuthModes = map[string]tls.ClientAuthType{
	"request-client-cert":            tls.RequestClientCert,
	"require-any-client-cert":        tls.RequireAnyClientCert,
	"verify-client-cert-if-given":    tls.VerifyClientCertIfGiven,
	"require-and-verify-client-cert": tls.RequireAndVerifyClientCert,
}

// certReloader serves the certificate pair and the client CA pool last
// loaded from disk.
type certReloader struct {
	certFile, keyFile string
	caFiles           []string
	log               *slog.Logger
	cert              atomic.Pointer[tls.Certificate]
	// base is the server's configuration without client CAs; conf is a
	// copy with the client CA pool last loaded, which every handshake uses
	// (GetConfigForClient); nil without client CAs.
	base  *tls.Config
	conf  atomic.Pointer[tls.Config]
	cas   [][]byte           // the CA files' content last loaded
	watch *filewatch.Watcher // nil when no file is watched
	// getCert, when set, hands out the certificates instead of the files
	// (http.tls.letsencrypt).
	getCert func(*tls.ClientHelloInfo) (*tls.Certificate, error)
}

func newCertReloader(certFile, keyFile string, caFiles []string, base *tls.Config, log *slog.Logger) (*certReloader, error) {
	c := &certReloader{certFile: certFile, keyFile: keyFile, caFiles: caFiles, base: base, log: log}
	base.GetCertificate = c.getCertificate
	if err := c.loadCAs(); err != nil {
		return nil, err
	}
	files := caFiles
	if certFile != "" {
		if err := c.load(); err != nil {
			return nil, fmt.Errorf("http.tls.certificate: %w", err)
		}
		files = append([]string{certFile, keyFile}, caFiles...)
	}
	if len(files) == 0 {
		return c, nil
	}
	w, err := filewatch.New(files...)
	if err != nil {
		return nil, fmt.Errorf("http.tls: watching %s: %w", strings.Join(files, ", "), err)
	}
	w.OnError(func(err error) { log.Warn("Watching the TLS files", "error", err) })
	c.watch = w
	return c, nil
}

func (c *certReloader) load() error {
	pair, err := tls.LoadX509KeyPair(c.certFile, c.keyFile)
	if err != nil {
		return err
	}
	if old := c.cert.Load(); old != nil && slices.EqualFunc(old.Certificate, pair.Certificate, slices.Equal) {
		return nil
	}
	c.cert.Store(&pair)
	attrs := []any{"certificate", c.certFile}
	if pair.Leaf != nil {
		attrs = append(attrs, "subject", pair.Leaf.Subject.String(), "notAfter", pair.Leaf.NotAfter)
	}
	c.log.Info("Loaded TLS certificate", attrs...)
	return nil
}

// loadCAs reads http.tls.clientcas into a new per-handshake configuration
// when their content changed.
func (c *certReloader) loadCAs() error {
	if len(c.caFiles) == 0 {
		return nil
	}
	pems := make([][]byte, len(c.caFiles))
	pool := x509.NewCertPool()
	for i, path := range c.caFiles {
		pem, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("http.tls.clientcas[%d]: %w", i, err)
		}
		if !pool.AppendCertsFromPEM(pem) {
			return fmt.Errorf("http.tls.clientcas[%d]: no PEM certificates in %s", i, path)
		}
		pems[i] = pem
	}
	if c.conf.Load() != nil && slices.EqualFunc(c.cas, pems, slices.Equal) {
		return nil
	}
	conf := c.base.Clone()
	conf.ClientCAs = pool
	c.conf.Store(conf)
	c.cas = pems
	c.log.Info("Loaded TLS client CAs", "clientcas", strings.Join(c.caFiles, ","))
	return nil
}

func (c *certReloader) getCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	if c.getCert != nil {
		return c.getCert(hello)
	}
	return c.cert.Load(), nil
}

func (c *certReloader) getConfigForClient(*tls.ClientHelloInfo) (*tls.Config, error) {
	return c.conf.Load(), nil
}

// Run reloads the files whenever they change until ctx ends.
func (c *certReloader) Run(ctx context.Context) {
	if c.watch == nil {
		<-ctx.Done()
		return
	}
	c.watch.Run(ctx, func() {
		if c.certFile != "" {
			if err := c.load(); err != nil {
				c.log.Error("Reloading the TLS certificate failed; serving the previous one", "certificate", c.certFile, "key", c.keyFile, "error", err)
			}
		}
		if err := c.loadCAs(); err != nil {
			c.log.Error("Reloading the TLS client CAs failed; verifying with the previous ones", "error", err)
		}
	})
}

// newTLSConfig builds the server's tls.Config from http.tls, and the
// reloader whose Run keeps its certificate current.
func newTLSConfig(t *configuration.TLS, http2 bool, log *slog.Logger) (*tls.Config, *certReloader, error) {
	var acmeCerts *autocert.Manager
	if le := t.LetsEncrypt; le != nil {
		m, err := newACMEManager(t, log)
		if err != nil {
			return nil, nil, err
		}
		acmeCerts = m
	}
	conf := &tls.Config{MinVersion: tls.VersionTLS12}
	if t.MinimumTLS != "" {
		v, ok := tlsVersions[strings.ToLower(t.MinimumTLS)]
		if !ok {
			return nil, nil, fmt.Errorf("http.tls.minimumtls: %q is not one of tls1.0, tls1.1, tls1.2, tls1.3", t.MinimumTLS)
		}
		conf.MinVersion = v
	}
	if len(t.CipherSuites) > 0 {
		ids, err := cipherSuiteIDs(t.CipherSuites)
		if err != nil {
			return nil, nil, err
		}
		conf.CipherSuites = ids
		if http2 && !slices.ContainsFunc(ids, func(id uint16) bool {
			return id == tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256 || id == tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256
		}) {
			return nil, nil, fmt.Errorf("http.tls.ciphersuites: HTTP/2 needs TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256 or TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256; add one or set http.http2.disabled")
		}
	}
	if len(t.ClientCAs) > 0 {
		conf.ClientAuth = tls.RequireAndVerifyClientCert
		if t.ClientAuth != "" {
			mode, ok := clientAuthModes[strings.ToLower(t.ClientAuth)]
			if !ok {
				return nil, nil, fmt.Errorf("http.tls.clientauth: %q is not a client auth mode", t.ClientAuth)
			}
			conf.ClientAuth = mode
		}
	}
	// The configuration a handshake uses may come from
	// GetConfigForClient, which net/http does not fill in: name the
	// application protocols here.
	conf.NextProtos = []string{"http/1.1"}
	if http2 {
		conf.NextProtos = []string{"h2", "http/1.1"}
	}
	if acmeCerts != nil {
		conf.NextProtos = append(conf.NextProtos, acme.ALPNProto)
	}
	base := conf.Clone()
	rl, err := newCertReloader(t.Certificate, t.Key, t.ClientCAs, base, log)
	if err != nil {
		return nil, nil, err
	}
	if acmeCerts != nil {
		rl.getCert = acmeCerts.GetCertificate
	}
	conf.GetCertificate = rl.getCertificate
	if len(t.ClientCAs) > 0 {
		conf.GetConfigForClient = rl.getConfigForClient
	}
	return conf, rl, nil
}

// newACMEManager obtains and renews certificates for
// http.tls.letsencrypt.hosts from the ACME server at directoryurl (Let's
// Encrypt's when unset), as Distribution does: the TLS-ALPN-01 challenge is
// answered on the registry's own TLS port (which the ACME server must reach
// on port 443 of each host), the account and certificates are kept in the
// directory cachefile names, and the terms of service are accepted. A
// handshake for a host not listed is refused. hosts is required, and the
// certificate and key keys must not be set beside it.
func newACMEManager(t *configuration.TLS, log *slog.Logger) (*autocert.Manager, error) {
	le := t.LetsEncrypt
	if t.Certificate != "" || t.Key != "" {
		return nil, fmt.Errorf("http.tls.letsencrypt: cannot be used with http.tls.certificate and key; choose one")
	}
	if len(le.Hosts) == 0 {
		return nil, fmt.Errorf("http.tls.letsencrypt.hosts: required: without it no handshake may obtain a certificate")
	}
	m := &autocert.Manager{
		Prompt:     autocert.AcceptTOS,
		Cache:      autocert.DirCache(le.CacheFile),
		Email:      le.Email,
		HostPolicy: autocert.HostWhitelist(le.Hosts...),
	}
	if le.DirectoryURL != "" {
		m.Client = &acme.Client{DirectoryURL: le.DirectoryURL}
	}
	log.Info("TLS certificates from ACME", "hosts", strings.Join(le.Hosts, ","), "directory", cmpOr(le.DirectoryURL, acme.LetsEncryptURL), "cache", le.CacheFile)
	return m, nil
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// cipherSuiteIDs maps the reference's cipher suite names to Go's IDs.
func cipherSuiteIDs(names []string) ([]uint16, error) {
	known := map[string]uint16{}
	for _, cs := range append(tls.CipherSuites(), tls.InsecureCipherSuites()...) {
		known[cs.Name] = cs.ID
	}
	var ids []uint16
	for i, name := range names {
		id, ok := known[strings.ToUpper(name)]
		if !ok {
			return nil, fmt.Errorf("http.tls.ciphersuites[%d]: unknown cipher suite %q", i, name)
		}
		ids = append(ids, id)
	}
	return ids, nil
}
