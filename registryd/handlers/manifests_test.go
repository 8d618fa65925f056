package handlers

import (
	"bytes"
	"crypto/sha512"
	"encoding/hex"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
)

const (
	ociManifest = "application/vnd.oci.image.manifest.v1+json"
	ociIndex    = "application/vnd.oci.image.index.v1+json"
	dockerV2    = "application/vnd.docker.distribution.manifest.v2+json"
	dockerList  = "application/vnd.docker.distribution.manifest.list.v2+json"
)

func TestManifestPut(t *testing.T) {
	tests := map[string]struct {
		// build returns the reference, Content-Type and body to PUT.
		build      func(e *env) (string, string, []byte)
		opts       []Option
		wantCode   int
		wantErr    string
		wantSubjct bool
	}{
		"OCI manifest by tag": {build: func(e *env) (string, string, []byte) {
			return "v1", ociManifest, e.image("app", "a", nil)
		}, wantCode: 201},
		"OCI manifest by digest": {build: func(e *env) (string, string, []byte) {
			m := e.image("app", "a", nil)
			return digest.FromBytes(m).String(), ociManifest, m
		}, wantCode: 201},
		"OCI manifest by sha512 digest": {build: func(e *env) (string, string, []byte) {
			m := e.image("app", "a", nil)
			sum := sha512.Sum512(m)
			return "sha512:" + hex.EncodeToString(sum[:]), ociManifest, m
		}, wantCode: 201},
		"OCI manifest without mediaType field": {build: func(e *env) (string, string, []byte) {
			m := e.image("app", "a", nil)
			return "v1", ociManifest, bytes.Replace(m, []byte(`"mediaType":"application/vnd.oci.image.manifest.v1+json",`), nil, 1)
		}, wantCode: 201},
		"docker schema2": {build: func(e *env) (string, string, []byte) {
			cfg := e.pushBlob("app", []byte(`{"os":"linux"}`))
			l := e.pushBlob("app", []byte("layer"))
			return "v2", dockerV2, mustJSON(e.t, map[string]any{"schemaVersion": 2, "mediaType": dockerV2,
				"config": desc{MediaType: "application/vnd.docker.container.image.v1+json", Digest: cfg, Size: 14},
				"layers": []desc{{MediaType: "application/vnd.docker.image.rootfs.diff.tar.gzip", Digest: l, Size: 5}}})
		}, wantCode: 201},
		"artifact with subject that does not exist": {build: func(e *env) (string, string, []byte) {
			empty := e.pushBlob("app", []byte("{}"))
			return "sig", ociManifest, mustJSON(e.t, map[string]any{"schemaVersion": 2, "mediaType": ociManifest,
				"artifactType": "application/vnd.example.sig",
				"config":       desc{MediaType: "application/vnd.oci.empty.v1+json", Digest: empty, Size: 2},
				"layers":       []desc{},
				"subject":      desc{MediaType: ociManifest, Digest: digest.FromString("absent"), Size: 10}})
		}, wantCode: 201, wantSubjct: true},
		"missing layer": {build: func(e *env) (string, string, []byte) {
			m := e.image("app", "a", nil)
			return "v1", ociManifest, bytes.Replace(m, []byte(`"layers":[`), []byte(`"layers":[{"mediaType":"x","digest":"`+digest.FromString("gone").String()+`","size":4},`), 1)
		}, wantCode: 400, wantErr: "MANIFEST_BLOB_UNKNOWN"},
		"missing config": {build: func(e *env) (string, string, []byte) {
			return "v1", ociManifest, mustJSON(e.t, map[string]any{"schemaVersion": 2, "mediaType": ociManifest,
				"config": descOf("application/vnd.oci.image.config.v1+json", []byte("nope")), "layers": []desc{}})
		}, wantCode: 400, wantErr: "MANIFEST_BLOB_UNKNOWN"},
		"blob of another repository": {build: func(e *env) (string, string, []byte) {
			return "v1", ociManifest, e.image("elsewhere", "a", nil)
		}, wantCode: 400, wantErr: "MANIFEST_BLOB_UNKNOWN"},
		"Content-Type contradicts mediaType": {build: func(e *env) (string, string, []byte) {
			return "v1", dockerV2, e.image("app", "a", nil)
		}, wantCode: 400, wantErr: "MANIFEST_INVALID"},
		"not JSON": {build: func(e *env) (string, string, []byte) {
			return "v1", ociManifest, []byte("{nope")
		}, wantCode: 400, wantErr: "MANIFEST_INVALID"},
		"schema1": {build: func(e *env) (string, string, []byte) {
			return "v1", "application/vnd.docker.distribution.manifest.v1+prettyjws", []byte(`{"schemaVersion":1,"name":"app","tag":"v1"}`)
		}, wantCode: 400, wantErr: "MANIFEST_INVALID"},
		"unknown media type": {build: func(e *env) (string, string, []byte) {
			return "v1", "application/vnd.example+json", []byte(`{"schemaVersion":2,"mediaType":"application/vnd.example+json"}`)
		}, wantCode: 400, wantErr: "MANIFEST_INVALID"},
		"digest mismatch": {build: func(e *env) (string, string, []byte) {
			return digest.FromString("other").String(), ociManifest, e.image("app", "a", nil)
		}, wantCode: 400, wantErr: "DIGEST_INVALID"},
		"invalid tag": {build: func(e *env) (string, string, []byte) {
			return "-bad", ociManifest, e.image("app", "a", nil)
		}, wantCode: 400, wantErr: "TAG_INVALID"},
		"too large": {build: func(e *env) (string, string, []byte) {
			return "v1", ociManifest, e.image("app", "a", map[string]any{"annotations": map[string]string{"pad": strings.Repeat("x", 2048)}})
		}, opts: []Option{WithMaxManifestSize(1024)}, wantCode: 413, wantErr: "SIZE_INVALID"},
		"index with missing child": {build: func(e *env) (string, string, []byte) {
			return "idx", ociIndex, mustJSON(e.t, map[string]any{"schemaVersion": 2, "mediaType": ociIndex,
				"manifests": []desc{descOf(ociManifest, []byte("not pushed"))}})
		}, wantCode: 400, wantErr: "MANIFEST_BLOB_UNKNOWN"},
		"index with missing child, validation none": {build: func(e *env) (string, string, []byte) {
			return "idx", ociIndex, mustJSON(e.t, map[string]any{"schemaVersion": 2, "mediaType": ociIndex,
				"manifests": []desc{descOf(ociManifest, []byte("not pushed"))}})
		}, opts: []Option{WithIndexValidation(IndexValidation{Mode: IndexValidateNone})}, wantCode: 201},
		"index with missing child outside platform list": {build: func(e *env) (string, string, []byte) {
			child := descOf(ociManifest, []byte("not pushed"))
			child.Platform = map[string]string{"os": "linux", "architecture": "arm64"}
			return "idx", ociIndex, mustJSON(e.t, map[string]any{"schemaVersion": 2, "mediaType": ociIndex, "manifests": []desc{child}})
		}, opts: []Option{WithIndexValidation(IndexValidation{Mode: IndexValidateList, Platforms: []Platform{{OS: "linux", Architecture: "amd64"}}})}, wantCode: 201},
		"index with missing child inside platform list": {build: func(e *env) (string, string, []byte) {
			child := descOf(ociManifest, []byte("not pushed"))
			child.Platform = map[string]string{"os": "linux", "architecture": "amd64"}
			return "idx", ociIndex, mustJSON(e.t, map[string]any{"schemaVersion": 2, "mediaType": ociIndex, "manifests": []desc{child}})
		}, opts: []Option{WithIndexValidation(IndexValidation{Mode: IndexValidateList, Platforms: []Platform{{OS: "linux", Architecture: "amd64"}}})}, wantCode: 400, wantErr: "MANIFEST_BLOB_UNKNOWN"},
		"index with present child": {build: func(e *env) (string, string, []byte) {
			m := e.image("app", "a", nil)
			e.pushManifest("app", digest.FromBytes(m).String(), ociManifest, m)
			return "idx", ociIndex, mustJSON(e.t, map[string]any{"schemaVersion": 2, "mediaType": ociIndex, "manifests": []desc{descOf(ociManifest, m)}})
		}, wantCode: 201},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t, tc.opts...)
			ref, ct, body := tc.build(e)
			rec := e.do(req{method: "PUT", path: "/v2/app/manifests/" + ref, body: body, headers: map[string]string{"Content-Type": ct}})
			if rec.Code != tc.wantCode {
				t.Fatalf("status %d, want %d: %s", rec.Code, tc.wantCode, rec.Body)
			}
			if got := errorCode(t, rec); got != tc.wantErr {
				t.Fatalf("error %q, want %q", got, tc.wantErr)
			}
			if tc.wantCode != 201 {
				return
			}
			want := digest.FromBytes(body)
			if strings.HasPrefix(ref, "sha512:") {
				want = digest.Digest(ref)
			}
			if rec.Header().Get("Docker-Content-Digest") != want.String() ||
				!strings.HasSuffix(rec.Header().Get("Location"), "/v2/app/manifests/"+want.String()) {
				t.Fatalf("headers %v", rec.Header())
			}
			if got := rec.Header().Get("OCI-Subject"); (got != "") != tc.wantSubjct {
				t.Fatalf("OCI-Subject = %q", got)
			}
			for _, r := range []string{ref, want.String()} {
				get := e.do(req{method: "GET", path: "/v2/app/manifests/" + r})
				if get.Code != 200 || !bytes.Equal(get.Body.Bytes(), body) {
					t.Fatalf("GET %s: %d", r, get.Code)
				}
				if get.Header().Get("Content-Type") != ct || get.Header().Get("Docker-Content-Digest") != want.String() {
					t.Fatalf("GET %s headers %v", r, get.Header())
				}
			}
		})
	}
}

