package storage

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/berth-dev/berth/registryd/storage/driver/filesystem"
)

// TestTagInfos: every tag with its target and the time of its last push
// (the current link's mtime, rewritten by a push of the same digest too);
// tag histories and tag directories without a current link are skipped.
func TestTagInfos(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	drv, err := filesystem.New(filesystem.Parameters{RootDirectory: root})
	if err != nil {
		t.Fatal(err)
	}
	s := New(drv)
	if _, err := s.TagInfos(ctx, "nothing/here"); !errors.Is(err, ErrRepositoryUnknown) {
		t.Errorf("unknown repository: %v", err)
	}
	manifest := func(seed string) digest.Digest {
		m := manifestWith(t, seed, "", "")
		d := digest.FromBytes(m)
		if err := s.PutManifest(ctx, "app", d, m); err != nil {
			t.Fatal(err)
		}
		return d
	}
	a, b := manifest("a"), manifest("b")
	if tags, err := s.TagInfos(ctx, "app"); err != nil || len(tags) != 0 {
		t.Errorf("no tags yet: %v, %v", tags, err)
	}
	setTime := func(tag string, at time.Time) {
		p := filepath.Join(root, filepath.FromSlash(TagCurrentLinkPath("app", tag)))
		if err := os.Chtimes(p, at, at); err != nil {
			t.Fatal(err)
		}
	}
	old := time.Now().Add(-48 * time.Hour).Truncate(time.Second)
	for _, tag := range []string{"v1", "latest", "V2"} {
		if err := s.Tag(ctx, "app", tag, a); err != nil {
			t.Fatal(err)
		}
		setTime(tag, old)
	}
	// latest moves to b: its history names a and b.
	before := time.Now()
	if err := s.Tag(ctx, "app", "latest", b); err != nil {
		t.Fatal(err)
	}
	// v1 is pushed again, same digest: a push all the same.
	if err := s.Tag(ctx, "app", "v1", a); err != nil {
		t.Fatal(err)
	}
	// A tag directory whose current link is gone is no tag.
	if err := os.MkdirAll(filepath.Join(root, filepath.FromSlash(TagPath("app", "broken")), "index"), 0o755); err != nil {
		t.Fatal(err)
	}
	tags, err := s.TagInfos(ctx, "app")
	if err != nil {
		t.Fatal(err)
	}
	if len(tags) != 3 {
		t.Fatalf("tags = %+v", tags)
	}
	want := []struct {
		name   string
		digest digest.Digest
		recent bool
	}{{"V2", a, false}, {"latest", b, true}, {"v1", a, true}}
	for i, w := range want {
		got := tags[i]
		if got.Name != w.name || got.Digest != w.digest {
			t.Errorf("tags[%d] = %+v, want %s -> %s", i, got, w.name, w.digest)
		}
		if w.recent && got.Pushed.Before(before.Add(-time.Second)) || !w.recent && !got.Pushed.Equal(old) {
			t.Errorf("tags[%d] %s pushed %s (recent: %v)", i, got.Name, got.Pushed, w.recent)
		}
	}
}
