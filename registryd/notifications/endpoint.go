package notifications

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"
)

// Endpoint defaults, Distribution's.
const (
	DefaultTimeout   = time.Second
	DefaultThreshold = 10
	DefaultBackoff   = time.Second
	// DefaultQueueSize bounds the events waiting for one endpoint.
	DefaultQueueSize = 10000
)

// EndpointConfig configures one listener.
type EndpointConfig struct {
	Name string
	URL  string
	// Headers are added to every request.
	Headers http.Header
	// Timeout bounds one delivery attempt; DefaultTimeout when zero.
	Timeout time.Duration
	// Threshold is how many consecutive attempts may fail before the
	// endpoint waits Backoff between attempts; DefaultThreshold when zero.
	Threshold int
	// Backoff is the wait between attempts once Threshold is reached;
	// DefaultBackoff when zero.
	Backoff time.Duration
	// IgnoredMediaTypes are target media types never sent
	// (ignoredmediatypes and ignore.mediatypes together).
	IgnoredMediaTypes []string
	// IgnoredActions are actions never sent (ignore.actions).
	IgnoredActions []string
	// QueueSize bounds the queue; DefaultQueueSize when zero.
	QueueSize int
	// Transport sends the requests; http.DefaultTransport when nil.
	Transport http.RoundTripper
	// Logger receives delivery failures; discarded when nil.
	Logger *slog.Logger
}

// Stats are an endpoint's counters since it started.
type Stats struct {
	// Pending is the number of events queued, including the one being
	// delivered.
	Pending int
	// Delivered counts events a listener accepted.
	Delivered int64
	// Dropped counts events lost: queue full, or still queued when Close
	// gave up.
	Dropped int64
	// Failures counts failed delivery attempts (transport errors and
	// unaccepted statuses).
	Failures int64
	// Statuses counts the HTTP status codes the listener answered.
	Statuses map[int]int64
}

// Endpoint delivers events to one listener from a bounded queue. It is
// safe for concurrent use.
type Endpoint struct {
	cfg    EndpointConfig
	client *http.Client
	log    *slog.Logger

	mu      sync.Mutex
	queue   []Event
	closing bool
	stats   Stats
	wake    chan struct{} // signalled when an event is queued or closing starts

	abortCtx context.Context // ends when delivery must stop at once
	abort    context.CancelFunc
	done     chan struct{} // closed when the delivery goroutine returns
}

