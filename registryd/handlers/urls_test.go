package handlers

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
)

func mustURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func TestPrefixRouting(t *testing.T) {
	tests := map[string]struct {
		prefix string
		path   string
		want   int
	}{
		"no prefix base":                {prefix: "", path: "/v2/", want: http.StatusOK},
		"slash prefix is none":          {prefix: "/", path: "/v2/", want: http.StatusOK},
		"prefixed base":                 {prefix: "/registry/", path: "/registry/v2/", want: http.StatusOK},
		"prefixed base without slash":   {prefix: "/registry/", path: "/registry/v2", want: http.StatusOK},
		"prefix without slashes":        {prefix: "registry", path: "/registry/v2/", want: http.StatusOK},
		"nested prefix":                 {prefix: "/a/b/", path: "/a/b/v2/_catalog", want: http.StatusOK},
		"unprefixed path is 404":        {prefix: "/registry/", path: "/v2/", want: http.StatusNotFound},
		"prefix lookalike is 404":       {prefix: "/registry/", path: "/registryx/v2/", want: http.StatusNotFound},
		"prefix alone is 404":           {prefix: "/registry/", path: "/registry/", want: http.StatusNotFound},
		"prefix twice is 404":           {prefix: "/registry/", path: "/registry/registry/v2/", want: http.StatusNotFound},
		"prefixed catalog":              {prefix: "/registry/", path: "/registry/v2/_catalog", want: http.StatusOK},
		"prefixed unknown manifest":     {prefix: "/registry/", path: "/registry/v2/a/b/manifests/latest", want: http.StatusNotFound},
		"prefixed tags of unknown repo": {prefix: "/registry/", path: "/registry/v2/a/tags/list", want: http.StatusNotFound},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t, WithPrefix(tc.prefix))
			rec := e.do(req{method: http.MethodGet, path: tc.path})
			if rec.Code != tc.want {
				t.Fatalf("GET %s = %d, want %d: %s", tc.path, rec.Code, tc.want, rec.Body)
			}
		})
	}
}

func TestLocationURLs(t *testing.T) {
	tests := map[string]struct {
		opts    []Option
		base    string // request path before /v2/
		headers map[string]string
		want    string // Location of POST .../blobs/uploads/ up to the upload id
	}{
		"request host": {
			want: "http://example.com/v2/r/blobs/uploads/",
		},
		"relative": {
			opts: []Option{WithRelativeURLs(true)},
			want: "/v2/r/blobs/uploads/",
		},
		"prefix": {
			opts: []Option{WithPrefix("/registry/")},
			base: "/registry",
			want: "http://example.com/registry/v2/r/blobs/uploads/",
		},
		"prefix relative": {
			opts: []Option{WithPrefix("/registry/"), WithRelativeURLs(true)},
			base: "/registry",
			want: "/registry/v2/r/blobs/uploads/",
		},
		"prefix forwarded": {
			opts:    []Option{WithPrefix("/registry/")},
			base:    "/registry",
			headers: map[string]string{"X-Forwarded-Proto": "https", "X-Forwarded-Host": "proxy.example"},
			want:    "https://proxy.example/registry/v2/r/blobs/uploads/",
		},
		"host wins over request and forwarded headers": {
			opts:    []Option{WithHost(mustURL(t, "https://ext.example.com"))},
			headers: map[string]string{"X-Forwarded-Proto": "http", "X-Forwarded-Host": "proxy.example"},
			want:    "https://ext.example.com/v2/r/blobs/uploads/",
		},
		"host wins over relative": {
			opts: []Option{WithHost(mustURL(t, "https://ext.example.com/")), WithRelativeURLs(true)},
			want: "https://ext.example.com/v2/r/blobs/uploads/",
		},
		"host root replaces prefix": {
			opts: []Option{WithPrefix("/registry/"), WithHost(mustURL(t, "https://ext.example.com"))},
			base: "/registry",
			want: "https://ext.example.com/v2/r/blobs/uploads/",
		},
		"host path is the external root": {
			opts: []Option{WithPrefix("/registry/"), WithHost(mustURL(t, "https://ext.example.com:8443/mirror/"))},
			base: "/registry",
			want: "https://ext.example.com:8443/mirror/v2/r/blobs/uploads/",
		},
		"host without scheme is ignored": {
			opts: []Option{WithHost(&url.URL{Host: "ext.example.com"})},
			want: "http://example.com/v2/r/blobs/uploads/",
		},
		"nil host is ignored": {
			opts: []Option{WithHost(nil), WithRelativeURLs(true)},
			want: "/v2/r/blobs/uploads/",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t, tc.opts...)
			rec := e.do(req{method: http.MethodPost, path: tc.base + "/v2/r/blobs/uploads/", headers: tc.headers})
			if rec.Code != http.StatusAccepted {
				t.Fatalf("POST = %d: %s", rec.Code, rec.Body)
			}
			loc := rec.Header().Get("Location")
			id, ok := strings.CutPrefix(loc, tc.want)
			if !ok || id == "" || strings.Contains(id, "/") {
				t.Fatalf("Location = %q, want %q<id>", loc, tc.want)
			}

			// The upload session is reachable where the Location says
			// (relative to the server), and the finished blob's Location
			// is built the same way.
			content := []byte("prefixed blob " + name)
			d := digest.FromBytes(content)
			put := tc.base + "/v2/r/blobs/uploads/" + id + "?digest=" + d.String()
			rec = e.do(req{method: http.MethodPut, path: put, body: content, headers: tc.headers})
			if rec.Code != http.StatusCreated {
				t.Fatalf("PUT %s = %d: %s", put, rec.Code, rec.Body)
			}
			wantBlob := strings.TrimSuffix(tc.want, "uploads/") + d.String()
			if got := rec.Header().Get("Location"); got != wantBlob {
				t.Errorf("blob Location = %q, want %q", got, wantBlob)
			}
			rec = e.do(req{method: http.MethodGet, path: tc.base + "/v2/r/blobs/" + d.String()})
			if rec.Code != http.StatusOK || rec.Body.String() != string(content) {
				t.Errorf("GET blob = %d %q", rec.Code, rec.Body)
			}
		})
	}
}

func TestPrefixedManifestLocationAndLink(t *testing.T) {
	e := newEnv(t, WithPrefix("/registry/"), WithRelativeURLs(true))
	manifest := []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",` +
		`"config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},"layers":[]}`)
	rec := e.do(req{method: http.MethodPost, path: "/registry/v2/r/blobs/uploads/?digest=sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a", body: []byte("{}")})
	if rec.Code != http.StatusCreated {
		t.Fatalf("push config = %d: %s", rec.Code, rec.Body)
	}
	for _, tag := range []string{"a", "b"} {
		rec = e.do(req{
			method:  http.MethodPut,
			path:    "/registry/v2/r/manifests/" + tag,
			body:    manifest,
			headers: map[string]string{"Content-Type": "application/vnd.oci.image.manifest.v1+json"},
		})
		if rec.Code != http.StatusCreated {
			t.Fatalf("PUT manifest = %d: %s", rec.Code, rec.Body)
		}
	}
	if got, want := rec.Header().Get("Location"), "/registry/v2/r/manifests/"+digest.FromBytes(manifest).String(); got != want {
		t.Errorf("manifest Location = %q, want %q", got, want)
	}
	rec = e.do(req{method: http.MethodGet, path: "/registry/v2/r/tags/list?n=1"})
	if got, want := rec.Header().Get("Link"), `</registry/v2/r/tags/list?n=1&last=a>; rel="next"`; got != want {
		t.Errorf("Link = %q, want %q", got, want)
	}
}
