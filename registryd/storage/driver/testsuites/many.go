package testsuites

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/berth-dev/berth/registryd/storage/driver"
)

// WithManyEntries sets how many files and how many directories the
// ManyEntries subtest creates (default 300 of each).
func WithManyEntries(n int) Option {
	return func(c *config) { c.manyEntries = n }
}

// testManyEntries writes n files in one directory and n directories of
// one file each, then checks that List, Walk and a recursive Delete see
// every one of them: a driver that lists in pages must follow them all.
func (s *suite) testManyEntries(t *testing.T, d driver.StorageDriver) {
	ctx := t.Context()
	n := s.cfg.manyEntries
	var files, dirs []string
	for i := range n {
		files = append(files, fmt.Sprintf("/many/flat/f%05d", i))
		dirs = append(dirs, fmt.Sprintf("/many/nested/d%05d", i))
	}
	var wg sync.WaitGroup
	errs := make(chan error, 2*n)
	work := make(chan string)
	for range 16 {
		wg.Go(func() {
			for p := range work {
				if err := d.PutContent(ctx, p, []byte(p)); err != nil {
					errs <- fmt.Errorf("PutContent(%s): %w", p, err)
				}
			}
		})
	}
	for i := range n {
		work <- files[i]
		work <- dirs[i] + "/data"
	}
	close(work)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}

	for dir, want := range map[string][]string{"/many/flat": files, "/many/nested": dirs, "/many": {"/many/flat", "/many/nested"}} {
		got, err := d.List(ctx, dir)
		if err != nil {
			t.Fatalf("List(%s): %v", dir, err)
		}
		if !slices.Equal(sorted(got), want) {
			t.Fatalf("List(%s) = %d entries, want %d (first missing %q)", dir, len(got), len(want), firstMissing(want, got))
		}
	}

	var walked []string
	err := d.Walk(ctx, "/many", func(fi driver.FileInfo) error {
		walked = append(walked, entryName(fi))
		return nil
	})
	if err != nil {
		t.Fatalf("Walk(/many): %v", err)
	}
	want := []string{"/many/flat/"}
	want = append(want, files...)
	want = append(want, "/many/nested/")
	for _, dir := range dirs {
		want = append(want, dir+"/", dir+"/data")
	}
	if !slices.Equal(walked, want) {
		t.Fatalf("Walk(/many) visited %d entries, want %d (first missing %q)", len(walked), len(want), firstMissing(want, walked))
	}

	// A walk that starts after a hint in the middle sees exactly the rest.
	hint := dirs[n/2] + "/data"
	var after []string
	err = d.Walk(ctx, "/many", func(fi driver.FileInfo) error {
		if driver.ComparePaths(fi.Path(), hint) > 0 {
			after = append(after, entryName(fi))
		}
		return nil
	}, driver.WithStartAfterHint(hint))
	if err != nil {
		t.Fatalf("Walk(/many, hint): %v", err)
	}
	if i := slices.Index(want, hint); !slices.Equal(after, want[i+1:]) {
		t.Fatalf("Walk(/many) after %s visited %d entries, want %d", hint, len(after), len(want)-i-1)
	}

	put(t, d, "/many-sibling", []byte("stays"))
	if err := d.Delete(ctx, "/many"); err != nil {
		t.Fatalf("Delete(/many): %v", err)
	}
	for _, p := range []string{"/many", files[n-1], dirs[0] + "/data"} {
		_, err := d.Stat(ctx, p)
		wantNotFound(t, d, "Stat("+p+") after Delete(/many)", err)
	}
	wantContent(t, d, "/many-sibling", []byte("stays"))
}

func firstMissing(want, got []string) string {
	have := map[string]bool{}
	for _, g := range got {
		have[strings.TrimSuffix(g, "/")] = true
	}
	for _, w := range want {
		if !have[strings.TrimSuffix(w, "/")] {
			return w
		}
	}
	return ""
}