// NewEndpoint starts delivering to cfg.URL.
func NewEndpoint(cfg EndpointConfig) *Endpoint {
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.Threshold <= 0 {
		cfg.Threshold = DefaultThreshold
	}
	if cfg.Backoff <= 0 {
		cfg.Backoff = DefaultBackoff
	}
	if cfg.QueueSize <= 0 {
		cfg.QueueSize = DefaultQueueSize
	}
	if cfg.Transport == nil {
		cfg.Transport = http.DefaultTransport
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	e := &Endpoint{
		cfg:    cfg,
		client: &http.Client{Transport: cfg.Transport, Timeout: cfg.Timeout},
		log:    log.With("endpoint", cfg.Name),
		wake:   make(chan struct{}, 1),
		done:   make(chan struct{}),
		stats:  Stats{Statuses: map[int]int64{}},
	}
	e.abortCtx, e.abort = context.WithCancel(context.Background())
	go e.run()
	return e
}

// Name is the endpoint's configured name.
func (e *Endpoint) Name() string { return e.cfg.Name }

// Write queues ev unless the endpoint ignores its media type or action.
// It never blocks: when the queue is full, or the endpoint is closing, the
// event is dropped and counted.
func (e *Endpoint) Write(ev Event) {
	if e.ignored(ev) {
		return
	}
	e.mu.Lock()
	if e.closing || len(e.queue) >= e.cfg.QueueSize {
		e.stats.Dropped++
		e.mu.Unlock()
		e.log.Warn("Dropped event", "reason", "queue full or closing", "action", ev.Action, "repository", ev.Target.Repository)
		return
	}
	e.queue = append(e.queue, ev)
	e.mu.Unlock()
	e.signal()
}

func (e *Endpoint) ignored(ev Event) bool {
	return slices.Contains(e.cfg.IgnoredActions, ev.Action) ||
		(ev.Target.MediaType != "" && slices.Contains(e.cfg.IgnoredMediaTypes, ev.Target.MediaType))
}

func (e *Endpoint) signal() {
	select {
	case e.wake <- struct{}{}:
	default:
	}
}

// Stats returns a copy of the endpoint's counters.
func (e *Endpoint) Stats() Stats {
	e.mu.Lock()
	defer e.mu.Unlock()
	s := e.stats
	s.Pending = len(e.queue)
	s.Statuses = make(map[int]int64, len(e.stats.Statuses))
	for k, v := range e.stats.Statuses {
		s.Statuses[k] = v
	}
	return s
}

// Close stops accepting events and delivers what is queued until ctx
// ends; then it abandons the rest (counted as dropped) and returns ctx's
// error. It returns nil when the queue was drained.
func (e *Endpoint) Close(ctx context.Context) error {
	e.mu.Lock()
	e.closing = true
	e.mu.Unlock()
	e.signal()
	select {
	case <-e.done:
		return nil
	case <-ctx.Done():
	}
	e.abort()
	<-e.done
	e.mu.Lock()
	left := len(e.queue)
	e.stats.Dropped += int64(left)
	e.queue = nil
	e.mu.Unlock()
	if left > 0 {
		e.log.Warn("Abandoned queued events on shutdown", "count", left)
	}
	return ctx.Err()
}

// run delivers queued events in order until the endpoint is closed and
// drained, or aborted.
func (e *Endpoint) run() {
	defer close(e.done)
	for {
		ev, ok := e.front()
		if !ok {
			return
		}
		if !e.deliver(ev) {
			return // aborted; Close accounts for what is left
		}
		e.mu.Lock()
		e.queue = e.queue[1:]
		e.stats.Delivered++
		e.mu.Unlock()
	}
}

// front waits for the oldest queued event. It reports false when the
// endpoint is closing with nothing queued, or aborted.
func (e *Endpoint) front() (Event, bool) {
	for {
		e.mu.Lock()
		if len(e.queue) > 0 {
			ev := e.queue[0]
			e.mu.Unlock()
			return ev, true
		}
		closing := e.closing
		e.mu.Unlock()
		if closing {
			return Event{}, false
		}
		select {
		case <-e.wake:
		case <-e.abortCtx.Done():
			return Event{}, false
		}
	}
}

// deliver sends ev until a listener accepts it. It retries at once while
// fewer than Threshold consecutive attempts failed, then every Backoff. It
// reports false when aborted first.
func (e *Endpoint) deliver(ev Event) bool {
	body, err := json.Marshal(Envelope{Events: []Event{ev}})
	if err != nil { // cannot happen for these types; never retry it
		e.log.Error("Cannot encode event", "error", err)
		return true
	}
	failures := 0
	for {
		err := e.post(body)
		if err == nil {
			return true
		}
		failures++
		e.mu.Lock()
		e.stats.Failures++
		e.mu.Unlock()
		e.log.Warn("Event delivery failed", "id", ev.ID, "attempt", failures, "error", err)
		if failures < e.cfg.Threshold {
			if e.abortCtx.Err() != nil {
				return false
			}
			continue
		}
		t := time.NewTimer(e.cfg.Backoff)
		select {
		case <-t.C:
		case <-e.abortCtx.Done():
			t.Stop()
			return false
		}
	}
}

func (e *Endpoint) post(body []byte) error {
	req, err := http.NewRequestWithContext(e.abortCtx, http.MethodPost, e.cfg.URL, bytes.NewReader(body))
	if err != nil {
		return err
	}
	for k, vs := range e.cfg.Headers {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	req.Header.Set("Content-Type", EventsMediaType)
	resp, err := e.client.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	e.mu.Lock()
	e.stats.Statuses[resp.StatusCode]++
	e.mu.Unlock()
	if resp.StatusCode >= 200 && resp.StatusCode < 400 {
		return nil
	}
	return fmt.Errorf("listener answered %s", strconv.Itoa(resp.StatusCode)+" "+http.StatusText(resp.StatusCode))
}

// Broadcaster writes every event to each of its endpoints.
type Broadcaster struct {
	endpoints []*Endpoint
}

// NewBroadcaster returns a Broadcaster over endpoints.
func NewBroadcaster(endpoints ...*Endpoint) *Broadcaster {
	return &Broadcaster{endpoints: endpoints}
}

// Endpoints returns the broadcaster's endpoints.
func (b *Broadcaster) Endpoints() []*Endpoint { return b.endpoints }

// Write queues ev on every endpoint.
func (b *Broadcaster) Write(ev Event) {
	for _, e := range b.endpoints {
		e.Write(ev)
	}
}

// Close closes every endpoint concurrently, each draining until ctx ends.
func (b *Broadcaster) Close(ctx context.Context) error {
	errs := make([]error, len(b.endpoints))
	var wg sync.WaitGroup
	for i, e := range b.endpoints {
		wg.Go(func() { errs[i] = e.Close(ctx) })
	}
	wg.Wait()
	return errors.Join(errs...)
}
