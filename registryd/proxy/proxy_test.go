package proxy_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/berth-dev/berth/registryd/proxy"
)

// TestPullThrough pulls through a registryd pull-through cache an image
// only its upstream (a second registryd) has, byte for byte, with and
// without upstream credentials (Basic and token), then stops the upstream
// and pulls it again from what was stored.
func TestPullThrough(t *testing.T) {
	tokens := newTokenService(t, "robot", "t0ken")
	tests := map[string]struct {
		upstreamAuth string
		proxyKeys    string
		push         []remote.Option
	}{
		"anonymous upstream": {},
		"basic auth upstream": {
			upstreamAuth: htpasswd(t, "alice", "s3cret"),
			proxyKeys:    "  username: alice\n  password: s3cret\n",
			push:         []remote.Option{basic("alice", "s3cret")},
		},
		"token auth upstream": {
			upstreamAuth: tokens.authSection(),
			proxyKeys:    "  username: robot\n  password: t0ken\n",
			push:         []remote.Option{basic("robot", "t0ken")},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			up := startRegistryd(t, inmemory(), tc.upstreamAuth, nil)
			img := pushImage(t, up, "lib/app:v1", 3, tc.push...)
			want, err := read(img)
			if err != nil {
				t.Fatal(err)
			}
			root := t.TempDir()
			cache := startRegistryd(t, filesystem(root), proxyOf(up, tc.proxyKeys), nil)

			got, err := pull(ref(t, cache, "lib/app:v1"))
			if err != nil {
				t.Fatalf("pull through the cache: %v", err)
			}
			samePulled(t, "first pull", got, want)
			// A blob is committed once its last byte has gone to the
			// client, which may have finished reading before.
			for d := range want.blobs {
				waitStored(t, root, d)
			}

			up.stop()
			for _, r := range []string{"lib/app:v1", "lib/app@" + mustDigest(t, img)} {
				got, err := pull(ref(t, cache, r))
				if err != nil {
					t.Fatalf("pull %s with the upstream stopped: %v", r, err)
				}
				samePulled(t, "pull with the upstream stopped", got, want)
			}
			if _, err := pull(ref(t, cache, "lib/other:v1"), noRetry); err == nil {
				t.Error("an image never pulled was served with the upstream stopped")
			}
		})
	}
	if tokens.tokensIssued() == 0 {
		t.Error("the token service issued no token: the token case did not use it")
	}
}

// TestUpstreamCredentialsRefused: with wrong credentials upstream refuses
// the cache, which answers with an error instead of content.
func TestUpstreamCredentialsRefused(t *testing.T) {
	up := startRegistryd(t, inmemory(), htpasswd(t, "alice", "s3cret"), nil)
	pushImage(t, up, "lib/app:v1", 1, basic("alice", "s3cret"))
	cache := startRegistryd(t, inmemory(), proxyOf(up, "  username: alice\n  password: wrong\n"), nil)
	_, err := pull(ref(t, cache, "lib/app:v1"), noRetry)
	var te *transport.Error
	if err == nil || !asTransportError(err, &te) || te.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("pull with wrong upstream credentials: %v, want 503", err)
	}
}

// TestPushesAndDeletesRefused: a pull-through cache answers every write
// with 405 UNSUPPORTED.
func TestPushesAndDeletesRefused(t *testing.T) {
	up := startRegistryd(t, inmemory(), "", nil)
	img := pushImage(t, up, "lib/app:v1", 1)
	cache := startRegistryd(t, inmemory(), proxyOf(up, ""), nil)
	if _, err := pull(ref(t, cache, "lib/app:v1")); err != nil {
		t.Fatal(err)
	}
	base := "http://" + cache.addr + "/v2/lib/app/"
	for _, r := range []struct{ method, url string }{
		{"POST", base + "blobs/uploads/"},
		{"PUT", base + "manifests/v2"},
		{"DELETE", base + "manifests/v1"},
		{"DELETE", base + "manifests/" + mustDigest(t, img)},
		{"DELETE", base + "blobs/" + mustConfigDigest(t, img)},
	} {
		req, _ := http.NewRequest(r.method, r.url, strings.NewReader("{}"))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusMethodNotAllowed || !strings.Contains(string(body), `"UNSUPPORTED"`) {
			t.Errorf("%s %s: %d %s", r.method, r.url, resp.StatusCode, body)
		}
	}
	// The image is still served.
	if _, err := pull(ref(t, cache, "lib/app:v1")); err != nil {
		t.Errorf("pull after the refused writes: %v", err)
	}
}