func TestManifestGet(t *testing.T) {
	e := newEnv(t)
	img := e.image("app", "amd", nil)
	imgD := e.pushManifest("app", "img", ociManifest, img)
	idx := mustJSON(t, map[string]any{"schemaVersion": 2, "mediaType": ociIndex, "manifests": []desc{descOf(ociManifest, img)}})
	idxD := e.pushManifest("app", "idx", ociIndex, idx)

	cfg := e.pushBlob("app", []byte(`{"os":"linux"}`))
	dm := mustJSON(t, map[string]any{"schemaVersion": 2, "mediaType": dockerV2,
		"config": desc{MediaType: "application/vnd.docker.container.image.v1+json", Digest: cfg, Size: 14}, "layers": []desc{}})
	dmD := e.pushManifest("app", "docker", dockerV2, dm)
	child := descOf(dockerV2, dm)
	child.Platform = map[string]string{"os": "linux", "architecture": "amd64"}
	list := mustJSON(t, map[string]any{"schemaVersion": 2, "mediaType": dockerList, "manifests": []desc{child}})
	e.pushManifest("app", "list", dockerList, list)

	tests := map[string]struct {
		ref, accept, method string
		wantCode            int
		wantErr             string
		wantDigest          digest.Digest
		wantType            string
	}{
		"by tag, no Accept":                    {ref: "img", wantCode: 200, wantDigest: imgD, wantType: ociManifest},
		"by tag, Accept lists OCI":             {ref: "img", accept: ociManifest + ", " + dockerV2, wantCode: 200, wantDigest: imgD, wantType: ociManifest},
		"by tag, Accept with q":                {ref: "img", accept: ociManifest + ";q=0.5", wantCode: 200, wantDigest: imgD, wantType: ociManifest},
		"by tag, Accept */*":                   {ref: "img", accept: "*/*", wantCode: 200, wantDigest: imgD, wantType: ociManifest},
		"by tag, Accept excludes OCI manifest": {ref: "img", accept: dockerV2, wantCode: 404, wantErr: "MANIFEST_UNKNOWN"},
		"by digest, Accept excludes OCI":       {ref: imgD.String(), accept: dockerV2, wantCode: 200, wantDigest: imgD, wantType: ociManifest},
		"by tag, Accept excludes OCI index":    {ref: "idx", accept: ociManifest, wantCode: 404, wantErr: "MANIFEST_UNKNOWN"},
		"index by tag":                         {ref: "idx", accept: ociIndex, wantCode: 200, wantDigest: idxD, wantType: ociIndex},
		"list by tag, Accept excludes list":    {ref: "list", accept: dockerV2, wantCode: 200, wantDigest: dmD, wantType: dockerV2},
		"list by tag, Accept excludes both":    {ref: "list", accept: ociManifest, wantCode: 400, wantErr: "MANIFEST_INVALID"},
		"docker manifest, Accept excludes it":  {ref: "docker", accept: ociManifest, wantCode: 200, wantDigest: dmD, wantType: dockerV2},
		"HEAD":                                 {ref: "img", method: "HEAD", wantCode: 200, wantDigest: imgD, wantType: ociManifest},
		"unknown tag":                          {ref: "nope", wantCode: 404, wantErr: "MANIFEST_UNKNOWN"},
		"unknown digest":                       {ref: digest.FromString("x").String(), wantCode: 404, wantErr: "MANIFEST_UNKNOWN"},
		// A reference that is neither a tag nor a digest names nothing: 404
		// MANIFEST_UNKNOWN, as the spec and its conformance suite expect
		// (TAG_INVALID belongs to a PUT).
		"invalid digest":      {ref: "sha256:123", wantCode: 404, wantErr: "MANIFEST_UNKNOWN"},
		"invalid tag":         {ref: ".bad", wantCode: 404, wantErr: "MANIFEST_UNKNOWN"},
		"invalid tag, HEAD":   {ref: ".bad", method: "HEAD", wantCode: 404},
		"unknown algorithm":   {ref: "md5:" + strings.Repeat("0", 32), wantCode: 404, wantErr: "MANIFEST_UNKNOWN"},
		"invalid digest HEAD": {ref: "sha256:123", method: "HEAD", wantCode: 404},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			method := tc.method
			if method == "" {
				method = "GET"
			}
			h := map[string]string{}
			if tc.accept != "" {
				h["Accept"] = tc.accept
			}
			rec := e.do(req{method: method, path: "/v2/app/manifests/" + tc.ref, headers: h})
			if rec.Code != tc.wantCode {
				t.Fatalf("status %d, want %d: %s", rec.Code, tc.wantCode, rec.Body)
			}
			if tc.wantErr != "" && method == "GET" && errorCode(t, rec) != tc.wantErr {
				t.Fatalf("error %q, want %q", errorCode(t, rec), tc.wantErr)
			}
			if tc.wantCode != 200 {
				return
			}
			if rec.Header().Get("Docker-Content-Digest") != tc.wantDigest.String() || rec.Header().Get("Content-Type") != tc.wantType {
				t.Fatalf("headers %v", rec.Header())
			}
			if method == "GET" && digest.FromBytes(rec.Body.Bytes()) != tc.wantDigest {
				t.Fatalf("body digest %s", digest.FromBytes(rec.Body.Bytes()))
			}
			if method == "HEAD" && (rec.Body.Len() != 0 || rec.Header().Get("Content-Length") != strconv.Itoa(len(img))) {
				t.Fatalf("HEAD body %d, Content-Length %q", rec.Body.Len(), rec.Header().Get("Content-Length"))
			}
		})
	}
	t.Run("If-None-Match", func(t *testing.T) {
		rec := e.do(req{method: "GET", path: "/v2/app/manifests/img", headers: map[string]string{"If-None-Match": `"` + imgD.String() + `"`}})
		if rec.Code != http.StatusNotModified {
			t.Fatalf("status %d", rec.Code)
		}
	})
}

