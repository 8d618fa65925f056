package server

import (
	"crypto/tls"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptrace"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/testutil"
	"github.com/berth-dev/berth/registryd/configuration"
)

// tlsServer starts a server with http.tls over files in a temporary
// directory; tlsExtra is added under http.tls.
func tlsServer(t *testing.T, ca *testutil.CA, tlsExtra, httpExtra string) (ls *liveServer, dir string) {
	t.Helper()
	dir = t.TempDir()
	cert, key := ca.Issue(t, "registry")
	writeFile(t, filepath.Join(dir, "tls.crt"), string(cert))
	writeFile(t, filepath.Join(dir, "tls.key"), string(key))
	cfg := testConfig(false, indent(`tls:
  certificate: `+filepath.Join(dir, "tls.crt")+`
  key: `+filepath.Join(dir, "tls.key")+"\n"+indent(tlsExtra, 2)+httpExtra, 2))
	path := filepath.Join(dir, "config.yml")
	writeFile(t, path, cfg)
	return startFromFile(t, path), dir
}

func tlsClient(pool *tlsConfigOpts) *http.Client {
	return &http.Client{Transport: &http.Transport{TLSClientConfig: pool.config(), ForceAttemptHTTP2: true}}
}

type tlsConfigOpts struct {
	ca         *testutil.CA
	cert       *tls.Certificate
	maxVersion uint16
}

func (o *tlsConfigOpts) config() *tls.Config {
	c := &tls.Config{RootCAs: o.ca.Pool(), MaxVersion: o.maxVersion}
	if o.cert != nil {
		// Always present the certificate, even when the server names
		// other acceptable CAs (Go would otherwise send none).
		c.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return o.cert, nil }
	}
	return c
}

func TestTLSHandshakeAndHTTP2(t *testing.T) {
	ca := testutil.NewCA(t, "test CA")
	ls, _ := tlsServer(t, ca, "", "")
	resp, err := tlsClient(&tlsConfigOpts{ca: ca}).Get("https://" + ls.addr + "/v2/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.TLS == nil {
		t.Fatalf("status %d, tls %v", resp.StatusCode, resp.TLS != nil)
	}
	if resp.ProtoMajor != 2 {
		t.Errorf("protocol %s, want HTTP/2 over TLS by default", resp.Proto)
	}
	if resp.TLS.Version < tls.VersionTLS12 {
		t.Errorf("TLS version %x", resp.TLS.Version)
	}
	// A client that does not trust the CA fails the handshake.
	if _, err := http.Get("https://" + ls.addr + "/v2/"); err == nil {
		t.Error("a client without the CA connected")
	}
	// A TLS 1.1 client is refused (minimum tls1.2 by default).
	if _, err := tlsClient(&tlsConfigOpts{ca: ca, maxVersion: tls.VersionTLS11}).Get("https://" + ls.addr + "/v2/"); err == nil {
		t.Error("a TLS 1.1 client connected")
	}
}

func TestTLSOptions(t *testing.T) {
	ca := testutil.NewCA(t, "test CA")
	t.Run("minimumtls tls1.3", func(t *testing.T) {
		ls, _ := tlsServer(t, ca, "minimumtls: tls1.3\n", "")
		if _, err := tlsClient(&tlsConfigOpts{ca: ca, maxVersion: tls.VersionTLS12}).Get("https://" + ls.addr + "/v2/"); err == nil {
			t.Error("a TLS 1.2 client connected")
		}
		resp, err := tlsClient(&tlsConfigOpts{ca: ca}).Get("https://" + ls.addr + "/v2/")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.TLS.Version != tls.VersionTLS13 {
			t.Errorf("version %x", resp.TLS.Version)
		}
	})
	t.Run("ciphersuites", func(t *testing.T) {
		ls, _ := tlsServer(t, ca, "ciphersuites:\n  - TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256\n", "")
		resp, err := tlsClient(&tlsConfigOpts{ca: ca, maxVersion: tls.VersionTLS12}).Get("https://" + ls.addr + "/v2/")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.TLS.CipherSuite != tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256 {
			t.Errorf("cipher suite %s", tls.CipherSuiteName(resp.TLS.CipherSuite))
		}
	})
	t.Run("http2 disabled", func(t *testing.T) {
		ls, _ := tlsServer(t, ca, "", "http2:\n  disabled: true\n")
		resp, err := tlsClient(&tlsConfigOpts{ca: ca}).Get("https://" + ls.addr + "/v2/")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.ProtoMajor != 1 {
			t.Errorf("protocol %s, want HTTP/1.1", resp.Proto)
		}
	})
}

