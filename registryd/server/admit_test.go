package server

import (
	"testing"

	"github.com/berth-dev/berth/internal/testutil"
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