// TestManifestPutTagParameters pushes by digest with ?tag= parameters (OCI
// Distribution Spec 1.1): the tags point at the manifest, OCI-Tag lists
// them, and every header naming the manifest uses the digest's algorithm,
// on the PUT and on later reads by tag.
func TestManifestPutTagParameters(t *testing.T) {
	sha512Of := func(b []byte) digest.Digest {
		sum := sha512.Sum512(b)
		return digest.Digest("sha512:" + hex.EncodeToString(sum[:]))
	}
	for name, alg := range map[string]func([]byte) digest.Digest{"sha256": digest.FromBytes, "sha512": sha512Of} {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t)
			m := e.image("app", "a", nil)
			d := alg(m)
			rec := e.do(req{method: "PUT", path: "/v2/app/manifests/" + d.String() + "?tag=one&tag=two&tag=one",
				body: m, headers: map[string]string{"Content-Type": ociManifest}})
			if rec.Code != http.StatusCreated {
				t.Fatalf("PUT: %d %s", rec.Code, rec.Body)
			}
			if got := rec.Header().Get("Docker-Content-Digest"); got != d.String() {
				t.Errorf("PUT Docker-Content-Digest = %s, want %s", got, d)
			}
			if got := rec.Header().Get("Location"); !strings.HasSuffix(got, "/v2/app/manifests/"+d.String()) {
				t.Errorf("PUT Location = %s", got)
			}
			if got := rec.Header().Values("OCI-Tag"); !slices.Equal(got, []string{"one", "two"}) {
				t.Errorf("OCI-Tag = %q, want [one two]", got)
			}
			for _, ref := range []string{"one", "two", d.String()} {
				for _, method := range []string{"GET", "HEAD"} {
					rec := e.do(req{method: method, path: "/v2/app/manifests/" + ref})
					if rec.Code != http.StatusOK {
						t.Fatalf("%s %s: %d %s", method, ref, rec.Code, rec.Body)
					}
					if got := rec.Header().Get("Docker-Content-Digest"); got != d.String() {
						t.Errorf("%s %s: Docker-Content-Digest = %s, want %s", method, ref, got, d)
					}
					if method == "GET" && !bytes.Equal(rec.Body.Bytes(), m) {
						t.Errorf("GET %s: body differs", ref)
					}
				}
			}
			rec = e.do(req{method: "GET", path: "/v2/app/tags/list"})
			if !strings.Contains(rec.Body.String(), `"one"`) || !strings.Contains(rec.Body.String(), `"two"`) {
				t.Errorf("tags list = %s", rec.Body)
			}
		})
	}
	t.Run("by tag with more tags", func(t *testing.T) {
		e := newEnv(t)
		m := e.image("app", "a", nil)
		rec := e.do(req{method: "PUT", path: "/v2/app/manifests/main?tag=extra",
			body: m, headers: map[string]string{"Content-Type": ociManifest}})
		if rec.Code != http.StatusCreated || !slices.Equal(rec.Header().Values("OCI-Tag"), []string{"main", "extra"}) {
			t.Fatalf("PUT: %d OCI-Tag %q", rec.Code, rec.Header().Values("OCI-Tag"))
		}
		if got := e.do(req{method: "GET", path: "/v2/app/manifests/extra"}).Code; got != http.StatusOK {
			t.Fatalf("GET extra: %d", got)
		}
	})
	t.Run("invalid tag parameter stores nothing", func(t *testing.T) {
		e := newEnv(t)
		m := e.image("app", "a", nil)
		d := digest.FromBytes(m)
		rec := e.do(req{method: "PUT", path: "/v2/app/manifests/" + d.String() + "?tag=good&tag=-bad",
			body: m, headers: map[string]string{"Content-Type": ociManifest}})
		if rec.Code != http.StatusBadRequest || errorCode(t, rec) != "TAG_INVALID" {
			t.Fatalf("PUT: %d %s", rec.Code, rec.Body)
		}
		for _, ref := range []string{d.String(), "good"} {
			if got := e.do(req{method: "GET", path: "/v2/app/manifests/" + ref}).Code; got != http.StatusNotFound {
				t.Errorf("GET %s after a refused PUT: %d, want 404", ref, got)
			}
		}
	})
}

