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

	"github.com/berth-dev/berth/registryd/configuration"
	"github.com/berth-dev/berth/registryd/internal/filewatch"
)

// TLS (http.tls). The certificate and key are read at start and again
// whenever either file changes on disk (a Secret update, cert-manager
// renewal): tls.Config.GetCertificate hands every new handshake the pair
// loaded last, so established connections keep theirs and nothing is
// dropped. A pair that fails to load (a half-written update) is logged and
// the previous pair stays in use. The client CAs, minimum version and
// cipher suites are read once; changing them needs a restart.
//
// Defaults follow Distribution: TLS 1.2 minimum, Go's default cipher suites,
// and with clientcas set, require-and-verify-client-cert. The TLS 1.3
// suites are always on in Go and cannot be turned off; naming them in
// ciphersuites is allowed and changes nothing. letsencrypt is not
// implemented (refused at start by the feature gate).

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

// certReloader serves the certificate pair last loaded from disk.
type certReloader struct {
	certFile, keyFile string
	log               *slog.Logger
	cert              atomic.Pointer[tls.Certificate]
	watch             *filewatch.Watcher
}

func newCertReloader(certFile, keyFile string, log *slog.Logger) (*certReloader, error) {
	c := &certReloader{certFile: certFile, keyFile: keyFile, log: log}
	if err := c.load(); err != nil {
		return nil, fmt.Errorf("http.tls.certificate: %w", err)
	}
	w, err := filewatch.New(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("http.tls.certificate: %w", err)
	}
	w.OnError(func(err error) { log.Warn("Watching the TLS certificate", "error", err) })
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

func (c *certReloader) getCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return c.cert.Load(), nil
}

// Run reloads the pair whenever its files change until ctx ends.
func (c *certReloader) Run(ctx context.Context) {
	c.watch.Run(ctx, func() {
		if err := c.load(); err != nil {
			c.log.Error("Reloading the TLS certificate failed; serving the previous one", "certificate", c.certFile, "key", c.keyFile, "error", err)
		}
	})
}

// newTLSConfig builds the server's tls.Config from http.tls, and the
// reloader whose Run keeps its certificate current.
func newTLSConfig(t *configuration.TLS, http2 bool, log *slog.Logger) (*tls.Config, *certReloader, error) {
	if t.LetsEncrypt != nil {
		return nil, nil, fmt.Errorf("http.tls.letsencrypt: not supported")
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
		pool := x509.NewCertPool()
		for i, path := range t.ClientCAs {
			pem, err := os.ReadFile(path)
			if err != nil {
				return nil, nil, fmt.Errorf("http.tls.clientcas[%d]: %w", i, err)
			}
			if !pool.AppendCertsFromPEM(pem) {
				return nil, nil, fmt.Errorf("http.tls.clientcas[%d]: no PEM certificates in %s", i, path)
			}
		}
		conf.ClientCAs = pool
		conf.ClientAuth = tls.RequireAndVerifyClientCert
		if t.ClientAuth != "" {
			mode, ok := clientAuthModes[strings.ToLower(t.ClientAuth)]
			if !ok {
				return nil, nil, fmt.Errorf("http.tls.clientauth: %q is not a client auth mode", t.ClientAuth)
			}
			conf.ClientAuth = mode
		}
	}
	rl, err := newCertReloader(t.Certificate, t.Key, log)
	if err != nil {
		return nil, nil, err
	}
	conf.GetCertificate = rl.getCertificate
	return conf, rl, nil
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
