package handlers

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/testutil"
	"github.com/berth-dev/berth/registryd/storage"
	"github.com/berth-dev/berth/registryd/storage/driver"
	"github.com/berth-dev/berth/registryd/storage/driver/inmemory"
)

// gatedDriver is the inmemory driver with every read of a tag's current
// link held until as many reads as the limit allows are in flight (or all
// that remain), so the most reads seen at once is the limit itself when
// the store honours it, and more when it does not.
type gatedDriver struct {
	driver.StorageDriver
	mu        sync.Mutex
	gate      bool // hold reads (off while the test sets up)
	limit     int  // reads to wait for
	remaining int  // reads still to come
	inflight  int
	max       int
	stalled   bool // a read waited 10s for company that never came
}

func (g *gatedDriver) GetContent(ctx context.Context, p string) ([]byte, error) {
	if !strings.HasSuffix(p, "/current/link") || !strings.Contains(p, "/_manifests/tags/") {
		return g.StorageDriver.GetContent(ctx, p)
	}
	g.mu.Lock()
	if !g.gate {
		g.mu.Unlock()
		return g.StorageDriver.GetContent(ctx, p)
	}
	g.inflight++
	g.max = max(g.max, g.inflight)
	g.mu.Unlock()
	company := testutil.Poll(func() error {
		g.mu.Lock()
		defer g.mu.Unlock()
		if g.inflight < min(g.limit, g.remaining) {
			return errors.New("waiting for company")
		}
		return nil
	}, testutil.Within(10*time.Second), testutil.Every(time.Millisecond))
	if company != nil {
		g.mu.Lock()
		g.stalled = true
		g.mu.Unlock()
	}
	b, err := g.StorageDriver.GetContent(ctx, p)
	g.mu.Lock()
	g.inflight--
	g.remaining--
	g.mu.Unlock()
	return b, err
}

// TestTagConcurrencyLimit deletes a manifest by digest in a repository of
// many tags: the tag lookups behind it run at most
// storage.tag.concurrencylimit at a time (GOMAXPROCS when 0), and the
// tags pointing at the manifest, and only those, are removed.
func TestTagConcurrencyLimit(t *testing.T) {
	const tags = 12
	for _, limit := range []int{1, 3, 0} {
		t.Run(fmt.Sprintf("limit %d", limit), func(t *testing.T) {
			g := &gatedDriver{StorageDriver: inmemory.New()}
			e := &env{t: t, drv: g, h: New(g, WithDeleteEnabled(true), WithStorageOptions(storage.WithTagConcurrency(limit)))}
			doomed := e.pushManifest("app", "first", ociManifest, e.image("app", "doomed", nil))
			kept := e.image("app", "kept", nil)
			for i := range tags {
				if i%2 == 0 {
					e.pushManifest("app", fmt.Sprintf("doomed-%d", i), ociManifest, e.image("app", "doomed", nil))
				} else {
					e.pushManifest("app", fmt.Sprintf("keep-%d", i), ociManifest, kept)
				}
			}
			want := limit
			if limit == 0 {
				want = runtime.GOMAXPROCS(0)
			}
			g.mu.Lock()
			g.gate, g.limit, g.remaining = true, want, tags+1 // "first" included
			g.mu.Unlock()

			rec := e.do(req{method: "DELETE", path: "/v2/app/manifests/" + doomed.String()})
			if rec.Code != http.StatusAccepted {
				t.Fatalf("DELETE: %d %s", rec.Code, rec.Body)
			}
			g.mu.Lock()
			gotMax, stalled := g.max, g.stalled
			g.gate = false
			g.mu.Unlock()
			if stalled {
				t.Errorf("tag lookups never reached %d at once", want)
			}
			if gotMax != want {
				t.Errorf("at most %d tag lookups ran at once, want %d", gotMax, want)
			}
			for i := range tags {
				code := e.do(req{method: "GET", path: fmt.Sprintf("/v2/app/manifests/%s-%d", map[bool]string{true: "doomed", false: "keep"}[i%2 == 0], i)}).Code
				if wantCode := map[bool]int{true: 404, false: 200}[i%2 == 0]; code != wantCode {
					t.Errorf("tag %d after the delete: %d, want %d", i, code, wantCode)
				}
			}
			if code := e.do(req{method: "GET", path: "/v2/app/manifests/first"}).Code; code != 404 {
				t.Errorf("first (pointing at the deleted manifest) answers %d", code)
			}
		})
	}
}