func TestManifestDelete(t *testing.T) {
	setup := func(t *testing.T, opts ...Option) (*env, digest.Digest) {
		e := newEnv(t, opts...)
		m := e.image("app", "a", nil)
		d := e.pushManifest("app", "v1", ociManifest, m)
		e.pushManifest("app", "v2", ociManifest, m)
		other := e.image("app", "b", nil)
		e.pushManifest("app", "other", ociManifest, other)
		return e, d
	}
	status := func(e *env, ref string) int {
		return e.do(req{method: "GET", path: "/v2/app/manifests/" + ref}).Code
	}
	t.Run("disabled", func(t *testing.T) {
		e, d := setup(t)
		for _, ref := range []string{"v1", d.String()} {
			rec := e.do(req{method: "DELETE", path: "/v2/app/manifests/" + ref})
			if rec.Code != 405 || errorCode(t, rec) != "UNSUPPORTED" {
				t.Fatalf("%s: %d %s", ref, rec.Code, rec.Body)
			}
		}
	})
	t.Run("by tag removes only the tag", func(t *testing.T) {
		e, d := setup(t, WithDeleteEnabled(true))
		if rec := e.do(req{method: "DELETE", path: "/v2/app/manifests/v1"}); rec.Code != 202 {
			t.Fatalf("%d %s", rec.Code, rec.Body)
		}
		if status(e, "v1") != 404 || status(e, "v2") != 200 || status(e, d.String()) != 200 {
			t.Fatal("wrong state after tag delete")
		}
		if rec := e.do(req{method: "DELETE", path: "/v2/app/manifests/v1"}); rec.Code != 404 || errorCode(t, rec) != "MANIFEST_UNKNOWN" {
			t.Fatalf("second delete: %d", rec.Code)
		}
	})
	t.Run("by digest removes the manifest and its tags", func(t *testing.T) {
		e, d := setup(t, WithDeleteEnabled(true))
		if rec := e.do(req{method: "DELETE", path: "/v2/app/manifests/" + d.String()}); rec.Code != 202 {
			t.Fatalf("%d %s", rec.Code, rec.Body)
		}
		if status(e, d.String()) != 404 || status(e, "v1") != 404 || status(e, "v2") != 404 || status(e, "other") != 200 {
			t.Fatal("wrong state after manifest delete")
		}
		rec := e.do(req{method: "GET", path: "/v2/app/tags/list"})
		if rec.Body.String() != `{"name":"app","tags":["other"]}` {
			t.Fatalf("tags %s", rec.Body)
		}
		if rec := e.do(req{method: "DELETE", path: "/v2/app/manifests/" + d.String()}); rec.Code != 404 || errorCode(t, rec) != "MANIFEST_UNKNOWN" {
			t.Fatalf("second delete: %d", rec.Code)
		}
	})
}

