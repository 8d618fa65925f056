package handlers

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/berth-dev/berth/registryd/storage/driver"
	"github.com/berth-dev/berth/registryd/storage/driver/inmemory"
)

// env is a handler over a fresh inmemory driver.
type env struct {
	t   *testing.T
	drv driver.StorageDriver
	h   http.Handler
}

func newEnv(t *testing.T, opts ...Option) *env {
	t.Helper()
	drv := inmemory.New()
	return &env{t: t, drv: drv, h: New(drv, opts...)}
}

// req describes one request.
type req struct {
	method  string
	path    string
	body    []byte
	headers map[string]string
	chunked bool // declare no Content-Length, as a chunked body does
}

func (e *env) do(r req) *httptest.ResponseRecorder {
	e.t.Helper()
	var body io.Reader
	if r.body != nil {
		body = bytes.NewReader(r.body)
	}
	hr := httptest.NewRequest(r.method, r.path, body)
	if r.chunked {
		hr.ContentLength = -1
		hr.TransferEncoding = []string{"chunked"}
	}
	for k, v := range r.headers {
		hr.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	e.h.ServeHTTP(rec, hr)
	if got := rec.Header().Get("Docker-Distribution-API-Version"); got != "registry/2.0" {
		e.t.Errorf("%s %s: Docker-Distribution-API-Version = %q", r.method, r.path, got)
	}
	return rec
}

// pushBlob uploads content monolithically into repo.
func (e *env) pushBlob(repo string, content []byte) digest.Digest {
	e.t.Helper()
	d := digest.FromBytes(content)
	rec := e.do(req{method: "POST", path: "/v2/" + repo + "/blobs/uploads/?digest=" + d.String(), body: content})
	if rec.Code != http.StatusCreated {
		e.t.Fatalf("push blob: %d %s", rec.Code, rec.Body)
	}
	return d
}

// pushManifest PUTs a manifest and requires 201.
func (e *env) pushManifest(repo, ref, mediaType string, content []byte) digest.Digest {
	e.t.Helper()
	rec := e.do(req{method: "PUT", path: "/v2/" + repo + "/manifests/" + ref, body: content, headers: map[string]string{"Content-Type": mediaType}})
	if rec.Code != http.StatusCreated {
		e.t.Fatalf("push manifest %s:%s: %d %s", repo, ref, rec.Code, rec.Body)
	}
	return digest.FromBytes(content)
}

// errorCode decodes the first error code of an error body.
func errorCode(t *testing.T, rec *httptest.ResponseRecorder) string {
	t.Helper()
	var body struct {
		Errors []struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"errors"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || len(body.Errors) == 0 {
		return ""
	}
	return body.Errors[0].Code
}

type desc struct {
	MediaType    string            `json:"mediaType"`
	Digest       digest.Digest     `json:"digest"`
	Size         int64             `json:"size"`
	ArtifactType string            `json:"artifactType,omitempty"`
	Annotations  map[string]string `json:"annotations,omitempty"`
	Platform     map[string]string `json:"platform,omitempty"`
}

func descOf(mediaType string, content []byte) desc {
	return desc{MediaType: mediaType, Digest: digest.FromBytes(content), Size: int64(len(content))}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// image pushes a config and one layer into repo and returns the manifest
// bytes (not pushed) of an OCI image manifest with the given extra fields.
func (e *env) image(repo string, seed string, extra map[string]any) []byte {
	e.t.Helper()
	cfg := []byte(`{"architecture":"amd64","os":"linux","seed":"` + seed + `"}`)
	layer := []byte("layer of " + seed)
	e.pushBlob(repo, cfg)
	e.pushBlob(repo, layer)
	m := map[string]any{
		"schemaVersion": 2,
		"mediaType":     "application/vnd.oci.image.manifest.v1+json",
		"config":        descOf("application/vnd.oci.image.config.v1+json", cfg),
		"layers":        []desc{descOf("application/vnd.oci.image.layer.v1.tar", layer)},
	}
	for k, v := range extra {
		m[k] = v
	}
	return mustJSON(e.t, m)
}
