package purge

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/testutil"
	"github.com/berth-dev/berth/registryd/storage"
	"github.com/berth-dev/berth/registryd/storage/driver"
	"github.com/berth-dev/berth/registryd/storage/driver/inmemory"
)

var now = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

const (
	oldID   = "11111111-1111-4111-8111-111111111111"
	freshID = "22222222-2222-4222-8222-222222222222"
	nodate  = "33333333-3333-4333-8333-333333333333"
)

// seed writes an old upload (8 days), a fresh one (1 hour) and one
// without startedat into two repositories.
func seed(t *testing.T) driver.StorageDriver {
	t.Helper()
	ctx := context.Background()
	d := inmemory.New()
	put := func(p, s string) {
		if err := d.PutContent(ctx, p, []byte(s)); err != nil {
			t.Fatal(err)
		}
	}
	put(storage.UploadStartedAtPath("library/old", oldID), now.Add(-8*24*time.Hour).Format(time.RFC3339))
	put(storage.UploadDataPath("library/old", oldID), "partial")
	put(storage.UploadStartedAtPath("fresh", freshID), now.Add(-time.Hour).Format(time.RFC3339))
	put(storage.UploadDataPath("fresh", freshID), "")
	put(storage.UploadDataPath("fresh", nodate), "")
	return d
}

func exists(t *testing.T, d driver.StorageDriver, p string) bool {
	_, err := d.Stat(context.Background(), p)
	return err == nil
}

func TestPurge(t *testing.T) {
	tests := map[string]struct {
		dryRun bool
		gone   []string
	}{
		"removes old uploads only": {gone: []string{"library/old/" + oldID}},
		"dry run removes nothing":  {dryRun: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			d := seed(t)
			res, err := Purge(context.Background(), d, now.Add(-168*time.Hour), tc.dryRun)
			if err != nil || len(res.Errors) > 0 {
				t.Fatalf("Purge: %v %v", err, res.Errors)
			}
			want := []string{storage.RepositoryPath("library/old") + "/_uploads/" + oldID}
			if !slices.Equal(res.Deleted, want) {
				t.Errorf("Deleted = %v, want %v", res.Deleted, want)
			}
			for _, u := range []struct{ repo, id string }{{"library/old", oldID}, {"fresh", freshID}, {"fresh", nodate}} {
				gone := slices.Contains(tc.gone, u.repo+"/"+u.id)
				if got := exists(t, d, storage.UploadDataPath(u.repo, u.id)); got == gone {
					t.Errorf("%s/%s exists = %v, want %v", u.repo, u.id, got, !gone)
				}
			}
		})
	}
}

func TestPurgeEmptyStorage(t *testing.T) {
	res, err := Purge(context.Background(), inmemory.New(), now, false)
	if err != nil || len(res.Deleted) != 0 {
		t.Fatalf("Purge on empty storage = %+v, %v", res, err)
	}
}

// fakeClock fires After channels when Advance passes their deadline.
type fakeClock struct {
	mu      sync.Mutex
	now     time.Time
	waiters []waiter
}

type waiter struct {
	at time.Time
	ch chan time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := make(chan time.Time, 1)
	c.waiters = append(c.waiters, waiter{at: c.now.Add(d), ch: ch})
	return ch
}

func (c *fakeClock) pending() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.waiters)
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	kept := c.waiters[:0]
	for _, w := range c.waiters {
		if !w.at.After(c.now) {
			w.ch <- c.now
			continue
		}
		kept = append(kept, w)
	}
	c.waiters = kept
}

// waitPending waits, bounded, until the purger is waiting on the clock.
func waitPending(t *testing.T, c *fakeClock) {
	t.Helper()
	testutil.Eventually(t, "the purger waits on the clock", func() bool { return c.pending() > 0 }, testutil.Every(time.Millisecond))
}

func TestRunSchedule(t *testing.T) {
	d := seed(t)
	clock := &fakeClock{now: now}
	runs := make(chan Result, 10)
	readOnly := false
	var mu sync.Mutex
	p := &Purger{
		Driver: d, Age: 168 * time.Hour, Interval: 24 * time.Hour, Clock: clock,
		Jitter:   func(time.Duration) time.Duration { return 17 * time.Minute },
		ReadOnly: func() bool { mu.Lock(); defer mu.Unlock(); return readOnly },
		OnRun:    func(r Result) { runs <- r },
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { p.Run(ctx); close(done) }()

	waitPending(t, clock)
	clock.Advance(16 * time.Minute)
	select {
	case <-runs:
		t.Fatal("purged before the first-run jitter elapsed")
	default:
	}
	if !exists(t, d, storage.UploadDataPath("library/old", oldID)) {
		t.Fatal("old upload removed before the first run")
	}
	clock.Advance(time.Minute)
	if r := <-runs; len(r.Deleted) != 1 {
		t.Fatalf("first run deleted %v, want the old upload", r.Deleted)
	}

	// The fresh upload ages past 168h during the next days; a read-only
	// registry is left alone.
	mu.Lock()
	readOnly = true
	mu.Unlock()
	waitPending(t, clock)
	clock.Advance(7 * 24 * time.Hour) // fires one interval timer only
	waitPending(t, clock)
	select {
	case r := <-runs:
		t.Fatalf("purged while read-only: %v", r)
	default:
	}
	if !exists(t, d, storage.UploadDataPath("fresh", freshID)) {
		t.Fatal("fresh upload removed while read-only")
	}
	mu.Lock()
	readOnly = false
	mu.Unlock()
	clock.Advance(24 * time.Hour)
	if r := <-runs; len(r.Deleted) != 1 || exists(t, d, storage.UploadDataPath("fresh", freshID)) {
		t.Fatalf("second run deleted %v, want the now old upload", r.Deleted)
	}
	if !exists(t, d, storage.UploadDataPath("fresh", nodate)) {
		t.Error("upload without startedat removed")
	}
	cancel()
	<-done
}

func TestFirstRunJitter(t *testing.T) {
	for range 100 {
		j := FirstRunJitter(24 * time.Hour)
		if j < 0 || j >= time.Hour || j%time.Minute != 0 {
			t.Fatalf("jitter %v not whole minutes in [0, 60m)", j)
		}
	}
	if j := FirstRunJitter(time.Second); j > time.Second {
		t.Fatalf("jitter %v exceeds a 1s interval", j)
	}
}
