package inmemory_test

import (
	"context"
	"testing"
	"time"

	"github.com/berth-dev/berth/registryd/storage/driver"
	"github.com/berth-dev/berth/registryd/storage/driver/inmemory"
	"github.com/berth-dev/berth/registryd/storage/driver/testsuites"
)

func TestInMemory(t *testing.T) {
	testsuites.Run(t, func(t *testing.T) driver.StorageDriver { return inmemory.New() })
}

// TestClockSetsModificationTimes checks that WithClock is the source of
// every modification time Stat reports: content written at one instant
// keeps it, a move keeps the file's own time, and a later append moves it.
func TestClockSetsModificationTimes(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	d := inmemory.New(inmemory.WithClock(func() time.Time { return now }))
	mod := func(p string) time.Time {
		t.Helper()
		fi, err := d.Stat(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		return fi.ModTime()
	}
	t0 := now
	if err := d.PutContent(ctx, "/a/file", []byte("x")); err != nil {
		t.Fatal(err)
	}
	w, err := d.Writer(ctx, "/a/upload", false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("data")); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	now = now.Add(time.Hour)
	if err := d.Move(ctx, "/a/upload", "/b/moved"); err != nil {
		t.Fatal(err)
	}
	if got := mod("/a/file"); !got.Equal(t0) {
		t.Errorf("PutContent at %v: ModTime %v", t0, got)
	}
	if got := mod("/b/moved"); !got.Equal(t0) {
		t.Errorf("a moved file written at %v: ModTime %v", t0, got)
	}
	if got := mod("/b"); !got.Equal(now) {
		t.Errorf("the move's destination directory: ModTime %v, want %v", got, now)
	}
	w, err = d.Writer(ctx, "/b/moved", true)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("more")); err != nil {
		t.Fatal(err)
	}
	if got := mod("/b/moved"); !got.Equal(now) {
		t.Errorf("after an append at %v: ModTime %v", now, got)
	}
}
