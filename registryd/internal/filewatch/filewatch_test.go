package filewatch

import (
	"context"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/testutil"
)

// waitCalls waits until the callback ran more than n times.
func waitCalls(t *testing.T, calls *atomic.Int64, n int64, what string) {
	t.Helper()
	testutil.Eventually(t, "a callback after "+what, func() bool { return calls.Load() > n }, testutil.Every(5*time.Millisecond))
}

func run(t *testing.T, w *Watcher) *atomic.Int64 {
	t.Helper()
	var calls atomic.Int64
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { w.Run(ctx, func() { calls.Add(1) }); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return &calls
}

func TestWatchSeesRewriteRenameAndDataSwap(t *testing.T) {
	dir := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	// The kubelet's layout: file -> ..data/file, ..data -> ..ts1.
	must(os.MkdirAll(filepath.Join(dir, "..ts1"), 0o755))
	must(os.WriteFile(filepath.Join(dir, "..ts1", "f"), []byte("1"), 0o644))
	must(os.Symlink("..ts1", filepath.Join(dir, "..data")))
	must(os.Symlink("..data/f", filepath.Join(dir, "f")))
	w, err := New(filepath.Join(dir, "f"))
	must(err)
	calls := run(t, w)

	// The ..data swap: a new directory, a new symlink renamed over ..data,
	// the old directory removed. The visible file is never written.
	must(os.MkdirAll(filepath.Join(dir, "..ts2"), 0o755))
	must(os.WriteFile(filepath.Join(dir, "..ts2", "f"), []byte("2"), 0o644))
	must(os.Symlink("..ts2", filepath.Join(dir, "..data_tmp")))
	must(os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data")))
	must(os.RemoveAll(filepath.Join(dir, "..ts1")))
	waitCalls(t, calls, 0, "the ..data swap")
	if got, _ := os.ReadFile(filepath.Join(dir, "f")); string(got) != "2" {
		t.Fatalf("content after swap = %q", got)
	}
}

func TestWatchFollowsASymlinkIntoAnotherDirectory(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	target := filepath.Join(b, "real")
	if err := os.WriteFile(target, []byte("1"), 0o644); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(a, "link")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	w, err := New(link)
	if err != nil {
		t.Fatal(err)
	}
	calls := run(t, w)
	// An in-place rewrite of the target, in the other directory.
	if err := os.WriteFile(target, []byte("2"), 0o644); err != nil {
		t.Fatal(err)
	}
	waitCalls(t, calls, 0, "a rewrite of the symlink's target")
}

func TestNewNeedsTheDirectory(t *testing.T) {
	if _, err := New(filepath.Join(t.TempDir(), "missing", "f")); err == nil {
		t.Fatal("watching a file in a missing directory succeeded")
	}
}
