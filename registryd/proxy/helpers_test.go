package proxy_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/opencontainers/go-digest"
	"golang.org/x/crypto/bcrypt"

	"github.com/berth-dev/berth/internal/testutil"
	"github.com/berth-dev/berth/registryd/auth"
	"github.com/berth-dev/berth/registryd/configuration"
	"github.com/berth-dev/berth/registryd/handlers"
	"github.com/berth-dev/berth/registryd/proxy"
	"github.com/berth-dev/berth/registryd/server"
	"github.com/berth-dev/berth/registryd/storage"
	fsdriver "github.com/berth-dev/berth/registryd/storage/driver/filesystem"
)

// registry is a registryd server serving on loopback in this process.
type registry struct {
	addr string
	root string // filesystem root, "" for inmemory storage
	logs *testutil.LockedBuffer
	stop func()
}

// startRegistryd serves a configuration made of the storage section and
// extra sections, on a free loopback port, until the test ends or stop.
// wrap, when set, wraps the server's handler.
func startRegistryd(t *testing.T, storage, extra string, wrap func(http.Handler) http.Handler) *registry {
	t.Helper()
	yml := "version: 0.1\nlog: {level: debug, accesslog: {disabled: true}}\n" + storage + "http: {addr: \"127.0.0.1:0\"}\n" + extra
	cfg, err := configuration.ParseWithEnv(strings.NewReader(yml), nil)
	if err != nil {
		t.Fatalf("%v\n%s", err, yml)
	}
	logs := &testutil.LockedBuffer{}
	srv, err := server.New(cfg, server.Options{Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})), AccessLog: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	l, err := srv.Listen()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	if wrap != nil {
		hs := &http.Server{Handler: wrap(srv.Handler())}
		go func() { done <- hs.Serve(l) }()
		go func() { <-ctx.Done(); _ = hs.Close() }()
	} else {
		go func() { done <- srv.Serve(ctx, l) }()
	}
	r := &registry{addr: l.Addr().String(), logs: logs}
	var once sync.Once
	r.stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil && !errors.Is(err, http.ErrServerClosed) {
					t.Errorf("Serve: %v", err)
				}
			case <-time.After(30 * time.Second):
				t.Error("server did not stop")
			}
		})
	}
	t.Cleanup(func() {
		r.stop()
		if t.Failed() {
			t.Logf("log of %s:\n%s", r.addr, logs.String())
		}
	})
	return r
}

func inmemory() string { return "storage: {inmemory: {}}\n" }

func filesystem(root string) string {
	return "storage: {filesystem: {rootdirectory: " + root + "}}\n"
}

// proxyOf is the proxy section for upstream with extra keys.
func proxyOf(upstream *registry, keys string) string {
	return "proxy:\n  remoteurl: http://" + upstream.addr + "\n" + keys
}

func ref(t *testing.T, r *registry, s string) name.Reference {
	t.Helper()
	ref, err := name.ParseReference(r.addr+"/"+s, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	return ref
}

// pushImage pushes a random image of n layers to upstream as repo:tag.
func pushImage(t *testing.T, r *registry, repo string, n int, opts ...remote.Option) v1.Image {
	t.Helper()
	img, err := random.Image(4096, int64(n))
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref(t, r, repo), img, opts...); err != nil {
		t.Fatal(err)
	}
	return img
}

// pulled is an image pulled completely: manifest, config and layers.
type pulled struct {
	manifest []byte
	blobs    map[string][]byte
}

func pull(r name.Reference, opts ...remote.Option) (*pulled, error) {
	img, err := remote.Image(r, opts...)
	if err != nil {
		return nil, err
	}
	return read(img)
}

func read(img v1.Image) (*pulled, error) {
	m, err := img.RawManifest()
	if err != nil {
		return nil, err
	}
	blobs, err := testutil.ReadImageBlobs(img)
	if err != nil {
		return nil, err
	}
	return &pulled{manifest: m, blobs: blobs}, nil
}

// samePulled fails the test unless got is want, byte for byte.
func samePulled(t *testing.T, what string, got, want *pulled) {
	t.Helper()
	if !bytes.Equal(got.manifest, want.manifest) {
		t.Errorf("%s: the manifest differs", what)
	}
	if len(got.blobs) != len(want.blobs) {
		t.Errorf("%s: %d blobs, want %d", what, len(got.blobs), len(want.blobs))
	}
	for d, b := range want.blobs {
		if !bytes.Equal(got.blobs[d], b) {
			t.Errorf("%s: blob %s differs", what, d)
		}
	}
}

// blobStored reports whether the filesystem root holds blob d's content.
func blobStored(root, d string) bool {
	alg, hex, _ := strings.Cut(d, ":")
	_, err := os.Stat(filepath.Join(root, "docker/registry/v2/blobs", alg, hex[:2], hex, "data"))
	return err == nil
}

