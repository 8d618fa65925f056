package testutil

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestPoll(t *testing.T) {
	errBusy := errors.New("busy")
	errGone := errors.New("gone")
	tests := map[string]struct {
		results []error // what cond returns on each call; the last repeats
		opts    []WaitOption
		want    error // errors.Is
		calls   int   // exactly, when > 0
	}{
		"holds at once":       {results: []error{nil}, calls: 1},
		"holds on the third":  {results: []error{errBusy, errBusy, nil}, calls: 3},
		"permanent ends it":   {results: []error{errBusy, Permanent(errGone)}, want: errGone, calls: 2},
		"times out with last": {results: []error{errBusy}, opts: []WaitOption{Within(50 * time.Millisecond), Every(5 * time.Millisecond)}, want: ErrWaitTimeout},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			calls := 0
			err := Poll(func() error {
				calls++
				return tt.results[min(calls, len(tt.results))-1]
			}, append([]WaitOption{Every(time.Millisecond)}, tt.opts...)...)
			if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Fatalf("Poll = %v, want %v", err, tt.want)
			}
			if errors.Is(err, ErrWaitTimeout) && !errors.Is(err, errBusy) {
				t.Errorf("a timeout does not carry the last error: %v", err)
			}
			if tt.calls > 0 && calls != tt.calls {
				t.Errorf("cond called %d times, want %d", calls, tt.calls)
			}
		})
	}
}

// recorder is a testing.TB that records a failure instead of ending the
// test, so that the failing path of Eventually can be checked.
type recorder struct {
	testing.TB
	failed string
}

func (r *recorder) Helper()                           {}
func (r *recorder) Fatalf(format string, args ...any) { r.failed = fmt.Sprintf(format, args...) }

func TestEventually(t *testing.T) {
	n := 0
	Eventually(t, "the counter reaches 3", func() bool { n++; return n == 3 }, Every(time.Millisecond))
	if n != 3 {
		t.Fatalf("cond called %d times, want 3", n)
	}

	r := &recorder{TB: t}
	Eventually(r, "never", func() bool { return false }, Within(20*time.Millisecond), Every(time.Millisecond))
	if !strings.Contains(r.failed, "waiting until never") || !strings.Contains(r.failed, "timed out") {
		t.Errorf("failure = %q, want it to name the condition and the timeout", r.failed)
	}

	r = &recorder{TB: t}
	EventuallyNoError(r, "the port opens", func() error { return errors.New("connection refused") }, Within(20*time.Millisecond), Every(time.Millisecond))
	if !strings.Contains(r.failed, "connection refused") {
		t.Errorf("failure = %q, want the last error", r.failed)
	}
}

func TestLockedBufferConcurrentWriters(t *testing.T) {
	var b LockedBuffer
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 100 {
				_, _ = b.Write([]byte("x"))
				_ = b.String()
			}
		}()
	}
	wg.Wait()
	if b.Len() != 800 || strings.Count(b.String(), "x") != 800 {
		t.Fatalf("buffer holds %d bytes, want 800", b.Len())
	}
	b.Reset()
	if b.String() != "" {
		t.Fatalf("after Reset: %q", b.String())
	}
}
