package notifications

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/testutil"
)

// listener records the envelopes it accepts; it fails the first failN
// requests with 503.
type listener struct {
	srv   *httptest.Server
	failN int32
	calls atomic.Int32
	mu    sync.Mutex
	got   []Event
	hdr   []http.Header
	block chan struct{} // when set, requests wait on it
}

func newListener(t *testing.T, failN int32) *listener {
	l := &listener{failN: failN}
	l.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if l.block != nil {
			<-l.block
		}
		if l.calls.Add(1) <= l.failN {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		var env Envelope
		if err := json.NewDecoder(r.Body).Decode(&env); err != nil {
			t.Errorf("decode envelope: %v", err)
		}
		l.mu.Lock()
		l.got = append(l.got, env.Events...)
		l.hdr = append(l.hdr, r.Header.Clone())
		l.mu.Unlock()
	}))
	t.Cleanup(l.srv.Close)
	return l
}

func (l *listener) events() []Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]Event(nil), l.got...)
}

func event(id, action, mediaType string) Event {
	return Event{ID: id, Action: action, Target: Target{MediaType: mediaType, Repository: "r"}}
}

func TestEndpointDeliversEnvelopes(t *testing.T) {
	l := newListener(t, 0)
	e := NewEndpoint(EndpointConfig{Name: "a", URL: l.srv.URL, Headers: http.Header{"Authorization": {"Bearer x"}}})
	e.Write(event("1", ActionPush, "application/vnd.oci.image.manifest.v1+json"))
	e.Write(event("2", ActionPull, BlobMediaType))
	if err := e.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	got := l.events()
	if len(got) != 2 || got[0].ID != "1" || got[1].ID != "2" {
		t.Fatalf("events = %+v, want ids 1, 2 in order", got)
	}
	h := l.hdr[0]
	if ct := h.Get("Content-Type"); ct != EventsMediaType {
		t.Errorf("Content-Type = %q", ct)
	}
	if a := h.Get("Authorization"); a != "Bearer x" {
		t.Errorf("Authorization = %q", a)
	}
	if s := e.Stats(); s.Delivered != 2 || s.Pending != 0 || s.Statuses[200] != 2 {
		t.Errorf("stats = %+v", s)
	}
}

func TestEndpointRetriesWithBackoff(t *testing.T) {
	l := newListener(t, 5)
	e := NewEndpoint(EndpointConfig{Name: "a", URL: l.srv.URL, Threshold: 2, Backoff: 5 * time.Millisecond})
	start := time.Now()
	for _, id := range []string{"1", "2", "3"} {
		e.Write(event(id, ActionPush, "m"))
	}
	testutil.Eventually(t, "three deliveries", func() bool { return e.Stats().Delivered == 3 })
	// Attempts 1 and 2 run at once; attempts 3, 4, 5 and 6 each wait one
	// backoff (the threshold stays reached until a success).
	if el := time.Since(start); el < 4*5*time.Millisecond {
		t.Errorf("delivered after %v, want at least 4 backoffs", el)
	}
	got := l.events()
	for i, id := range []string{"1", "2", "3"} {
		if got[i].ID != id {
			t.Fatalf("event %d = %s, want %s (order kept across retries)", i, got[i].ID, id)
		}
	}
	s := e.Stats()
	if s.Failures != 5 || s.Delivered != 3 || s.Statuses[503] != 5 {
		t.Errorf("stats = %+v, want 5 failures, 3 delivered", s)
	}
	if err := e.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestEndpointIgnores(t *testing.T) {
	l := newListener(t, 0)
	e := NewEndpoint(EndpointConfig{Name: "a", URL: l.srv.URL,
		IgnoredMediaTypes: []string{BlobMediaType}, IgnoredActions: []string{ActionPull}})
	e.Write(event("blob", ActionPush, BlobMediaType))
	e.Write(event("pull", ActionPull, "m"))
	e.Write(event("keep", ActionDelete, ""))
	if err := e.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := l.events(); len(got) != 1 || got[0].ID != "keep" {
		t.Fatalf("events = %+v, want only keep", got)
	}
}

func TestEndpointBoundedQueueAndAbandon(t *testing.T) {
	l := newListener(t, 0)
	l.block = make(chan struct{})
	e := NewEndpoint(EndpointConfig{Name: "a", URL: l.srv.URL, QueueSize: 2})
	e.Write(event("1", ActionPush, "m"))
	e.Write(event("2", ActionPush, "m"))
	e.Write(event("3", ActionPush, "m")) // queue full: dropped
	if s := e.Stats(); s.Dropped != 1 || s.Pending != 2 {
		t.Fatalf("stats = %+v, want 1 dropped, 2 pending", s)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := e.Close(ctx); err == nil {
		t.Fatal("Close with an ended context and a stuck listener returned nil")
	}
	close(l.block)
	if s := e.Stats(); s.Dropped != 3 || s.Pending != 0 {
		t.Fatalf("stats = %+v, want 3 dropped after abandon", s)
	}
	e.Write(event("4", ActionPush, "m"))
	if s := e.Stats(); s.Dropped != 4 {
		t.Errorf("write after close not counted as dropped: %+v", s)
	}
}

func TestBroadcasterFansOut(t *testing.T) {
	a, b := newListener(t, 0), newListener(t, 0)
	br := NewBroadcaster(NewEndpoint(EndpointConfig{Name: "a", URL: a.srv.URL}), NewEndpoint(EndpointConfig{Name: "b", URL: b.srv.URL}))
	br.Write(event("1", ActionDelete, ""))
	if err := br.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(a.events()) != 1 || len(b.events()) != 1 {
		t.Fatalf("a=%v b=%v", a.events(), b.events())
	}
}

func TestEnvelopeShape(t *testing.T) {
	b, err := json.Marshal(Envelope{Events: []Event{{ID: "x", Action: ActionDelete, Target: Target{Repository: "r", Tag: "t"}}}})
	if err != nil {
		t.Fatal(err)
	}
	var raw map[string][]map[string]any
	if err := json.Unmarshal(b, &raw); err != nil {
		t.Fatal(err)
	}
	ev := raw["events"][0]
	for _, k := range []string{"id", "timestamp", "action", "target", "request", "actor", "source"} {
		if _, ok := ev[k]; !ok {
			t.Errorf("event lacks %q: %s", k, b)
		}
	}
	target := ev["target"].(map[string]any)
	if _, ok := target["size"]; !ok {
		t.Errorf("target lacks size: %s", b)
	}
	req := ev["request"].(map[string]any)
	for _, k := range []string{"id", "method", "useragent"} {
		if _, ok := req[k]; !ok {
			t.Errorf("request lacks %q: %s", k, b)
		}
	}
}

// TestEndpointTimeout: an attempt that gets no answer within the
// endpoint's timeout fails (and is retried later) instead of holding the
// queue.
func TestEndpointTimeout(t *testing.T) {
	release := make(chan struct{})
	hang := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { <-release }))
	defer hang.Close()
	defer close(release)
	e := NewEndpoint(EndpointConfig{Name: "slow", URL: hang.URL, Timeout: 20 * time.Millisecond, Backoff: time.Hour})
	e.Write(event("1", ActionPush, "m"))
	testutil.Eventually(t, "a timed-out attempt to count as a failure", func() bool { return e.Stats().Failures >= 1 })
	if s := e.Stats(); s.Delivered != 0 {
		t.Errorf("stats = %+v", s)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_ = e.Close(ctx) // the event cannot be delivered; Close gives up
}
