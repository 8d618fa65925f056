package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/berth-dev/berth/internal/testutil"
	"github.com/berth-dev/berth/registryd/configuration"
	"github.com/berth-dev/berth/registryd/notifications"
)

// parseConfig parses a config.yml for a test.
func parseConfig(t *testing.T, yml string) *configuration.Configuration {
	t.Helper()
	cfg, err := configuration.ParseWithEnv(strings.NewReader(yml), nil)
	if err != nil {
		t.Fatalf("parse config: %v", err)
	}
	return cfg
}

// running is a server serving on loopback until stop.
type running struct {
	srv  *Server
	url  string
	stop func() // cancels Serve and waits for it to return
}

func serve(t *testing.T, cfg *configuration.Configuration) *running {
	t.Helper()
	srv, err := New(cfg, Options{Logger: slog.New(slog.DiscardHandler), AccessLog: io.Discard})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, l) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Serve: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return &running{srv: srv, url: "http://" + l.Addr().String(), stop: stop}
}

func do(t *testing.T, method, url, contentType string, body []byte) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	req.Header.Set("User-Agent", "berth-test")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

func expect(t *testing.T, resp *http.Response, status int) {
	t.Helper()
	if resp.StatusCode != status {
		t.Fatalf("%s %s = %d, want %d", resp.Request.Method, resp.Request.URL, resp.StatusCode, status)
	}
}

// eventListener records the notification envelopes it receives; it
// answers 500 to the first failN requests.
type eventListener struct {
	*httptest.Server
	failN int32
	calls atomic.Int32
	mu    sync.Mutex
	envs  []notifications.Envelope
	types []string
}

func newEventListener(t *testing.T, failN int32) *eventListener {
	l := &eventListener{failN: failN}
	l.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if l.calls.Add(1) <= l.failN {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		var env notifications.Envelope
		if err := json.NewDecoder(r.Body).Decode(&env); err != nil {
			t.Errorf("listener: %v", err)
		}
		l.mu.Lock()
		l.envs = append(l.envs, env)
		l.types = append(l.types, r.Header.Get("Content-Type"))
		l.mu.Unlock()
	}))
	t.Cleanup(l.Close)
	return l
}

func (l *eventListener) events() []notifications.Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []notifications.Event
	for _, e := range l.envs {
		out = append(out, e.Events...)
	}
	return out
}

// TestNotifications pushes, pulls and deletes an image and checks what
// two listeners receive: one healthy, one that fails its first requests
// and gets everything after backing off.
func TestNotifications(t *testing.T) {
	good, flaky := newEventListener(t, 0), newEventListener(t, 3)
	cfg := parseConfig(t, fmt.Sprintf(`
version: 0.1
storage:
  inmemory:
  delete:
    enabled: true
http:
  addr: 127.0.0.1:5000
notifications:
  events:
    includereferences: true
  endpoints:
    - name: good
      url: %s
      headers:
        X-Token: [secret]
    - name: flaky
      url: %s
      threshold: 1
      backoff: 5ms
    - name: off
      url: http://127.0.0.1:1/never
      disabled: true
`, good.URL, flaky.URL))
	r := serve(t, cfg)

	config := []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}`)
	layer := []byte("layer bytes")
	cd, ld := digest.FromBytes(config), digest.FromBytes(layer)
	for _, b := range []struct {
		d    digest.Digest
		body []byte
	}{{cd, config}, {ld, layer}} {
		expect(t, do(t, http.MethodPost, r.url+"/v2/team/app/blobs/uploads/?digest="+b.d.String(), "application/octet-stream", b.body), http.StatusCreated)
	}
	manifest := []byte(fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",`+
		`"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":%q,"size":%d},`+
		`"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":%q,"size":%d}]}`, cd, len(config), ld, len(layer)))
	md := digest.FromBytes(manifest)
	const mt = "application/vnd.oci.image.manifest.v1+json"
	expect(t, do(t, http.MethodPut, r.url+"/v2/team/app/manifests/v1", mt, manifest), http.StatusCreated)
	expect(t, do(t, http.MethodGet, r.url+"/v2/team/app/manifests/v1", "", nil), http.StatusOK)
	expect(t, do(t, http.MethodGet, r.url+"/v2/team/app/blobs/"+ld.String(), "", nil), http.StatusOK)
	expect(t, do(t, http.MethodPost, r.url+"/v2/other/blobs/uploads/?mount="+ld.String()+"&from=team/app", "", nil), http.StatusCreated)
	expect(t, do(t, http.MethodDelete, r.url+"/v2/team/app/manifests/"+md.String(), "", nil), http.StatusAccepted)
	r.stop() // Serve returns once the queues are drained

	type want struct {
		action, repo, mediaType, tag, from string
		digest                             digest.Digest
		size                               int64
	}
	wants := []want{
		{action: "push", repo: "team/app", mediaType: notifications.BlobMediaType, digest: cd, size: int64(len(config))},
		{action: "push", repo: "team/app", mediaType: notifications.BlobMediaType, digest: ld, size: int64(len(layer))},
		{action: "push", repo: "team/app", mediaType: mt, tag: "v1", digest: md, size: int64(len(manifest))},
		{action: "pull", repo: "team/app", mediaType: mt, tag: "v1", digest: md, size: int64(len(manifest))},
		{action: "pull", repo: "team/app", mediaType: notifications.BlobMediaType, digest: ld, size: int64(len(layer))},
		{action: "mount", repo: "other", mediaType: notifications.BlobMediaType, from: "team/app", digest: ld, size: int64(len(layer))},
		{action: "delete", repo: "team/app", digest: md},
	}
	for name, l := range map[string]*eventListener{"good": good, "flaky": flaky} {
		got := l.events()
		if len(got) != len(wants) {
			t.Fatalf("%s listener got %d events, want %d: %+v", name, len(got), len(wants), got)
		}
		for i, w := range wants {
			e := got[i]
			tg := e.Target
			if e.Action != w.action || tg.Repository != w.repo || tg.MediaType != w.mediaType || tg.Tag != w.tag ||
				tg.FromRepository != w.from || tg.Digest != w.digest || tg.Size != w.size {
				t.Errorf("%s event %d = %s %+v, want %+v", name, i, e.Action, tg, w)
			}
			if e.ID == "" || e.Timestamp.IsZero() || e.Request.ID == "" || e.Request.Method == "" ||
				e.Request.UserAgent != "berth-test" || e.Source.InstanceID == "" || !strings.HasSuffix(e.Source.Addr, ":5000") {
				t.Errorf("%s event %d lacks request or source: %+v", name, i, e)
			}
		}
		if refs := got[2].Target.References; len(refs) != 2 || refs[0].Digest != cd || refs[1].Digest != ld {
			t.Errorf("%s: manifest push references = %+v, want config and layer", name, refs)
		}
		if u := got[2].Target.URL; u != r.url+"/v2/team/app/manifests/"+md.String() {
			t.Errorf("%s: manifest url = %q", name, u)
		}
		for _, ct := range l.types {
			if ct != notifications.EventsMediaType {
				t.Errorf("%s: Content-Type %q", name, ct)
			}
		}
	}
	if n := flaky.calls.Load(); n != int32(len(wants))+3 {
		t.Errorf("flaky listener saw %d requests, want %d (3 failures, then each event once)", n, len(wants)+3)
	}
}

