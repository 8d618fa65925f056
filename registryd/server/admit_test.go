package server

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/testutil"
	"github.com/berth-dev/berth/registryd/handlers"
	"github.com/berth-dev/berth/registryd/storage"
	"github.com/berth-dev/berth/registryd/storage/driver/inmemory"
)

// The referrers index is written while answering reads: those writes are
// admitted like write requests, never while read-only, and read-only is
// reported only once an admitted one has finished.
func TestWriteGateAdmitsStorageWrites(t *testing.T) {
	g := newWriteGate(false)
	release, ok := g.admit()
	if !ok {
		t.Fatal("a write refused in read-write mode")
	}
	g.Set(true)
	if _, ok := g.admit(); ok {
		t.Error("a write admitted after the switch to read-only")
	}
	if g.Effective() {
		t.Fatal("read-only reported while an admitted write runs")
	}
	release()
	testutil.Eventually(t, "read-only to be reported", g.Effective)
	if _, ok := g.admit(); ok {
		t.Error("a write admitted while read-only")
	}
	g.Set(false)
	release, ok = g.admit()
	if !ok {
		t.Fatal("a write refused after read-write came back")
	}
	release()
}

// The composition server.New makes: the gate around the handler, which
// asks the gate before it writes storage while answering a read. While
// read-only every kind of write request gets 405 UNSUPPORTED, reads are
// served, and answering referrers writes no index; with read-write back,
// writes go through again and the index is written.
func TestWriteGateRefusesEveryWrite(t *testing.T) {
	drv := inmemory.New()
	g := newWriteGate(false)
	srv := httptest.NewServer(g.wrap(handlers.New(drv, handlers.WithDeleteEnabled(true), handlers.WithWriteAdmission(g.admit))))
	t.Cleanup(srv.Close)
	c := srv.Client()
	do := func(method, url string, body []byte, contentType string) (int, string) {
		t.Helper()
		r, err := http.NewRequest(method, url, bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if contentType != "" {
			r.Header.Set("Content-Type", contentType)
		}
		resp, err := c.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	const ociManifest = "application/vnd.oci.image.manifest.v1+json"
	base := srv.URL + "/v2/app"
	config, layer := []byte(`{"architecture":"amd64","os":"linux"}`), randomBlob()
	for _, b := range [][]byte{config, layer} {
		if st, body, err := pushBlob(c, srv.URL, "app", b); err != nil || st != http.StatusCreated {
			t.Fatalf("blob push: %d %s %v", st, body, err)
		}
	}
	manifest := func(subject string) []byte {
		return fmt.Appendf(nil, `{"schemaVersion":2,"mediaType":%q,"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":%q,"size":%d},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":%q,"size":%d}]%s}`,
			ociManifest, digestOf(config), len(config), digestOf(layer), len(layer), subject)
	}
	image := manifest("")
	if st, body := do(http.MethodPut, base+"/manifests/v1", image, ociManifest); st != http.StatusCreated {
		t.Fatalf("manifest PUT: %d %s", st, body)
	}
	subject := digestOf(image)
	signature := manifest(fmt.Sprintf(`,"subject":{"mediaType":%q,"digest":%q,"size":%d}`, ociManifest, subject, len(image)))
	if st, body := do(http.MethodPut, base+"/manifests/sig", signature, ociManifest); st != http.StatusCreated {
		t.Fatalf("referrer PUT: %d %s", st, body)
	}
	resp, err := c.Post(base+"/blobs/uploads/", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	session := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusAccepted || session == "" {
		t.Fatalf("upload start: %d, Location %q", resp.StatusCode, session)
	}
	if !strings.HasPrefix(session, "http") {
		session = srv.URL + session
	}
	index := storage.RepositoryPath("app") + "/_berth"
	indexWritten := func() bool { _, err := drv.Stat(t.Context(), index); return err == nil }

	g.Set(true)
	testutil.Eventually(t, "read-only to be reported", g.Effective)
	x := digestOf([]byte("x"))
	writes := map[string]struct {
		method, url string
		body        []byte
		contentType string
	}{
		"start upload":    {method: http.MethodPost, url: base + "/blobs/uploads/"},
		"patch upload":    {method: http.MethodPatch, url: session, body: []byte("x")},
		"put upload":      {method: http.MethodPut, url: withDigest(session, x), body: []byte("x")},
		"cancel upload":   {method: http.MethodDelete, url: session},
		"put manifest":    {method: http.MethodPut, url: base + "/manifests/v2", body: image, contentType: ociManifest},
		"delete manifest": {method: http.MethodDelete, url: base + "/manifests/" + subject},
		"delete tag":      {method: http.MethodDelete, url: base + "/manifests/v1"},
		"delete blob":     {method: http.MethodDelete, url: base + "/blobs/" + digestOf(layer)},
	}
	for name, w := range writes {
		if st, body := do(w.method, w.url, w.body, w.contentType); st != http.StatusMethodNotAllowed || !strings.Contains(body, "UNSUPPORTED") {
			t.Errorf("%s while read-only: %d %s", name, st, body)
		}
	}
	for _, url := range []string{srv.URL + "/v2/", base + "/manifests/v1", base + "/tags/list", srv.URL + "/v2/_catalog", session, base + "/referrers/" + subject} {
		if st, body := do(http.MethodGet, url, nil, ""); st >= 300 {
			t.Errorf("GET %s while read-only: %d %s", url, st, body)
		}
	}
	if indexWritten() {
		t.Error("answering referrers wrote the index while read-only")
	}

	g.Set(false)
	if st, body := do(http.MethodGet, base+"/referrers/"+subject, nil, ""); st != http.StatusOK || !strings.Contains(body, digestOf(signature)) {
		t.Fatalf("referrers after read-write came back: %d %s", st, body)
	}
	if !indexWritten() {
		t.Error("answering referrers did not write the index once read-write")
	}
	if st, body := do(http.MethodDelete, base+"/manifests/v1", nil, ""); st != http.StatusAccepted {
		t.Fatalf("a write after read-write came back: %d %s", st, body)
	}
}
