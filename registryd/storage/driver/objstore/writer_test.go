package objstore_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/berth-dev/berth/registryd/storage/driver/objstore"
)

// TestWriterBaseParts: WriteParts sends every full part in order and keeps
// the rest for publish; a failed part stops the writer until it is
// cancelled, and nothing is published.
func TestWriterBaseParts(t *testing.T) {
	w := &objstore.WriterBase{Name: "test", Path: "/a", Ctx: context.Background(), Truncate: true}
	var parts []string
	send := func(p []byte) error { parts = append(parts, string(p)); return nil }
	noop := func() error { return nil }
	for _, s := range []string{"ab", "cdefg", "h"} {
		if n, err := w.WriteParts([]byte(s), 3, noop, send); n != len(s) || err != nil {
			t.Fatalf("WriteParts(%q) = %d, %v", s, n, err)
		}
	}
	if strings.Join(parts, ",") != "abc,def" || string(w.Buf) != "gh" || w.Size() != 8 {
		t.Fatalf("parts %q, buffered %q, size %d", parts, w.Buf, w.Size())
	}
	var published []string
	publish := func(context.Context) error { published = append(published, string(w.Buf)); return nil }
	if err := w.Commit(context.Background(), publish); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(publish); err != nil {
		t.Fatalf("Close after Commit: %v", err)
	}
	if len(published) != 1 || published[0] != "gh" {
		t.Fatalf("published %q, want the rest once", published)
	}
	if _, err := w.WriteParts([]byte("x"), 3, noop, send); err == nil || !strings.Contains(err.Error(), "already closed") {
		t.Fatalf("Write after Close: %v", err)
	}

	failed := errors.New("part refused")
	w = &objstore.WriterBase{Name: "test", Path: "/b", Ctx: context.Background()}
	if _, err := w.WriteParts([]byte("abcd"), 2, noop, func([]byte) error { return failed }); !errors.Is(err, failed) {
		t.Fatalf("WriteParts with a failing part: %v", err)
	}
	publish = func(context.Context) error { t.Fatal("published after a failed part"); return nil }
	if err := w.Commit(context.Background(), publish); !errors.Is(err, failed) {
		t.Fatalf("Commit after a failed part: %v", err)
	}
	discarded := false
	if err := w.Cancel(func() error { discarded = true; return nil }); err != nil || !discarded || w.Buf != nil {
		t.Fatalf("Cancel: %v, discarded %v, buffered %q", err, discarded, w.Buf)
	}
	if err := w.Cancel(func() error { return nil }); err == nil {
		t.Fatal("a second Cancel succeeded")
	}
}

// TestWriterBasePublishesWhatIsNew: Close publishes a new, empty object
// (Truncate) but not an appending writer that wrote nothing.
func TestWriterBasePublishesWhatIsNew(t *testing.T) {
	for _, truncate := range []bool{true, false} {
		w := &objstore.WriterBase{Name: "test", Path: "/a", Ctx: context.Background(), Truncate: truncate}
		published := false
		if err := w.Close(func(context.Context) error { published = true; return nil }); err != nil {
			t.Fatal(err)
		}
		if published != truncate {
			t.Errorf("truncate %v: published %v", truncate, published)
		}
	}
}
