package server

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/berth-dev/berth/registryd/configuration"
)

// TestHTTPHeaders: http.headers are added to every response, the API's and
// the errors'.
func TestHTTPHeaders(t *testing.T) {
	h := newTestHandler(t, "") // the default: no extra header
	for _, path := range []string{"/v2/", "/v2/nope/manifests/latest"} {
		if rec := serveReq(t, h, "GET", path, "", nil); rec.Header().Get("X-Content-Type-Options") != "" {
			t.Fatalf("a header nobody configured: %v", rec.Header())
		}
	}
	yml := "version: 0.1\nlog: {accesslog: {disabled: true}}\nstorage: {inmemory: {}}\nhttp:\n  addr: 127.0.0.1:0\n  headers:\n    X-Content-Type-Options: [nosniff]\n    Strict-Transport-Security: [max-age=31536000]\n    X-Two: [a, b]\n"
	cfg, err := configuration.ParseWithEnv(strings.NewReader(yml), nil)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := New(cfg, Options{Logger: slog.New(slog.DiscardHandler), AccessLog: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/v2/", "/v2/nope/manifests/latest"} {
		rec := httptest.NewRecorder()
		srv.Handler().ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
		hd := rec.Header()
		if hd.Get("X-Content-Type-Options") != "nosniff" || hd.Get("Strict-Transport-Security") != "max-age=31536000" || strings.Join(hd.Values("X-Two"), ",") != "a,b" {
			t.Errorf("GET %s (%d): headers %v", path, rec.Code, hd)
		}
	}
}

// TestUnixSocket: http.net unix serves on the socket http.addr names,
// replacing a stale socket file left by an earlier run.
func TestUnixSocket(t *testing.T) {
	dir, err := os.MkdirTemp("", "berth-sock-") // short: socket paths are limited
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	sock := filepath.Join(dir, "registry.sock")
	stale, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	stale.(*net.UnixListener).SetUnlinkOnClose(false)
	stale.Close()

	cfg, err := configuration.ParseWithEnv(strings.NewReader("version: 0.1\nlog: {accesslog: {disabled: true}}\nstorage: {inmemory: {}}\nhttp: {net: unix, addr: "+sock+"}\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	ls := startServer(t, cfg, "")
	if ls.addr != sock {
		t.Fatalf("listening on %s, want %s", ls.addr, sock)
	}
	c := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}}, Timeout: 5 * time.Second}
	resp, err := c.Get("http://registry/v2/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /v2/ over the socket: %d", resp.StatusCode)
	}
}

// TestBlobDescriptorCacheConfiguration: storage.cache.blobdescriptor (and
// its former name layerinfo) make blob lookups answer from the cache, which
// a test sees by removing a blob's file behind the registry's back;
// blobdescriptorsize bounds it. Without the section every lookup reads
// storage.
func TestBlobDescriptorCacheConfiguration(t *testing.T) {
	type blob struct {
		d    digest.Digest
		path string
	}
	setup := func(t *testing.T, cache string) (http.Handler, []blob) {
		root := t.TempDir()
		h := newStorageHandler(t, "storage:\n  filesystem: {rootdirectory: "+root+"}\n"+cache)
		var blobs []blob
		for _, c := range []string{"first", "second"} {
			d := putBlob(t, h, "app", []byte(c))
			blobs = append(blobs, blob{d, filepath.Join(root, "docker/registry/v2/blobs/sha256", d.Encoded()[:2], d.Encoded(), "data")})
		}
		return h, blobs
	}
	head := func(t *testing.T, h http.Handler, d digest.Digest) int {
		return serveReq(t, h, "HEAD", "/v2/app/blobs/"+d.String(), "", nil).Code
	}
	for name, tc := range map[string]struct {
		cache string
		// cached: whether each blob is still answered from the cache once
		// its file is gone.
		cached []bool
	}{
		"no cache":                         {"", []bool{false, false}},
		"blobdescriptor: inmemory":         {"  cache: {blobdescriptor: inmemory}\n", []bool{true, true}},
		"layerinfo: inmemory":              {"  cache: {layerinfo: inmemory}\n", []bool{true, true}},
		"blobdescriptorsize: 2":            {"  cache: {blobdescriptor: inmemory, blobdescriptorsize: 2}\n", []bool{false, true}},
		"blobdescriptorsize: 0 (no bound)": {"  cache: {blobdescriptor: inmemory, blobdescriptorsize: 0}\n", []bool{true, true}},
	} {
		t.Run(name, func(t *testing.T) {
			h, blobs := setup(t, tc.cache)
			// One lookup of each, in order: a link and a size each, so a
			// cache of two entries keeps the second blob only.
			for _, b := range blobs {
				if code := head(t, h, b.d); code != http.StatusOK {
					t.Fatalf("HEAD %s: %d", b.d, code)
				}
			}
			for _, b := range blobs {
				if err := os.Remove(b.path); err != nil {
					t.Fatal(err)
				}
			}
			for i, b := range blobs {
				want := http.StatusNotFound
				if tc.cached[i] {
					want = http.StatusOK
				}
				if code := head(t, h, b.d); code != want {
					t.Errorf("HEAD of blob %d with its file gone: %d, want %d", i, code, want)
				}
			}
			// A GET finds the content gone whatever the cache said, and
			// evicts it.
			if code := serveReq(t, h, "GET", "/v2/app/blobs/"+blobs[1].d.String(), "", nil).Code; code == http.StatusOK {
				t.Errorf("GET of a blob whose file is gone: %d", code)
			}
			if code := head(t, h, blobs[1].d); code != http.StatusNotFound {
				t.Errorf("HEAD after the GET found the content gone: %d", code)
			}
		})
	}
}

// newStorageHandler is newTestHandler with a storage section of its own.
func newStorageHandler(t *testing.T, storage string) http.Handler {
	t.Helper()
	yml := "version: 0.1\nlog: {accesslog: {disabled: true}}\n" + storage + "http: {addr: \"127.0.0.1:0\"}\n"
	cfg, err := configuration.ParseWithEnv(strings.NewReader(yml), nil)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := New(cfg, Options{Logger: slog.New(slog.DiscardHandler), AccessLog: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	return srv.Handler()
}