// htpasswd writes an htpasswd file with one bcrypt user and returns the
// auth section that uses it.
func htpasswd(t *testing.T, user, password string) string {
	t.Helper()
	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "htpasswd")
	if err := os.WriteFile(p, []byte(user+":"+string(hash)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return "auth:\n  htpasswd:\n    realm: upstream\n    path: " + p + "\n"
}

// tokenService is a token server for the upstream's auth.token: it checks
// Basic credentials and issues an ES256 JWT granting the scope asked for.
type tokenService struct {
	srv      *httptest.Server
	key      *ecdsa.PrivateKey
	jwks     string
	user     string
	password string

	mu     sync.Mutex
	issued int
}

func newTokenService(t *testing.T, user, password string) *tokenService {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ts := &tokenService{key: key, user: user, password: password, jwks: filepath.Join(t.TempDir(), "jwks.json")}
	set, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: key.Public(), KeyID: "test-key", Algorithm: "ES256", Use: "sig"}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(ts.jwks, set, 0o600); err != nil {
		t.Fatal(err)
	}
	ts.srv = httptest.NewServer(http.HandlerFunc(ts.serve))
	t.Cleanup(ts.srv.Close)
	return ts
}

func (ts *tokenService) serve(w http.ResponseWriter, r *http.Request) {
	if u, p, ok := r.BasicAuth(); !ok || u != ts.user || p != ts.password {
		http.Error(w, "bad credentials", http.StatusUnauthorized)
		return
	}
	var access []auth.ResourceActions
	for _, scope := range r.URL.Query()["scope"] {
		parts := strings.Split(scope, ":")
		if len(parts) == 3 {
			access = append(access, auth.ResourceActions{Type: parts[0], Name: parts[1], Actions: strings.Split(parts[2], ",")})
		}
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: ts.key}, (&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", "test-key"))
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	now := time.Now()
	raw, err := jwt.Signed(signer).Claims(jwt.Claims{
		Issuer: "test-issuer", Subject: ts.user, Audience: jwt.Audience{r.URL.Query().Get("service")},
		IssuedAt: jwt.NewNumericDate(now), NotBefore: jwt.NewNumericDate(now), Expiry: jwt.NewNumericDate(now.Add(time.Hour)),
	}).Claims(auth.Claims{Access: access}).Serialize()
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	ts.mu.Lock()
	ts.issued++
	ts.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"token": raw, "expires_in": 3600})
}

// authSection is the upstream's auth.token section. The realm names the
// token service by host name: go-containerregistry refuses a realm that is
// a private or loopback IP literal (unless it is the registry's own
// host:port), against registries that would point it at internal services.
func (ts *tokenService) authSection() string {
	realm := strings.Replace(ts.srv.URL, "127.0.0.1", "localhost", 1) + "/token"
	return "auth:\n  token:\n    realm: " + realm + "\n    service: upstream\n    issuer: test-issuer\n    jwks: " + ts.jwks + "\n"
}

func (ts *tokenService) tokensIssued() int {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return ts.issued
}

func basic(user, password string) remote.Option {
	return remote.WithAuth(&authn.Basic{Username: user, Password: password})
}

func mustDigest(t *testing.T, img v1.Image) string {
	t.Helper()
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d.String()
}

func mustConfigDigest(t *testing.T, img v1.Image) string {
	t.Helper()
	d, err := img.ConfigName()
	if err != nil {
		t.Fatal(err)
	}
	return d.String()
}

// pushBlob uploads content monolithically into repo and returns its digest.
func pushBlob(t *testing.T, r *registry, repo string, content []byte) string {
	t.Helper()
	d := digest.FromBytes(content).String()
	resp, err := http.Post("http://"+r.addr+"/v2/"+repo+"/blobs/uploads/?digest="+d, "application/octet-stream", bytes.NewReader(content))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("push blob: %d", resp.StatusCode)
	}
	return d
}

func asTransportError(err error, te **transport.Error) bool { return errors.As(err, te) }

// startLibraryCache serves a pull-through cache of upstream with Docker
// Hub's library/ convention over filesystem storage at root: built from
// the package's parts, since a server turns the convention on only for
// Docker Hub's own URL.
func startLibraryCache(t *testing.T, root string, upstream *registry) *registry {
	t.Helper()
	drv, err := fsdriver.New(fsdriver.Parameters{RootDirectory: root})
	if err != nil {
		t.Fatal(err)
	}
	c, err := proxy.New(storage.New(drv), proxy.Options{RemoteURL: "http://" + upstream.addr, LibraryPrefix: true})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(handlers.New(drv, handlers.WithPullThrough(c)))
	t.Cleanup(srv.Close)
	return &registry{addr: strings.TrimPrefix(srv.URL, "http://"), root: root, logs: &testutil.LockedBuffer{}, stop: srv.Close}
}

// noRetry makes a client give up at the first error (go-containerregistry
// retries 5xx answers with backoff by default).
var noRetry = remote.WithRetryBackoff(remote.Backoff{Steps: 1})

// waitStored waits until the filesystem root holds blob d.
func waitStored(t *testing.T, root, d string) {
	t.Helper()
	testutil.Eventually(t, "the cache stores blob "+d, func() bool { return blobStored(root, d) })
	// The data is in place before the store links it and removes its
	// upload; wait for that too, so that nothing writes under root once
	// the test ends and removes it.
	testutil.Eventually(t, "the cache to finish storing blob "+d, func() bool {
		left, err := filepath.Glob(filepath.Join(root, "docker/registry/v2/repositories/*/*/_uploads/*"))
		if err != nil {
			t.Fatal(err)
		}
		more, _ := filepath.Glob(filepath.Join(root, "docker/registry/v2/repositories/*/_uploads/*"))
		return len(left)+len(more) == 0
	})
}

// waitFile waits until path exists.
func waitFile(t *testing.T, path string) {
	t.Helper()
	testutil.EventuallyNoError(t, path+" exists", func() error {
		_, err := os.Stat(path)
		return err
	})
}