// TestDebugServer checks /debug/health following a file check, the
// main-port guard, the metrics endpoint and pprof on the debug listener.
func TestDebugServer(t *testing.T) {
	down := filepath.Join(t.TempDir(), "out-of-rotation")
	cfg := parseConfig(t, fmt.Sprintf(`
version: 0.1
storage:
  inmemory:
http:
  addr: 127.0.0.1:0
  debug:
    addr: 127.0.0.1:0
    prometheus:
      enabled: true
      path: /metrics
health:
  storagedriver:
    enabled: true
    interval: 5ms
  file:
    - file: %s
      interval: 5ms
`, down))
	r := serve(t, cfg)
	testutil.Eventually(t, "the debug listener", func() bool { return r.srv.DebugAddr() != "" })
	debug := "http://" + r.srv.DebugAddr()

	health := func() (int, map[string]string) {
		resp, err := http.Get(debug + "/debug/health")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var failing map[string]string
		if err := json.NewDecoder(resp.Body).Decode(&failing); err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, failing
	}
	if code, failing := health(); code != 200 || len(failing) != 0 {
		t.Fatalf("healthy registry: %d %v", code, failing)
	}
	expect(t, do(t, http.MethodGet, r.url+"/v2/", "", nil), http.StatusOK)

	if err := os.WriteFile(down, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, "/debug/health to report the file", func() bool {
		code, failing := health()
		return code == http.StatusServiceUnavailable && failing[down] == "file exists"
	})
	expect(t, do(t, http.MethodGet, r.url+"/v2/", "", nil), http.StatusServiceUnavailable)

	if err := os.Remove(down); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, "/debug/health to recover", func() bool { code, _ := health(); return code == 200 })
	expect(t, do(t, http.MethodGet, r.url+"/v2/", "", nil), http.StatusOK)
	expect(t, do(t, http.MethodGet, r.url+"/v2/nope/manifests/latest", "", nil), http.StatusNotFound)

	expectMetrics(t, debug,
		`registryd_http_requests_total{code="200",method="GET",route="base"} 2`,
		`registryd_http_requests_total{code="503",method="GET",route="base"} 1`,
		`registryd_http_requests_total{code="404",method="GET",route="manifest"} 1`,
		`registryd_http_request_duration_seconds_count{method="GET",route="base"} 3`,
		`registryd_storage_operation_duration_seconds_count{driver="inmemory",operation="Stat"}`,
		`registryd_http_uploads_in_flight 0`,
	)
	expect(t, do(t, http.MethodGet, debug+"/debug/pprof/", "", nil), http.StatusOK)
	expect(t, do(t, http.MethodGet, r.url+"/debug/health", "", nil), http.StatusNotFound)
}

// expectMetrics fails t unless the metrics served at debug + "/metrics"
// contain every line of want.
func expectMetrics(t *testing.T, debug string, want ...string) {
	t.Helper()
	resp, err := http.Get(debug + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, w := range want {
		if !strings.Contains(string(body), w) {
			t.Errorf("metrics lack %s", w)
		}
	}
}

func TestPurgeSettings(t *testing.T) {
	no := false
	tests := map[string]struct {
		m        configuration.Maintenance
		on       bool
		age, itv time.Duration
		dryRun   bool
	}{
		"absent section uses Distribution's defaults": {on: true, age: 168 * time.Hour, itv: 24 * time.Hour},
		"disabled": {m: configuration.Maintenance{UploadPurging: &configuration.UploadPurging{Enabled: &no}}},
		"configured": {
			m:  configuration.Maintenance{UploadPurging: &configuration.UploadPurging{Age: time.Hour, Interval: time.Minute, DryRun: true}},
			on: true, age: time.Hour, itv: time.Minute, dryRun: true,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			p, on := purgeSettings(&tc.m)
			if on != tc.on {
				t.Fatalf("enabled = %v, want %v", on, tc.on)
			}
			if on && (p.Age != tc.age || p.Interval != tc.itv || p.DryRun != tc.dryRun) {
				t.Errorf("purger = age %v interval %v dryrun %v", p.Age, p.Interval, p.DryRun)
			}
		})
	}
}
