package server

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/berth-dev/berth/registryd/configuration"
)

// newTestHandler builds the handler of a server over inmemory storage from
// the given extra config.yml sections.
func newTestHandler(t *testing.T, sections string) http.Handler {
	t.Helper()
	yml := "version: 0.1\nlog: {accesslog: {disabled: true}}\nstorage: {inmemory: {}}\nhttp: {addr: \"127.0.0.1:0\"}\n" + sections
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

func serveReq(t *testing.T, h http.Handler, method, path, contentType string, body []byte) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(method, path, bytes.NewReader(body))
	if contentType != "" {
		r.Header.Set("Content-Type", contentType)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	return rec
}

// putBlob uploads content monolithically and returns its digest.
func putBlob(t *testing.T, h http.Handler, repo string, content []byte) digest.Digest {
	t.Helper()
	d := digest.FromBytes(content)
	if rec := serveReq(t, h, "POST", "/v2/"+repo+"/blobs/uploads/?digest="+d.String(), "", content); rec.Code != http.StatusCreated {
		t.Fatalf("push blob: %d %s", rec.Code, rec.Body)
	}
	return d
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestValidationConfiguration checks that every key of the validation
// section reaches the handler: validation.disabled, the deprecated
// validation.enabled, manifests.urls.allow and deny, and
// manifests.indexes.platforms with platformlist.
func TestValidationConfiguration(t *testing.T) {
	const (
		ociManifest = "application/vnd.oci.image.manifest.v1+json"
		ociIndex    = "application/vnd.oci.image.index.v1+json"
		ndLayer     = "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
	)
	// The probes, pushed to a fresh registry per configuration.
	type probe func(t *testing.T, h http.Handler) int
	image := func(t *testing.T, h http.Handler, seed string) []byte {
		cfg := []byte(`{"architecture":"amd64","os":"linux","seed":"` + seed + `"}`)
		layer := []byte("layer " + seed)
		putBlob(t, h, "app", cfg)
		putBlob(t, h, "app", layer)
		return mustJSON(t, map[string]any{"schemaVersion": 2, "mediaType": ociManifest,
			"config": map[string]any{"mediaType": "application/vnd.oci.image.config.v1+json", "digest": digest.FromBytes(cfg), "size": len(cfg)},
			"layers": []map[string]any{{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": digest.FromBytes(layer), "size": len(layer)}}})
	}
	foreign := func(url string) probe {
		return func(t *testing.T, h http.Handler) int {
			cfg := putBlob(t, h, "app", []byte(`{"os":"linux"}`))
			m := mustJSON(t, map[string]any{"schemaVersion": 2, "mediaType": ociManifest,
				"config": map[string]any{"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cfg, "size": 14},
				"layers": []map[string]any{{"mediaType": ndLayer, "digest": digest.FromString(url), "size": 10, "urls": []string{url}}}})
			return serveReq(t, h, "PUT", "/v2/app/manifests/foreign", ociManifest, m).Code
		}
	}
	// sparseIndex pushes an index with a pushed linux/amd64 image and a
	// linux/<missing> child that was never pushed.
	sparseIndex := func(missing string) probe {
		return func(t *testing.T, h http.Handler) int {
			img := image(t, h, missing)
			d := digest.FromBytes(img)
			if rec := serveReq(t, h, "PUT", "/v2/app/manifests/"+d.String(), ociManifest, img); rec.Code != http.StatusCreated {
				t.Fatalf("push image: %d %s", rec.Code, rec.Body)
			}
			present := "amd64"
			if missing == "amd64" {
				present = "s390x"
			}
			idx := mustJSON(t, map[string]any{"schemaVersion": 2, "mediaType": ociIndex, "manifests": []map[string]any{
				{"mediaType": ociManifest, "digest": d, "size": len(img), "platform": map[string]string{"os": "linux", "architecture": present}},
				{"mediaType": ociManifest, "digest": digest.FromString("never pushed"), "size": 10, "platform": map[string]string{"os": "linux", "architecture": missing}},
			}})
			return serveReq(t, h, "PUT", "/v2/app/manifests/idx", ociIndex, idx).Code
		}
	}
	probes := map[string]probe{
		"cdn.example.com URL":  foreign("https://cdn.example.com/layer"),
		"www.example.com URL":  foreign("https://www.example.com/layer"),
		"arm64 child missing":  sparseIndex("arm64"),
		"amd64 child missing":  sparseIndex("amd64"),
		"example.org http URL": foreign("http://example.org/layer"),
	}
	const (
		ok      = http.StatusCreated
		refused = http.StatusBadRequest
	)
	tests := map[string]struct {
		validation string
		want       map[string]int // by probe
	}{
		"no validation section": {"", map[string]int{
			"cdn.example.com URL": refused, "www.example.com URL": refused, "example.org http URL": refused,
			"arm64 child missing": refused, "amd64 child missing": refused}},
		"urls.allow": {"validation: {manifests: {urls: {allow: ['^https://([^/]+\\.)*example\\.com/']}}}", map[string]int{
			"cdn.example.com URL": ok, "www.example.com URL": ok, "example.org http URL": refused,
			"arm64 child missing": refused}},
		"urls.allow and deny": {"validation: {manifests: {urls: {allow: ['^https://([^/]+\\.)*example\\.com/', '^http://example\\.org/'], deny: ['^https://www\\.example\\.com/']}}}", map[string]int{
			"cdn.example.com URL": ok, "www.example.com URL": refused, "example.org http URL": ok}},
		"urls.deny alone allows the rest": {"validation: {manifests: {urls: {deny: ['^https://www\\.']}}}", map[string]int{
			"cdn.example.com URL": ok, "www.example.com URL": refused, "example.org http URL": ok}},
		"disabled": {"validation: {disabled: true, manifests: {urls: {deny: ['.']}}}", map[string]int{
			"cdn.example.com URL": ok, "www.example.com URL": ok,
			"arm64 child missing": ok, "amd64 child missing": ok}},
		"deprecated enabled wins over disabled": {"validation: {enabled: true, disabled: true}", map[string]int{
			"cdn.example.com URL": refused, "arm64 child missing": refused}},
		"indexes.platforms none": {"validation: {manifests: {indexes: {platforms: none}}}", map[string]int{
			"arm64 child missing": ok, "amd64 child missing": ok, "cdn.example.com URL": refused}},
		"indexes.platforms list": {"validation: {manifests: {indexes: {platforms: List, platformlist: [{os: linux, architecture: amd64}]}}}", map[string]int{
			"arm64 child missing": ok, "amd64 child missing": refused}},
		"indexes.platforms all": {"validation: {manifests: {indexes: {platforms: ALL}}}", map[string]int{
			"arm64 child missing": refused}},
	}
	for name, tc := range tests {
		for probeName, want := range tc.want {
			t.Run(name+"/"+probeName, func(t *testing.T) {
				h := newTestHandler(t, tc.validation+"\n")
				if got := probes[probeName](t, h); got != want {
					t.Errorf("PUT answered %d, want %d", got, want)
				}
			})
		}
	}
}
