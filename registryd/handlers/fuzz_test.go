package handlers

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/berth-dev/berth/registryd/storage"
	"github.com/berth-dev/berth/registryd/storage/driver"
	"github.com/berth-dev/berth/registryd/storage/driver/inmemory"
)

// pathRecorder is a driver that records every path the layer above asks
// for, before the driver's own path validation sees it.
type pathRecorder struct {
	driver.StorageDriver
	mu    sync.Mutex
	paths []string
}

func (p *pathRecorder) saw(paths ...string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.paths = append(p.paths, paths...)
}

func (p *pathRecorder) GetContent(ctx context.Context, q string) ([]byte, error) {
	p.saw(q)
	return p.StorageDriver.GetContent(ctx, q)
}

func (p *pathRecorder) PutContent(ctx context.Context, q string, content []byte) error {
	p.saw(q)
	return p.StorageDriver.PutContent(ctx, q, content)
}

func (p *pathRecorder) Reader(ctx context.Context, q string, offset int64) (io.ReadCloser, error) {
	p.saw(q)
	return p.StorageDriver.Reader(ctx, q, offset)
}

func (p *pathRecorder) Writer(ctx context.Context, q string, appendTo bool) (driver.FileWriter, error) {
	p.saw(q)
	return p.StorageDriver.Writer(ctx, q, appendTo)
}

func (p *pathRecorder) Stat(ctx context.Context, q string) (driver.FileInfo, error) {
	p.saw(q)
	return p.StorageDriver.Stat(ctx, q)
}

func (p *pathRecorder) List(ctx context.Context, q string) ([]string, error) {
	p.saw(q)
	return p.StorageDriver.List(ctx, q)
}

func (p *pathRecorder) Move(ctx context.Context, from, to string) error {
	p.saw(from, to)
	return p.StorageDriver.Move(ctx, from, to)
}

func (p *pathRecorder) Delete(ctx context.Context, q string) error {
	p.saw(q)
	return p.StorageDriver.Delete(ctx, q)
}

func (p *pathRecorder) RedirectURL(ctx context.Context, method, q string) (string, error) {
	p.saw(q)
	return p.StorageDriver.RedirectURL(ctx, method, q)
}

func (p *pathRecorder) Walk(ctx context.Context, q string, f driver.WalkFn, options ...driver.WalkOption) error {
	p.saw(q)
	return p.StorageDriver.Walk(ctx, q, f, options...)
}

// insideLayout says why storage path q is outside the part of the tree a
// request may touch: Distribution's root, and below repositories/ only a
// repository whose name is valid.
func insideLayout(q string) string {
	if path.Clean(q) != q || (q != storage.RootPath && !strings.HasPrefix(q, storage.RootPath+"/")) {
		return "outside " + storage.RootPath
	}
	rest, ok := strings.CutPrefix(q, storage.RootPath+"/repositories/")
	if !ok {
		return ""
	}
	var name []string
	for _, seg := range strings.Split(rest, "/") {
		if strings.HasPrefix(seg, "_") {
			break
		}
		name = append(name, seg)
	}
	if n := strings.Join(name, "/"); !storage.ValidName(n) {
		return "in repository " + strconv.Quote(n)
	}
	return ""
}

var fuzzMethods = []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete, http.MethodOptions}

// FuzzRequest sends one request of any method, path, query, body and
// Content-Type to a handler whose storage holds an image, and checks what
// a hostile client must never get: a panic, a server error, a storage
// path outside the layout (".." or encoded separators in names, digests,
// tags or upload ids), or a page longer than its n.
func FuzzRequest(f *testing.F) {
	f.Add(uint8(0), "/v2/lib/app/tags/list?n=1", []byte(nil), "")
	f.Add(uint8(2), "/v2/lib/app/blobs/uploads/?digest=sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824", []byte("hello"), "")
	f.Add(uint8(3), "/v2/lib/app/manifests/v2", []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}`), "application/vnd.oci.image.index.v1+json")
	f.Fuzz(func(t *testing.T, method uint8, target string, body []byte, contentType string) {
		u, err := url.ParseRequestURI(target)
		if err != nil || u.Host != "" || u.Scheme != "" {
			return
		}
		rec := &pathRecorder{StorageDriver: inmemory.New()}
		e := &env{t: t, drv: rec, h: New(rec, WithDeleteEnabled(true), WithCatalogMaxEntries(3))}
		e.image("lib/app", "fuzz", nil)
		e.pushManifest("lib/app", "v1", "application/vnd.oci.image.manifest.v1+json", e.image("lib/app", "fuzz", nil))
		rec.paths = nil

		r := &http.Request{
			Method: fuzzMethods[int(method)%len(fuzzMethods)], URL: u, RequestURI: target, Host: "registry.test",
			Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1, Header: http.Header{},
			Body: io.NopCloser(bytes.NewReader(body)), ContentLength: int64(len(body)),
		}
		if contentType != "" {
			r.Header.Set("Content-Type", contentType)
		}
		w := httptest.NewRecorder()
		e.h.ServeHTTP(w, r.WithContext(context.Background()))

		if w.Code >= 500 {
			t.Fatalf("%s %s: %d %s", r.Method, target, w.Code, w.Body)
		}
		for _, q := range rec.paths {
			if why := insideLayout(q); why != "" {
				t.Fatalf("%s %s: storage asked for %q, %s", r.Method, target, q, why)
			}
		}
		if n, err := strconv.Atoi(u.Query().Get("n")); err == nil && w.Code == http.StatusOK && r.Method == http.MethodGet {
			var page struct {
				Tags         []string `json:"tags"`
				Repositories []string `json:"repositories"`
			}
			if json.Unmarshal(w.Body.Bytes(), &page) == nil && len(page.Tags)+len(page.Repositories) > n {
				t.Fatalf("%s %s: a page of %d entries for n=%d", r.Method, target, len(page.Tags)+len(page.Repositories), n)
			}
		}
	})
}