// TestTagsFollowUpstream: a tag is resolved upstream on every pull, so a
// moved tag is followed; the tag list is upstream's, and the tags recorded
// are served when upstream is gone.
func TestTagsFollowUpstream(t *testing.T) {
	up := startRegistryd(t, inmemory(), "", nil)
	first := pushImage(t, up, "lib/app:v1", 1)
	cache := startRegistryd(t, inmemory(), proxyOf(up, ""), nil)
	if _, err := pull(ref(t, cache, "lib/app:v1")); err != nil {
		t.Fatal(err)
	}
	second := pushImage(t, up, "lib/app:v1", 1)
	pushImage(t, up, "lib/app:v2", 1)
	got, err := pull(ref(t, cache, "lib/app:v1"))
	if err != nil {
		t.Fatal(err)
	}
	want, _ := read(second)
	samePulled(t, "v1 after it moved upstream", got, want)

	tags := func() []string {
		resp, err := http.Get("http://" + cache.addr + "/v2/lib/app/tags/list")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var l struct{ Tags []string }
		_ = json.NewDecoder(resp.Body).Decode(&l)
		return l.Tags
	}
	if got := tags(); !slices.Equal(got, []string{"v1", "v2"}) {
		t.Errorf("tags = %q, want upstream's [v1 v2]", got)
	}
	up.stop()
	if got := tags(); !slices.Equal(got, []string{"v1"}) {
		t.Errorf("tags with the upstream stopped = %q, want the recorded [v1]", got)
	}
	got, err = pull(ref(t, cache, "lib/app:v1"))
	if err != nil {
		t.Fatal(err)
	}
	samePulled(t, "v1 with the upstream stopped", got, want)
	_ = first
}

// TestReadOnlyStoresNothing: while the cache is read-only it serves
// upstream's content without writing it.
func TestReadOnlyStoresNothing(t *testing.T) {
	up := startRegistryd(t, inmemory(), "", nil)
	img := pushImage(t, up, "lib/app:v1", 2)
	want, _ := read(img)
	root := t.TempDir()
	cache := startRegistryd(t, "storage:\n  filesystem: {rootdirectory: "+root+"}\n  maintenance: {readonly: {enabled: true}}\n", proxyOf(up, ""), nil)
	got, err := pull(ref(t, cache, "lib/app:v1"))
	if err != nil {
		t.Fatal(err)
	}
	samePulled(t, "read-only pull", got, want)
	var files []string
	_ = filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			files = append(files, p)
		}
		return nil
	})
	if len(files) != 0 {
		t.Errorf("a read-only cache wrote %d files: %q", len(files), files)
	}
}

// TestLibraryPrefix: with Docker Hub's convention, a one-component name is
// fetched as library/<name> and stored under the name the client used.
func TestLibraryPrefix(t *testing.T) {
	for url, want := range map[string]bool{
		"https://registry-1.docker.io":  true,
		"https://index.docker.io":       true,
		"https://docker.io/":            true,
		"https://registry.example.com":  false,
		"http://127.0.0.1:5000":         false,
		"https://registry-1.docker.io.": false,
	} {
		if got := proxy.IsDockerHub(url); got != want {
			t.Errorf("IsDockerHub(%s) = %v", url, got)
		}
	}
	up := startRegistryd(t, inmemory(), "", nil)
	img := pushImage(t, up, "library/alpine:3", 1)
	want, _ := read(img)
	root := t.TempDir()
	cache := startLibraryCache(t, root, up)
	for _, name := range []string{"alpine:3", "library/alpine:3"} {
		got, err := pull(ref(t, cache, name))
		if err != nil {
			t.Fatalf("pull %s: %v", name, err)
		}
		samePulled(t, name, got, want)
	}
	if _, err := os.Stat(filepath.Join(root, "docker/registry/v2/repositories/alpine/_manifests/tags/3")); err != nil {
		t.Errorf("alpine:3 is not stored under the name the client used: %v", err)
	}
}

