// Package letsencrypt checks registryd's http.tls.letsencrypt against a
// real ACME server: Let's Encrypt's test server pebble, with its
// companion pebble-challtestsrv as the DNS server that resolves the
// registry's host name to 127.0.0.1 (both built from the Go module proxy
// by hack/install-pebble.sh). pebble validates the TLS-ALPN-01 challenge on
// registryd's own TLS port, as Let's Encrypt would on port 443.
package letsencrypt

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/testutil"
)

// host is the name the registry gets a certificate for.
const host = "registry.test"

func freePort(t *testing.T) int {
	t.Helper()
	addr := testutil.FreeAddr(t)
	_, p, _ := net.SplitHostPort(addr)
	n, _ := strconv.Atoi(p)
	return n
}

func loopback(port int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) }

// acmeServer is pebble and its DNS companion.
type acmeServer struct {
	directory string         // the ACME directory URL
	roots     *x509.CertPool // what pebble's certificates chain to
	caFile    string         // the CA of pebble's own HTTPS listener
	pebble    *testutil.Process
}

// startACME starts pebble validating TLS-ALPN-01 on tlsPort, resolving
// every name to 127.0.0.1.
func startACME(t *testing.T, tlsPort int) *acmeServer {
	t.Helper()
	dir := testutil.HackTool(t, "PEBBLE_DIR", "install-pebble.sh")
	work := t.TempDir()

	dnsPort := freePort(t)
	testutil.StartProcess(t, "pebble-challtestsrv", exec.Command(filepath.Join(dir, "pebble-challtestsrv"),
		"-defaultIPv4", "127.0.0.1", "-defaultIPv6", "",
		"-dnsserver", loopback(dnsPort), "-management", loopback(freePort(t)),
		"-http01", "", "-https01", "", "-tlsalpn01", "", "-doh", ""), func() bool {
		c, err := net.DialTimeout("tcp", loopback(dnsPort), time.Second)
		if err == nil {
			c.Close()
		}
		return err == nil
	})

	// pebble serves ACME over HTTPS with a certificate of a CA made here;
	// registryd trusts it through SSL_CERT_FILE.
	ca := testutil.NewCA(t, "pebble listener CA")
	cert, key := ca.IssueFiles(t, work, "pebble")
	a := &acmeServer{caFile: ca.WriteCert(t, filepath.Join(work, "listener-ca.pem"))}
	apiPort, mgmtPort := freePort(t), freePort(t)
	config := map[string]any{"pebble": map[string]any{
		"listenAddress":                  loopback(apiPort),
		"managementListenAddress":        loopback(mgmtPort),
		"certificate":                    cert,
		"privateKey":                     key,
		"httpPort":                       freePort(t),
		"tlsPort":                        tlsPort,
		"ocspResponderURL":               "",
		"externalAccountBindingRequired": false,
	}}
	b, _ := json.Marshal(config)
	cfgFile := filepath.Join(work, "pebble.json")
	if err := os.WriteFile(cfgFile, b, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(filepath.Join(dir, "pebble"), "-config", cfgFile, "-dnsserver", loopback(dnsPort))
	// No random sleeps before validation, no random nonce rejections.
	cmd.Env = append(os.Environ(), "PEBBLE_VA_NOSLEEP=1", "PEBBLE_WFE_NONCEREJECT=0")
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool()}}}
	a.directory = "https://" + loopback(apiPort) + "/dir"
	a.pebble = testutil.StartProcess(t, "pebble", cmd, func() bool {
		resp, err := client.Get(a.directory)
		if err == nil {
			resp.Body.Close()
		}
		return err == nil && resp.StatusCode == http.StatusOK
	})
	// The root pebble issues from, from its management interface.
	resp, err := client.Get("https://" + loopback(mgmtPort) + "/roots/0")
	if err != nil {
		t.Fatal(err)
	}
	pem, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	a.roots = x509.NewCertPool()
	if !a.roots.AppendCertsFromPEM(pem) {
		t.Fatalf("pebble's root: %s", pem)
	}
	return a
}

// startRegistryd runs registryd serve with letsencrypt on 127.0.0.1:port,
// trusting caFile for the ACME server's HTTPS, ready once the port
// accepts connections.
func startRegistryd(t *testing.T, port int, cacheDir, directory, caFile string) *testutil.Process {
	t.Helper()
	cfg := filepath.Join(t.TempDir(), "config.yml")
	yml := "version: 0.1\nlog: {level: debug, accesslog: {disabled: true}}\nstorage: {inmemory: {}}\n" +
		"http:\n  addr: " + loopback(port) + "\n  tls:\n    letsencrypt:\n" +
		"      cachefile: " + cacheDir + "\n      email: ops@example.com\n      hosts: [" + host + "]\n" +
		"      directoryurl: " + directory + "\n"
	if err := os.WriteFile(cfg, []byte(yml), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(testutil.Registryd(t), "serve", cfg)
	cmd.Env = append(os.Environ(), "SSL_CERT_FILE="+caFile)
	return testutil.StartProcess(t, "registryd", cmd, func() bool {
		c, err := net.DialTimeout("tcp", loopback(port), time.Second)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
}

// get asks registryd for /v2/ as https://<serverName>/, trusting roots.
func get(port int, serverName string, roots *x509.CertPool) (*http.Response, error) {
	dial := func(ctx context.Context, network, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, loopback(port))
	}
	c := &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{
		DialContext:     dial,
		TLSClientConfig: &tls.Config{RootCAs: roots, ServerName: serverName},
	}}
	resp, err := c.Get("https://" + serverName + "/v2/")
	if err == nil {
		resp.Body.Close()
	}
	return resp, err
}

// TestLetsEncrypt: registryd obtains a certificate for its host from the
// ACME server on the first handshake (TLS-ALPN-01 on its own port), serves
// the API with it, refuses hosts not listed, and after a restart serves
// the certificate kept in cachefile with the ACME server gone.
func TestLetsEncrypt(t *testing.T) {
	port := freePort(t)
	acme := startACME(t, port)
	cacheDir := filepath.Join(t.TempDir(), "acme-cache")
	reg := startRegistryd(t, port, cacheDir, acme.directory, acme.caFile)

	resp, err := get(port, host, acme.roots)
	if err != nil {
		t.Fatalf("GET https://%s/v2/: %v\nregistryd:\n%s\npebble:\n%s", host, err, reg.Log(), acme.pebble.Log())
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /v2/: %d", resp.StatusCode)
	}
	leaf := resp.TLS.PeerCertificates[0]
	if leaf.VerifyHostname(host) != nil || !strings.Contains(leaf.Issuer.CommonName, "Pebble") {
		t.Errorf("certificate for %v issued by %q", leaf.DNSNames, leaf.Issuer.CommonName)
	}
	if _, err := get(port, "other.test", acme.roots); err == nil {
		t.Error("a handshake for a host not in letsencrypt.hosts got a certificate")
	}
	entries, err := os.ReadDir(cacheDir)
	if err != nil || len(entries) == 0 {
		t.Fatalf("cachefile %s holds nothing: %v", cacheDir, err)
	}

	// Restart with the ACME server gone: the cached certificate serves.
	reg.Stop(t)
	acme.pebble.Stop(t)
	startRegistryd(t, port, cacheDir, acme.directory, acme.caFile)
	again, err := get(port, host, acme.roots)
	if err != nil {
		t.Fatalf("after a restart without the ACME server: %v", err)
	}
	if !again.TLS.PeerCertificates[0].Equal(leaf) {
		t.Error("after a restart the registry serves another certificate than the one cached")
	}
}
