package health

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/berth-dev/berth/registryd/storage/driver/inmemory"
)

func TestStatusThreshold(t *testing.T) {
	boom := errors.New("boom")
	tests := map[string]struct {
		threshold int
		updates   []error
		failing   bool
	}{
		"healthy at start":                    {threshold: 3},
		"one failure fails without threshold": {threshold: 0, updates: []error{boom}, failing: true},
		"below threshold stays healthy":       {threshold: 3, updates: []error{boom, boom}},
		"threshold reached fails":             {threshold: 3, updates: []error{boom, boom, boom}, failing: true},
		"a success resets the count":          {threshold: 2, updates: []error{boom, nil, boom}},
		"recovers on the first success":       {threshold: 1, updates: []error{boom, boom, nil}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			s := NewStatus(tc.threshold)
			for _, u := range tc.updates {
				s.Update(u)
			}
			if got := s.Check(context.Background()) != nil; got != tc.failing {
				t.Errorf("failing = %v, want %v", got, tc.failing)
			}
		})
	}
}

func get(t *testing.T, h http.Handler, method string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, "/debug/health", nil))
	return rec.Code, rec.Body.String()
}

func TestHandlerAndGuard(t *testing.T) {
	r := NewRegistry()
	m := NewManual()
	if err := r.Register("manual_http_status", m); err != nil {
		t.Fatal(err)
	}
	if err := r.Register("manual_http_status", m); err == nil {
		t.Error("duplicate name accepted")
	}
	api := r.Guard(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusTeapot) }))
	if code, body := get(t, r.Handler(), http.MethodGet); code != 200 || body != "{}" {
		t.Fatalf("healthy: %d %s", code, body)
	}
	if code, _ := get(t, api, http.MethodGet); code != http.StatusTeapot {
		t.Fatalf("guard blocked a healthy registry: %d", code)
	}
	m.Down()
	code, body := get(t, r.Handler(), http.MethodGet)
	var failing map[string]string
	if err := json.Unmarshal([]byte(body), &failing); err != nil || code != 503 || failing["manual_http_status"] != "manual check" {
		t.Fatalf("unhealthy: %d %s", code, body)
	}
	code, body = get(t, api, http.MethodGet)
	if code != 503 || !json.Valid([]byte(body)) {
		t.Fatalf("guard: %d %s", code, body)
	}
	if code, _ := get(t, r.Handler(), http.MethodPost); code != http.StatusMethodNotAllowed {
		t.Errorf("POST /debug/health = %d", code)
	}
	rec := httptest.NewRecorder()
	m.Handler(true).ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/debug/health/up", nil))
	if code, _ := get(t, r.Handler(), http.MethodGet); code != 200 {
		t.Fatalf("after up: %d", code)
	}
}

func TestChecks(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	file := filepath.Join(dir, "down")
	fc := FileCheck(file)
	if err := fc.Check(ctx); err != nil {
		t.Errorf("file check without the file: %v", err)
	}
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := fc.Check(ctx); err == nil {
		t.Error("file check passes while the file exists")
	}

	var gotMethod, gotAuth string
	status := http.StatusOK
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotMethod, gotAuth = r.Method, r.Header.Get("Authorization")
		w.WriteHeader(status)
	}))
	defer srv.Close()
	hc := HTTPCheck(srv.URL, 0, 0, http.Header{"Authorization": {"Basic x"}}, nil)
	if err := hc.Check(ctx); err != nil || gotMethod != http.MethodHead || gotAuth != "Basic x" {
		t.Errorf("http check: %v, method %s, auth %q", err, gotMethod, gotAuth)
	}
	status = http.StatusInternalServerError
	if err := hc.Check(ctx); err == nil {
		t.Error("http check passes on 500")
	}
	if err := HTTPCheck(srv.URL, 500, 0, nil, nil).Check(ctx); err != nil {
		t.Errorf("http check with statuscode 500: %v", err)
	}

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	if err := TCPCheck(addr, 0).Check(ctx); err != nil {
		t.Errorf("tcp check on a listener: %v", err)
	}
	l.Close()
	if err := TCPCheck(addr, 0).Check(ctx); err == nil {
		t.Error("tcp check passes on a closed port")
	}

	if err := StorageDriverCheck(inmemory.New()).Check(ctx); err != nil {
		t.Errorf("storage driver check on an empty driver: %v", err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := StorageDriverCheck(inmemory.New()).Check(cctx); err == nil {
		t.Error("storage driver check passes when the driver fails")
	}
}

// TestCheckTimeouts: an HTTP check whose server does not answer, and a TCP
// check whose connection is not accepted (a listener whose backlog is
// full), fail after their timeout.
func TestCheckTimeouts(t *testing.T) {
	ctx := context.Background()
	release := make(chan struct{})
	hang := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { <-release }))
	defer hang.Close()
	defer close(release)
	within(t, "the http check", 10*time.Second, func() error { return HTTPCheck(hang.URL, 0, 50*time.Millisecond, nil, nil).Check(ctx) })

	// A listener with a backlog of 0 that never accepts: once its queue is
	// full, the kernel drops further SYNs and a connect hangs.
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(fd)
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(sa.(*syscall.SockaddrInet4).Port))
	var held []net.Conn
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	for range 8 { // fill the queue
		c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond)
		if err != nil {
			break
		}
		held = append(held, c)
	}
	within(t, "the tcp check", 10*time.Second, func() error { return TCPCheck(addr, 100*time.Millisecond).Check(ctx) })
}

// within runs check and requires it to fail before limit.
func within(t *testing.T, what string, limit time.Duration, check func() error) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- check() }()
	select {
	case err := <-done:
		if err == nil {
			t.Errorf("%s passed against a peer that does not answer", what)
		}
	case <-time.After(limit):
		t.Fatalf("%s did not time out within %v", what, limit)
	}
}