func TestTLSConfigErrors(t *testing.T) {
	dir := t.TempDir()
	ca := testutil.NewCA(t, "CA")
	caFile := ca.WriteCert(t, filepath.Join(dir, "ca.pem"))
	cert, key := ca.IssueFiles(t, dir, "registry")
	tests := map[string]struct {
		tls  configuration.TLS
		want string
	}{
		"unknown cipher suite":          {tls: configuration.TLS{CipherSuites: []string{"TLS_AES_128_GCM_SHA256", "TLS_MADE_UP"}}, want: "http.tls.ciphersuites[1]"},
		"no cipher suite HTTP/2 needs":  {tls: configuration.TLS{CipherSuites: []string{"TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384"}, Certificate: cert, Key: key}, want: "http.tls.ciphersuites: HTTP/2 needs"},
		"letsencrypt without hosts":     {tls: configuration.TLS{LetsEncrypt: &configuration.LetsEncrypt{CacheFile: dir}}, want: "http.tls.letsencrypt.hosts: required"},
		"letsencrypt and a certificate": {tls: configuration.TLS{Certificate: cert, Key: key, LetsEncrypt: &configuration.LetsEncrypt{CacheFile: dir, Hosts: []string{"r.example.com"}}}, want: "http.tls.letsencrypt: cannot be used with http.tls.certificate"},
		"missing certificate":           {tls: configuration.TLS{Certificate: filepath.Join(dir, "nope.crt"), Key: filepath.Join(dir, "nope.key")}, want: "http.tls.certificate"},
		"missing client CA":             {tls: configuration.TLS{ClientCAs: []string{caFile, filepath.Join(dir, "nope.pem")}}, want: "http.tls.clientcas[1]"},
		"unknown minimum":               {tls: configuration.TLS{MinimumTLS: "ssl3"}, want: "http.tls.minimumtls"},
		"unknown client auth":           {tls: configuration.TLS{ClientCAs: []string{caFile}, ClientAuth: "maybe"}, want: "http.tls.clientauth"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, _, err := newTLSConfig(&tc.tls, true, slog.Default())
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to name %s", err, tc.want)
			}
		})
	}
}

func TestMutualTLS(t *testing.T) {
	ca := testutil.NewCA(t, "server CA")
	clientCA := testutil.NewCA(t, "client CA")
	other := testutil.NewCA(t, "other CA")
	setup := func(t *testing.T, mode string) *liveServer {
		dir := t.TempDir()
		writeFile(t, filepath.Join(dir, "client-ca.pem"), string(clientCA.CertPEM()))
		extra := "clientcas:\n  - " + filepath.Join(dir, "client-ca.pem") + "\n"
		if mode != "" {
			extra += "clientauth: " + mode + "\n"
		}
		ls, _ := tlsServer(t, ca, extra, "")
		return ls
	}
	get := func(ls *liveServer, cert *tls.Certificate) error {
		resp, err := tlsClient(&tlsConfigOpts{ca: ca, cert: cert}).Get("https://" + ls.addr + "/v2/")
		if err == nil {
			resp.Body.Close()
		}
		return err
	}
	good := clientCA.Certificate(t, "alice")
	bad := other.Certificate(t, "mallory")

	t.Run("default requires and verifies", func(t *testing.T) {
		ls := setup(t, "")
		if err := get(ls, nil); err == nil {
			t.Error("a client without a certificate was served")
		}
		if err := get(ls, &bad); err == nil {
			t.Error("a client with a certificate from another CA was served")
		}
		if err := get(ls, &good); err != nil {
			t.Errorf("a client with a good certificate: %v", err)
		}
	})
	t.Run("verify-client-cert-if-given", func(t *testing.T) {
		ls := setup(t, "verify-client-cert-if-given")
		if err := get(ls, nil); err != nil {
			t.Errorf("a client without a certificate: %v", err)
		}
		if err := get(ls, &bad); err == nil {
			t.Error("a client with a certificate from another CA was served")
		}
	})
}

func TestTLSCertificateReload(t *testing.T) {
	ca := testutil.NewCA(t, "test CA")
	ls, dir := tlsServer(t, ca, "", "")
	url := "https://" + ls.addr + "/v2/"

	// A keep-alive connection opened before the swap.
	kept := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool()}}}
	resp, err := kept.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body) // so the connection goes back to the pool
	resp.Body.Close()
	oldSerial := resp.TLS.PeerCertificates[0].SerialNumber

	cert, key := ca.Issue(t, "registry renewed")
	newCert, err := tls.X509KeyPair(cert, key)
	if err != nil {
		t.Fatal(err)
	}
	newSerial := newCert.Leaf.SerialNumber
	// Write the pair the way a Secret update lands: new files renamed in.
	writeFile(t, filepath.Join(dir, "tls.key.new"), string(key))
	writeFile(t, filepath.Join(dir, "tls.crt.new"), string(cert))
	if err := os.Rename(filepath.Join(dir, "tls.key.new"), filepath.Join(dir, "tls.key")); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(dir, "tls.crt.new"), filepath.Join(dir, "tls.crt")); err != nil {
		t.Fatal(err)
	}

	fresh := func() *http.Client {
		return &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool()}, DisableKeepAlives: true}}
	}
	testutil.Eventually(t, "a new connection to get the new certificate", func() bool {
		resp, err := fresh().Get(url)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.TLS.PeerCertificates[0].SerialNumber.Cmp(newSerial) == 0
	})

	// The connection opened before the swap still works, on its certificate.
	var reused bool
	req, _ := http.NewRequest("GET", url, nil)
	req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
		GotConn: func(i httptrace.GotConnInfo) { reused = i.Reused },
	}))
	resp, err = kept.Do(req)
	if err != nil {
		t.Fatalf("the connection from before the swap: %v", err)
	}
	resp.Body.Close()
	if !reused {
		t.Error("the connection from before the swap was not reused (dropped?)")
	}
	if resp.TLS.PeerCertificates[0].SerialNumber.Cmp(oldSerial) != 0 {
		t.Error("the kept connection changed certificate")
	}
}

