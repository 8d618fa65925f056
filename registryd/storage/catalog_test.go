package storage

import (
	"context"
	"slices"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/berth-dev/berth/registryd/storage/driver"
	"github.com/berth-dev/berth/registryd/storage/driver/filesystem"
	"github.com/berth-dev/berth/registryd/storage/driver/inmemory"
)

// TestRepositoriesPages pages through a catalog of nested repositories,
// stray files and directories that are not repositories, one page size at
// a time, on both local drivers: every page continues exactly after the
// last name of the one before, in CompareNames order.
func TestRepositoriesPages(t *testing.T) {
	drivers := map[string]func(t *testing.T) driver.StorageDriver{
		"filesystem": func(t *testing.T) driver.StorageDriver {
			d, err := filesystem.New(filesystem.Parameters{RootDirectory: t.TempDir()})
			if err != nil {
				t.Fatal(err)
			}
			return d
		},
		"inmemory": func(t *testing.T) driver.StorageDriver { return inmemory.New() },
	}
	repos := []string{"b", "a-b", "a/b", "a", "a/0", "c/d/e", "a.b", "a/0/1", "z9", "z"}
	want := slices.Clone(repos)
	slices.SortFunc(want, CompareNames)
	for name, newDriver := range drivers {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			d := newDriver(t)
			s := New(d)
			m := []byte(`{"schemaVersion":2}`)
			for _, r := range repos {
				if err := s.PutManifest(ctx, r, digest.FromBytes(m), m); err != nil {
					t.Fatal(err)
				}
			}
			// Not repositories: a directory with only uploads, a stray
			// file at the top and one inside a repository.
			for p, content := range map[string]string{
				UploadStartedAtPath("c/uploads-only", "u"): "2006-01-02T15:04:05Z",
				repositoriesRoot() + "/stray":              "x",
				RepositoryPath("a") + "/stray":             "x",
			} {
				if err := d.PutContent(ctx, p, []byte(content)); err != nil {
					t.Fatal(err)
				}
			}
			all, more, err := s.Repositories(ctx, "", -1)
			if err != nil || more || !slices.Equal(all, want) {
				t.Fatalf("all: %v %v %v, want %v", all, more, err, want)
			}
			for n := 1; n <= len(want)+1; n++ {
				var got []string
				last := ""
				for page := 0; page <= len(want); page++ {
					names, more, err := s.Repositories(ctx, last, n)
					if err != nil {
						t.Fatal(err)
					}
					if len(names) > n {
						t.Fatalf("n=%d after %q: %d names", n, last, len(names))
					}
					got = append(got, names...)
					if !more {
						break
					}
					last = names[len(names)-1]
				}
				if !slices.Equal(got, want) {
					t.Fatalf("n=%d: pages give %v, want %v", n, got, want)
				}
			}
			if names, more, err := s.Repositories(ctx, "a/0", 2); err != nil || !more || !slices.Equal(names, []string{"a/0/1", "a/b"}) {
				t.Fatalf("after a/0: %v %v %v", names, more, err)
			}
		})
	}
}