// TestBlobStreamedWhileStored: the client receives the start of a blob
// while upstream has not sent the rest, and a client that goes away does
// not stop the blob being stored.
func TestBlobStreamedWhileStored(t *testing.T) {
	release := make(chan struct{})
	var holdOnce sync.Once
	hold := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/blobs/") {
				w = &holdingWriter{ResponseWriter: w, after: 64 << 10, release: release}
			}
			next.ServeHTTP(w, r)
		})
	}
	up := startRegistryd(t, inmemory(), "", hold)
	layer := bytes.Repeat([]byte("0123456789abcdef"), 64<<10) // 1 MiB
	d := pushBlob(t, up, "lib/big", layer)
	root := t.TempDir()
	cache := startRegistryd(t, filesystem(root), proxyOf(up, ""), nil)

	resp, err := http.Get("http://" + cache.addr + "/v2/lib/big/blobs/" + d)
	if err != nil {
		t.Fatal(err)
	}
	first := make([]byte, 32<<10)
	if _, err := io.ReadFull(resp.Body, first); err != nil {
		t.Fatalf("the first bytes did not arrive before upstream sent the rest: %v", err)
	}
	if !bytes.Equal(first, layer[:len(first)]) {
		t.Fatal("the first bytes differ")
	}
	// The client goes away, then upstream sends the rest.
	resp.Body.Close()
	holdOnce.Do(func() { close(release) })
	waitStored(t, root, d)
	// A new pull is served from storage, whole.
	resp, err = http.Get("http://" + cache.addr + "/v2/lib/big/blobs/" + d)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !bytes.Equal(got, layer) {
		t.Errorf("the stored blob differs (%d bytes)", len(got))
	}
}

// holdingWriter passes the first after bytes, then waits for release.
type holdingWriter struct {
	http.ResponseWriter
	after   int
	written int
	release chan struct{}
}

func (h *holdingWriter) Write(p []byte) (int, error) {
	if h.written < h.after && h.written+len(p) > h.after {
		n, err := h.ResponseWriter.Write(p[:h.after-h.written])
		h.written += n
		if err != nil {
			return n, err
		}
		m, err := h.Write(p[n:])
		return n + m, err
	}
	if h.written >= h.after {
		if f, ok := h.ResponseWriter.(http.Flusher); ok {
			f.Flush()
		}
		<-h.release
	}
	n, err := h.ResponseWriter.Write(p)
	h.written += n
	return n, err
}

// counter counts the requests an upstream receives, by method and the
// kind of path (manifests, blobs, tags).
type counter struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *counter) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		kind := "other"
		for _, k := range []string{"/manifests/", "/blobs/", "/tags/"} {
			if strings.Contains(r.URL.Path, k) {
				kind = strings.Trim(k, "/")
			}
		}
		c.mu.Lock()
		c.n[r.Method+" "+kind]++
		c.mu.Unlock()
		next.ServeHTTP(w, r)
	})
}

func (c *counter) get(key string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[key]
}