// TestManifestURLPolicy pushes manifests whose layers carry URLs under
// each URL policy (validation.manifests.urls).
func TestManifestURLPolicy(t *testing.T) {
	const (
		ndLayer      = "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
		foreignLayer = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
		plainLayer   = "application/vnd.oci.image.layer.v1.tar+gzip"
	)
	allowExample := URLPolicy{Allow: regexp.MustCompile(`^https://([^/]+\.)*example\.com/`)}
	allowDeny := URLPolicy{Allow: allowExample.Allow, Deny: regexp.MustCompile(`^https://www\.example\.com/`)}
	tests := map[string]struct {
		policy     *URLPolicy // nil: the handler's default
		mediaType  string
		url        string
		pushLayer  bool
		wantCode   int
		wantErr    string
		wantDetail string
	}{
		"default refuses every URL":       {mediaType: ndLayer, url: "https://cdn.example.com/l", wantCode: 400, wantErr: "MANIFEST_INVALID", wantDetail: "not allowed by validation.manifests.urls.allow"},
		"allowed, layer not pushed":       {policy: &allowExample, mediaType: ndLayer, url: "https://cdn.example.com/l", wantCode: 201},
		"allowed docker foreign layer":    {policy: &allowExample, mediaType: foreignLayer, url: "https://example.com/l", wantCode: 201},
		"not matching allow":              {policy: &allowExample, mediaType: ndLayer, url: "https://example.org/l", wantCode: 400, wantErr: "MANIFEST_INVALID", wantDetail: "not allowed"},
		"allowed but denied":              {policy: &allowDeny, mediaType: ndLayer, url: "https://www.example.com/l", wantCode: 400, wantErr: "MANIFEST_INVALID", wantDetail: "denied by validation.manifests.urls.deny"},
		"allowed and not denied":          {policy: &allowDeny, mediaType: ndLayer, url: "https://cdn.example.com/l", wantCode: 201},
		"validation off allows any https": {policy: &URLPolicy{}, mediaType: ndLayer, url: "https://anywhere.test/l", wantCode: 201},
		"validation off, not http(s)":     {policy: &URLPolicy{}, mediaType: ndLayer, url: "ftp://anywhere.test/l", wantCode: 400, wantErr: "MANIFEST_INVALID", wantDetail: "not an http or https URL"},
		"validation off, fragment":        {policy: &URLPolicy{}, mediaType: ndLayer, url: "https://anywhere.test/l#x", wantCode: 400, wantErr: "MANIFEST_INVALID", wantDetail: "fragment"},
		"distributable layer must exist":  {policy: &allowExample, mediaType: plainLayer, url: "https://cdn.example.com/l", wantCode: 400, wantErr: "MANIFEST_BLOB_UNKNOWN"},
		"distributable layer pushed":      {policy: &allowExample, mediaType: plainLayer, url: "https://cdn.example.com/l", pushLayer: true, wantCode: 201},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var opts []Option
			if tc.policy != nil {
				opts = append(opts, WithURLPolicy(*tc.policy))
			}
			e := newEnv(t, opts...)
			cfg := e.pushBlob("app", []byte(`{"architecture":"amd64","os":"linux"}`))
			layer := []byte("foreign layer " + name)
			if tc.pushLayer {
				e.pushBlob("app", layer)
			}
			l := descOf(tc.mediaType, layer)
			m := mustJSON(t, map[string]any{"schemaVersion": 2, "mediaType": ociManifest,
				"config": desc{MediaType: "application/vnd.oci.image.config.v1+json", Digest: cfg, Size: 37},
				"layers": []map[string]any{{"mediaType": l.MediaType, "digest": l.Digest, "size": l.Size, "urls": []string{tc.url}}}})
			rec := e.do(req{method: "PUT", path: "/v2/app/manifests/v1", body: m, headers: map[string]string{"Content-Type": ociManifest}})
			if rec.Code != tc.wantCode {
				t.Fatalf("status %d, want %d: %s", rec.Code, tc.wantCode, rec.Body)
			}
			if tc.wantErr != "" && errorCode(t, rec) != tc.wantErr {
				t.Fatalf("error %q, want %q: %s", errorCode(t, rec), tc.wantErr, rec.Body)
			}
			if !strings.Contains(rec.Body.String(), tc.wantDetail) {
				t.Errorf("body %s does not say %q", rec.Body, tc.wantDetail)
			}
			if tc.wantCode == 201 {
				if got := e.do(req{method: "GET", path: "/v2/app/manifests/v1"}); got.Code != 200 || !bytes.Equal(got.Body.Bytes(), m) {
					t.Fatalf("GET after push: %d", got.Code)
				}
			}
		})
	}
}
