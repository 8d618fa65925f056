package handlers

import (
	"net/http"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/berth-dev/berth/registryd/storage/driver/inmemory"
)

// TestTraversalRefusedOnEveryRoute sends names and references that try to
// climb out of the repository's part of the storage tree (.., encoded
// slashes and dots, absolute paths, empty segments) to every route and
// method, and checks each is refused with a 4xx and that storage was never
// asked for a path outside Distribution's layout (pathRecorder sees the
// paths before the driver's own checks).
func TestTraversalRefusedOnEveryRoute(t *testing.T) {
	rec := &pathRecorder{StorageDriver: inmemory.New()}
	e := &env{t: t, drv: rec, h: New(rec, WithDeleteEnabled(true))}
	config := e.pushBlob("lib/app", []byte("{}"))
	manifest := []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"` + config.String() + `","size":2},"layers":[]}`)
	md := e.pushManifest("lib/app", "v1", "application/vnd.oci.image.manifest.v1+json", manifest)
	session := e.startSession("lib/app")
	uploadID := session[strings.LastIndex(session, "/")+1:]
	if i := strings.IndexByte(uploadID, '?'); i >= 0 {
		uploadID = uploadID[:i]
	}

	names := []string{
		"..", "../lib/app", "lib/../../..", "lib/%2e%2e/%2e%2e", "%2e%2e", "lib%2Fapp", "lib%2f..%2f..", "/lib/app",
		"%2Flib%2Fapp", "lib//app", "lib/./app", "lib/app/..", "lib\\..\\app", "lib/app%00",
	}
	refs := []string{
		"..", "..%2F..%2Fetc", "%2e%2e", "sha256:..%2F..%2Fx", "sha256:%2e%2e", "%2Fetc%2Fpasswd", "sha256:" + strings.Repeat("a", 62) + "%2F..",
		"v1%2F..", "sha256:" + md.Encoded() + "%2F..%2F..",
	}
	type call struct{ method, path string }
	var calls []call
	for _, n := range names {
		calls = append(calls, []call{
			{"GET", "/v2/" + n + "/tags/list"},
			{"GET", "/v2/" + n + "/manifests/v1"}, {"HEAD", "/v2/" + n + "/manifests/v1"},
			{"PUT", "/v2/" + n + "/manifests/v2"}, {"DELETE", "/v2/" + n + "/manifests/" + md.String()},
			{"GET", "/v2/" + n + "/blobs/" + config.String()}, {"HEAD", "/v2/" + n + "/blobs/" + config.String()},
			{"DELETE", "/v2/" + n + "/blobs/" + config.String()},
			{"POST", "/v2/" + n + "/blobs/uploads/"}, {"POST", "/v2/" + n + "/blobs/uploads/?mount=" + config.String() + "&from=lib/app"},
			{"POST", "/v2/lib/app/blobs/uploads/?mount=" + config.String() + "&from=" + n},
			{"GET", "/v2/" + n + "/blobs/uploads/" + uploadID}, {"PATCH", "/v2/" + n + "/blobs/uploads/" + uploadID},
			{"PUT", "/v2/" + n + "/blobs/uploads/" + uploadID + "?digest=" + config.String()}, {"DELETE", "/v2/" + n + "/blobs/uploads/" + uploadID},
			{"GET", "/v2/" + n + "/referrers/" + md.String()},
			{"GET", "/v2/_catalog?last=" + n},
		}...)
	}
	for _, r := range refs {
		calls = append(calls, []call{
			{"GET", "/v2/lib/app/manifests/" + r}, {"HEAD", "/v2/lib/app/manifests/" + r},
			{"PUT", "/v2/lib/app/manifests/" + r}, {"DELETE", "/v2/lib/app/manifests/" + r},
			{"GET", "/v2/lib/app/blobs/" + r}, {"HEAD", "/v2/lib/app/blobs/" + r}, {"DELETE", "/v2/lib/app/blobs/" + r},
			{"POST", "/v2/lib/app/blobs/uploads/?digest=" + r}, {"POST", "/v2/lib/app/blobs/uploads/?mount=" + r + "&from=lib/app"},
			{"GET", "/v2/lib/app/blobs/uploads/" + r}, {"PATCH", "/v2/lib/app/blobs/uploads/" + r},
			{"PUT", "/v2/lib/app/blobs/uploads/" + r + "?digest=" + config.String()}, {"DELETE", "/v2/lib/app/blobs/uploads/" + r},
			{"PUT", "/v2/lib/app/blobs/uploads/" + uploadID + "?digest=" + r},
			{"GET", "/v2/lib/app/referrers/" + r},
		}...)
	}

	for _, c := range calls {
		rec.mu.Lock()
		rec.paths = nil
		rec.mu.Unlock()
		var body []byte
		headers := map[string]string{}
		if c.method == "PUT" || c.method == "PATCH" || c.method == "POST" {
			body = manifest
			headers["Content-Type"] = "application/vnd.oci.image.manifest.v1+json"
		}
		w := e.do(req{method: c.method, path: c.path, body: body, headers: headers})
		if w.Code < 400 || w.Code >= 500 {
			// The catalog's last= is a position, not a path: it may
			// answer 200. A mount whose from= or digest cannot be used
			// falls back to a plain upload session (202), as the OCI
			// distribution spec asks. Neither may reach outside the layout
			// (checked below).
			// (from=lib%2Fapp is lib/app: a query value is decoded.)
			fallback := strings.HasPrefix(c.path, "/v2/lib/app/blobs/uploads/?mount=") && (w.Code == http.StatusAccepted || w.Code == http.StatusCreated)
			if !(strings.HasPrefix(c.path, "/v2/_catalog") && w.Code == http.StatusOK) && !fallback {
				t.Errorf("%s %s = %d %s, want it refused (4xx)", c.method, c.path, w.Code, w.Body)
			}
		}
		rec.mu.Lock()
		for _, q := range rec.paths {
			if why := insideLayout(q); why != "" {
				t.Errorf("%s %s: storage asked for %q, %s", c.method, c.path, q, why)
			}
		}
		rec.mu.Unlock()
	}

	// Nothing the requests did changed what is stored.
	if w := e.do(req{method: "GET", path: "/v2/lib/app/manifests/v1"}); w.Code != http.StatusOK || digest.FromBytes(w.Body.Bytes()) != md {
		t.Errorf("lib/app:v1 after the attempts: %d", w.Code)
	}
}

// TestManifestDigestMismatchRefused puts a manifest by a digest that is
// not its own: refused with DIGEST_INVALID, and nothing is stored under
// either digest.
func TestManifestDigestMismatchRefused(t *testing.T) {
	e := newEnv(t, WithDeleteEnabled(true))
	manifest := e.image("lib/app", "mismatch", nil)
	wrong := digest.FromString("something else")
	w := e.do(req{method: "PUT", path: "/v2/lib/app/manifests/" + wrong.String(), body: manifest,
		headers: map[string]string{"Content-Type": "application/vnd.oci.image.manifest.v1+json"}})
	if w.Code != http.StatusBadRequest || errorCode(t, w) != "DIGEST_INVALID" {
		t.Fatalf("PUT by a wrong digest = %d %s, want 400 DIGEST_INVALID", w.Code, w.Body)
	}
	for _, d := range []digest.Digest{wrong, digest.FromBytes(manifest)} {
		if w := e.do(req{method: "HEAD", path: "/v2/lib/app/manifests/" + d.String()}); w.Code != http.StatusNotFound {
			t.Errorf("HEAD %s after the refused PUT = %d, want 404", d, w.Code)
		}
	}
}

// TestBlobDigestMismatchRefused uploads content under a digest that is not
// its own, monolithically and by a session's closing PUT: both refused
// with DIGEST_INVALID, and no blob is stored under either digest.
func TestBlobDigestMismatchRefused(t *testing.T) {
	e := newEnv(t)
	content := []byte("the real content")
	wrong := digest.FromString("claimed content")
	w := e.do(req{method: "POST", path: "/v2/lib/app/blobs/uploads/?digest=" + wrong.String(), body: content})
	if w.Code != http.StatusBadRequest || errorCode(t, w) != "DIGEST_INVALID" {
		t.Errorf("monolithic upload by a wrong digest = %d %s, want 400 DIGEST_INVALID", w.Code, w.Body)
	}
	loc := e.startSession("lib/app")
	sep := "?"
	if strings.Contains(loc, "?") {
		sep = "&"
	}
	w = e.do(req{method: "PUT", path: loc + sep + "digest=" + wrong.String(), body: content})
	if w.Code != http.StatusBadRequest || errorCode(t, w) != "DIGEST_INVALID" {
		t.Errorf("closing PUT by a wrong digest = %d %s, want 400 DIGEST_INVALID", w.Code, w.Body)
	}
	for _, d := range []digest.Digest{wrong, digest.FromBytes(content)} {
		if w := e.do(req{method: "HEAD", path: "/v2/lib/app/blobs/" + d.String()}); w.Code != http.StatusNotFound {
			t.Errorf("HEAD %s after the refused uploads = %d, want 404", d, w.Code)
		}
	}
}