// TestTTL: content stored longer than proxy.ttl is revalidated with
// upstream when read (ttl 1ns: on every read): served while upstream has
// it, dropped once upstream no longer does, served when upstream is
// unreachable. Content younger than the ttl (1h), and any content with
// ttl 0, is served without asking upstream.
func TestTTL(t *testing.T) {
	withDelete := "storage:\n  inmemory: {}\n  delete: {enabled: true}\n"
	revision := func(root, repo, d string) string {
		_, hex, _ := strings.Cut(d, ":")
		return filepath.Join(root, "docker/registry/v2/repositories", repo, "_manifests/revisions/sha256", hex, "link")
	}
	layerLink := func(root, repo, d string) string {
		_, hex, _ := strings.Cut(d, ":")
		return filepath.Join(root, "docker/registry/v2/repositories", repo, "_layers/sha256", hex, "link")
	}

	t.Run("past the ttl", func(t *testing.T) {
		c := &counter{n: map[string]int{}}
		up := startRegistryd(t, withDelete, "", c.wrap)
		img := pushImage(t, up, "lib/app:v1", 1)
		d, cfg := mustDigest(t, img), mustConfigDigest(t, img)
		root := t.TempDir()
		cache := startRegistryd(t, filesystem(root), proxyOf(up, "  ttl: 1ns\n"), nil)
		byDigest := ref(t, cache, "lib/app@"+d)
		if _, err := pull(byDigest); err != nil {
			t.Fatal(err)
		}
		// The config blob is committed once its last byte went out.
		waitStored(t, root, cfg)
		waitFile(t, layerLink(root, "lib/app", cfg))

		// Upstream still has it: revalidated (a HEAD upstream), served,
		// and its link rewritten.
		before := c.get("HEAD manifests")
		stat, err := os.Stat(revision(root, "lib/app", d))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := pull(byDigest); err != nil {
			t.Fatal(err)
		}
		if c.get("HEAD manifests") == before {
			t.Error("stored content past its ttl was served without asking upstream")
		}
		if again, err := os.Stat(revision(root, "lib/app", d)); err != nil || !again.ModTime().After(stat.ModTime()) {
			t.Errorf("the revalidation did not restart the manifest's clock (%v)", err)
		}

		// Upstream deleted it: the stored copies are dropped, reads 404.
		for _, p := range []string{"manifests/" + d, "blobs/" + cfg} {
			req, _ := http.NewRequest("DELETE", "http://"+up.addr+"/v2/lib/app/"+p, nil)
			resp, err := http.DefaultClient.Do(req)
			if err != nil || resp.StatusCode != http.StatusAccepted {
				t.Fatalf("delete %s upstream: %v %v", p, err, resp)
			}
			resp.Body.Close()
		}
		for _, p := range []string{"manifests/" + d, "blobs/" + cfg} {
			resp, err := http.Get("http://" + cache.addr + "/v2/lib/app/" + p)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusNotFound {
				t.Errorf("GET %s gone upstream: %d, want 404", p, resp.StatusCode)
			}
		}
		for _, p := range []string{revision(root, "lib/app", d), layerLink(root, "lib/app", cfg)} {
			if _, err := os.Stat(p); !os.IsNotExist(err) {
				t.Errorf("%s was not dropped: %v", p, err)
			}
		}

		// Upstream unreachable: the stored copy is served.
		other := pushImage(t, up, "lib/app:v2", 1)
		want, _ := read(other)
		otherRef := ref(t, cache, "lib/app@"+mustDigest(t, other))
		if _, err := pull(otherRef); err != nil {
			t.Fatal(err)
		}
		up.stop()
		got, err := pull(otherRef)
		if err != nil {
			t.Fatalf("pull past the ttl with upstream stopped: %v", err)
		}
		samePulled(t, "past the ttl, upstream stopped", got, want)
	})

	for name, keys := range map[string]string{"younger than the ttl": "  ttl: 1h\n", "ttl 0": "  ttl: 0s\n"} {
		t.Run(name, func(t *testing.T) {
			c := &counter{n: map[string]int{}}
			up := startRegistryd(t, inmemory(), "", c.wrap)
			img := pushImage(t, up, "lib/app:v1", 2)
			cache := startRegistryd(t, filesystem(t.TempDir()), proxyOf(up, keys), nil)
			byDigest := ref(t, cache, "lib/app@"+mustDigest(t, img))
			if _, err := pull(byDigest); err != nil {
				t.Fatal(err)
			}
			before := c.get("HEAD manifests") + c.get("GET manifests") + c.get("HEAD blobs") + c.get("GET blobs")
			if _, err := pull(byDigest); err != nil {
				t.Fatal(err)
			}
			if after := c.get("HEAD manifests") + c.get("GET manifests") + c.get("HEAD blobs") + c.get("GET blobs"); after != before {
				t.Errorf("a pull by digest of stored content asked upstream %d times", after-before)
			}
		})
	}
}

// TestExecCredentials: proxy.exec runs a Docker credential helper for the
// upstream's credentials: once without a lifetime, whenever upstream asks
// with lifetime 0.
func TestExecCredentials(t *testing.T) {
	for name, tc := range map[string]struct {
		lifetime string
		many     bool
	}{
		"no lifetime: once":             {lifetime: "", many: false},
		"lifetime 0: whenever asked":    {lifetime: "    lifetime: 0s\n", many: true},
		"lifetime 1h: reused within it": {lifetime: "    lifetime: 1h\n", many: false},
	} {
		t.Run(name, func(t *testing.T) {
			up := startRegistryd(t, inmemory(), htpasswd(t, "alice", "s3cret"), nil)
			img := pushImage(t, up, "lib/app:v1", 2, basic("alice", "s3cret"))
			want, _ := read(img)
			dir := t.TempDir()
			calls := filepath.Join(dir, "calls")
			helper := filepath.Join(dir, "docker-credential-test")
			script := "#!/bin/sh\n[ \"$1\" = get ] || exit 1\nread host\necho \"$host\" >> " + calls + "\n" +
				"echo '{\"ServerURL\":\"'$host'\",\"Username\":\"alice\",\"Secret\":\"s3cret\"}'\n"
			if err := os.WriteFile(helper, []byte(script), 0o755); err != nil {
				t.Fatal(err)
			}
			cache := startRegistryd(t, inmemory(), proxyOf(up, "  exec:\n    command: "+helper+"\n"+tc.lifetime), nil)
			got, err := pull(ref(t, cache, "lib/app:v1"))
			if err != nil {
				t.Fatalf("pull with credentials from the helper: %v", err)
			}
			samePulled(t, "pull", got, want)
			b, err := os.ReadFile(calls)
			if err != nil {
				t.Fatal(err)
			}
			lines := strings.Fields(string(b))
			if lines[0] != up.addr {
				t.Errorf("the helper was asked for %q, want the upstream host %q", lines[0], up.addr)
			}
			if many := len(lines) > 1; many != tc.many {
				t.Errorf("the helper ran %d times", len(lines))
			}
		})
	}
}