// TestClientCARotation rotates the client CA file as a Secret update
// does: clients of the new CA are served without a restart, clients of the
// old one are refused, HTTP/2 is still negotiated, and a connection
// opened before the rotation keeps working.
func TestClientCARotation(t *testing.T) {
	ca := testutil.NewCA(t, "server CA")
	oldCA := testutil.NewCA(t, "client CA 2025")
	newCA := testutil.NewCA(t, "client CA 2026")
	caDir := t.TempDir()
	caFile := filepath.Join(caDir, "ca.crt")
	writeFile(t, caFile, string(oldCA.CertPEM()))
	ls, _ := tlsServer(t, ca, "clientcas:\n  - "+caFile+"\n", "")
	url := "https://" + ls.addr + "/v2/"
	oldClient, newClient := oldCA.Certificate(t, "alice"), newCA.Certificate(t, "bob")
	get := func(c *http.Client) (*http.Response, error) {
		resp, err := c.Get(url)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		return resp, err
	}
	fresh := func(cert *tls.Certificate) *http.Client {
		c := tlsClient(&tlsConfigOpts{ca: ca, cert: cert})
		c.Transport.(*http.Transport).DisableKeepAlives = true
		return c
	}

	kept := tlsClient(&tlsConfigOpts{ca: ca, cert: &oldClient})
	resp, err := get(kept)
	if err != nil {
		t.Fatalf("a client of the configured CA: %v", err)
	}
	if resp.Proto != "HTTP/2.0" {
		t.Errorf("protocol %s with client CAs, want HTTP/2.0", resp.Proto)
	}
	if _, err := get(fresh(&newClient)); err == nil {
		t.Fatal("a client of a CA not configured yet was served")
	}

	// The Secret update: the new CA renamed over the file.
	writeFile(t, caFile+".new", string(newCA.CertPEM()))
	if err := os.Rename(caFile+".new", caFile); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, "a client of the new CA to be served", func() bool {
		_, err := get(fresh(&newClient))
		return err == nil
	})
	if _, err := get(fresh(&oldClient)); err == nil {
		t.Error("a new connection with a certificate of the old CA was served after the rotation")
	}
	if _, err := get(kept); err != nil {
		t.Errorf("the connection opened before the rotation: %v", err)
	}

	// A broken update keeps the CAs loaded last.
	writeFile(t, caFile+".new", "not a certificate")
	if err := os.Rename(caFile+".new", caFile); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, "the failed reload to be logged", func() bool {
		return strings.Contains(ls.logs.String(), "Reloading the TLS client CAs failed")
	})
	if _, err := get(fresh(&newClient)); err != nil {
		t.Errorf("after a broken update, a client of the CA loaded last: %v", err)
	}
}

func TestH2C(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "config.yml")
	writeFile(t, path, testConfig(false, "  h2c:\n    enabled: true\n"))
	ls := startFromFile(t, path)
	p := new(http.Protocols)
	p.SetUnencryptedHTTP2(true)
	c := &http.Client{Transport: &http.Transport{Protocols: p}}
	resp, err := c.Get("http://" + ls.addr + "/v2/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.ProtoMajor != 2 {
		t.Errorf("status %d over %s, want 200 over HTTP/2", resp.StatusCode, resp.Proto)
	}
}

func TestStartRefusesWhatItCannotHonour(t *testing.T) {
	dir := t.TempDir()
	tests := map[string]struct {
		extra string
		want  string
	}{
		"letsencrypt": {extra: "  tls:\n    letsencrypt:\n      cachefile: " + filepath.Join(dir, "cache") + "\n      email: a@example.com\n", want: "http.tls.letsencrypt"},
		"two auth providers": {extra: "auth:\n  silly:\n    realm: r\n    service: s\n  htpasswd:\n    realm: r\n    path: " + filepath.Join(dir, "htpasswd") + "\n",
			want: "auth: more than one auth provider configured"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			cfg, err := configuration.ParseWithEnv(strings.NewReader(testConfig(false, tc.extra)), nil)
			if err == nil {
				_, err = New(cfg, Options{})
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one naming %s", err, tc.want)
			}
		})
	}
}
