package filesystem

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/berth-dev/berth/registryd/storage/driver"
	"github.com/berth-dev/berth/registryd/storage/driver/testsuites"
)

func newTestDriver(t *testing.T) driver.StorageDriver {
	d, err := New(Parameters{RootDirectory: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestFilesystem(t *testing.T) {
	testsuites.Run(t, newTestDriver)
}

// Two registryd replicas on one ReadWriteMany volume.
func TestFilesystemSharedByReplicas(t *testing.T) {
	testsuites.RunShared(t, func(t *testing.T) (driver.StorageDriver, driver.StorageDriver) {
		root := t.TempDir()
		a, err := New(Parameters{RootDirectory: root})
		if err != nil {
			t.Fatal(err)
		}
		b, err := New(Parameters{RootDirectory: root})
		if err != nil {
			t.Fatal(err)
		}
		return a, b
	})
}

func TestOnDiskLayout(t *testing.T) {
	ctx := t.Context()
	root := t.TempDir()
	d, err := New(Parameters{RootDirectory: root})
	if err != nil {
		t.Fatal(err)
	}
	content := []byte("sha256:0123\n\x00\xff")
	if err := d.PutContent(ctx, "/docker/registry/v2/x", content); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(root, "docker", "registry", "v2", "x"))
	if err != nil || !bytes.Equal(got, content) {
		t.Fatalf("on-disk file = %q, %v; want %q", got, err, content)
	}
	entries, err := os.ReadDir(filepath.Join(root, "docker", "registry", "v2"))
	if err != nil || len(entries) != 1 || entries[0].Name() != "x" {
		t.Fatalf("directory of the target holds %v, %v; want only x", entries, err)
	}

	// Writer writes the target file itself, and append continues it.
	w, err := d.Writer(ctx, "/docker/registry/v2/repositories/r/_uploads/u/data", false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("part1")); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	upload := filepath.Join(root, "docker/registry/v2/repositories/r/_uploads/u/data")
	if got, _ := os.ReadFile(upload); string(got) != "part1" {
		t.Fatalf("closed upload on disk = %q, want part1", got)
	}
	w, err = d.Writer(ctx, "/docker/registry/v2/repositories/r/_uploads/u/data", true)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("part2")); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(upload); string(got) != "part1part2" {
		t.Fatalf("committed upload on disk = %q", got)
	}
	w.Close()
}

func TestReadsTreeWrittenByOthers(t *testing.T) {
	// Content laid down by another process (e.g. Distribution) is served.
	ctx := t.Context()
	root := t.TempDir()
	link := filepath.Join(root, "docker/registry/v2/repositories/lib/app/_manifests/tags/v1/current/link")
	if err := os.MkdirAll(filepath.Dir(link), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(link, []byte("sha256:abc"), 0o644); err != nil {
		t.Fatal(err)
	}
	d, err := New(Parameters{RootDirectory: root})
	if err != nil {
		t.Fatal(err)
	}
	got, err := d.GetContent(ctx, "/docker/registry/v2/repositories/lib/app/_manifests/tags/v1/current/link")
	if err != nil || string(got) != "sha256:abc" {
		t.Fatalf("GetContent = %q, %v", got, err)
	}
	tags, err := d.List(ctx, "/docker/registry/v2/repositories/lib/app/_manifests/tags")
	if err != nil || !slices.Equal(tags, []string{"/docker/registry/v2/repositories/lib/app/_manifests/tags/v1"}) {
		t.Fatalf("List tags = %v, %v", tags, err)
	}
}

func TestTempFilesAreInvisible(t *testing.T) {
	ctx := t.Context()
	root := t.TempDir()
	d, err := New(Parameters{RootDirectory: root})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.PutContent(ctx, "/a", []byte("x")); err != nil {
		t.Fatal(err)
	}
	// A temporary file left by a crash, and an entry no path can name.
	if err := os.WriteFile(filepath.Join(root, tmpDirName, "leftover"), []byte("junk"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "bad name"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	list, err := d.List(ctx, "/")
	if err != nil || !slices.Equal(list, []string{"/a"}) {
		t.Fatalf("List(/) = %v, %v; want [/a]", list, err)
	}
	var walked []string
	if err := d.Walk(ctx, "/", func(fi driver.FileInfo) error {
		walked = append(walked, fi.Path())
		return nil
	}); err != nil || !slices.Equal(walked, []string{"/a"}) {
		t.Fatalf("Walk(/) = %v, %v; want [/a]", walked, err)
	}
}

func TestRedirectURLIsEmpty(t *testing.T) {
	d := newTestDriver(t)
	if err := d.PutContent(t.Context(), "/f", []byte("x")); err != nil {
		t.Fatal(err)
	}
	if u, err := d.RedirectURL(t.Context(), "GET", "/f"); u != "" || err != nil {
		t.Fatalf("RedirectURL = %q, %v; want \"\", nil", u, err)
	}
}

func TestParameters(t *testing.T) {
	tests := map[string]struct {
		params      Parameters
		wantRoot    string
		wantThreads int
		wantErr     bool
	}{
		"defaults":     {params: Parameters{}, wantRoot: DefaultRootDirectory, wantThreads: 100},
		"explicit":     {params: Parameters{RootDirectory: "/srv/reg/", MaxThreads: 50}, wantRoot: "/srv/reg", wantThreads: 50},
		"minimum":      {params: Parameters{MaxThreads: 25}, wantRoot: DefaultRootDirectory, wantThreads: 25},
		"raised to 25": {params: Parameters{MaxThreads: 1}, wantRoot: DefaultRootDirectory, wantThreads: 25},
		"negative":     {params: Parameters{MaxThreads: -1}, wantErr: true},
		"large":        {params: Parameters{MaxThreads: 1000}, wantRoot: DefaultRootDirectory, wantThreads: 1000},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			d, err := newDriver(tc.params)
			if tc.wantErr {
				if err == nil {
					t.Fatal("want an error")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if d.root != tc.wantRoot || cap(d.sem) != tc.wantThreads {
				t.Fatalf("root %q threads %d, want %q %d", d.root, cap(d.sem), tc.wantRoot, tc.wantThreads)
			}
		})
	}
}

func TestMaxThreadsBoundsCalls(t *testing.T) {
	d, err := newDriver(Parameters{RootDirectory: t.TempDir(), MaxThreads: 30})
	if err != nil {
		t.Fatal(err)
	}
	cancelled, cancel := context.WithCancel(t.Context())
	cancel()
	// Hold all but one token: a call still gets through.
	for range 29 {
		d.sem <- struct{}{}
	}
	if err := d.PutContent(cancelled, "/x", []byte("x")); err != nil {
		t.Fatalf("PutContent with a free token: %v", err)
	}
	// Hold every token: a call waits, and gives up when its context ends.
	d.sem <- struct{}{}
	if _, err := d.Stat(cancelled, "/x"); !errors.Is(err, context.Canceled) {
		t.Fatalf("Stat with no free token: err = %v, want context.Canceled", err)
	}
	<-d.sem
	if _, err := d.Stat(cancelled, "/x"); err != nil {
		t.Fatalf("Stat after a token was freed: %v", err)
	}
}

// Directories are created only when a write finds them missing: many
// writers creating the same new directories at once all succeed, a Move
// of a missing source creates nothing, and a file where a directory is
// needed fails the write.
func TestCreatesMissingDirectories(t *testing.T) {
	ctx := t.Context()
	root := t.TempDir()
	d, err := New(Parameters{RootDirectory: root})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make([]error, 16)
	for i := range errs {
		wg.Go(func() {
			p := fmt.Sprintf("/a/b/c/%d/link", i%4)
			if i%2 == 0 {
				errs[i] = d.PutContent(ctx, p+fmt.Sprint(i), []byte("x"))
				return
			}
			w, err := d.Writer(ctx, p+fmt.Sprint(i), false)
			if err != nil {
				errs[i] = err
				return
			}
			_, err = w.Write([]byte("x"))
			errs[i] = errors.Join(err, w.Commit(ctx), w.Close())
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("writer %d: %v", i, err)
		}
		if got, err := d.GetContent(ctx, fmt.Sprintf("/a/b/c/%d/link%d", i%4, i)); err != nil || string(got) != "x" {
			t.Errorf("file %d = %q, %v", i, got, err)
		}
	}

	if err := d.Move(ctx, "/missing/data", "/blobs/new/dir/data"); !errors.Is(err, driver.ErrNotFound) {
		t.Fatalf("move of a missing source: %v", err)
	}
	if _, err := os.Stat(filepath.Join(root, "blobs")); !os.IsNotExist(err) {
		t.Fatalf("a move of a missing source created the destination's directories: %v", err)
	}
	if err := d.Move(ctx, "/a/b/c/0/link0", "/blobs/new/dir/data"); err != nil {
		t.Fatal(err)
	}
	if got, err := d.GetContent(ctx, "/blobs/new/dir/data"); err != nil || string(got) != "x" {
		t.Fatalf("moved file = %q, %v", got, err)
	}

	if err := d.PutContent(ctx, "/file", []byte("x")); err != nil {
		t.Fatal(err)
	}
	if err := d.PutContent(ctx, "/file/below/link", []byte("y")); err == nil {
		t.Fatal("PutContent below a file succeeded")
	}
	if _, err := d.Writer(ctx, "/file/below/data", false); err == nil {
		t.Fatal("Writer below a file succeeded")
	}
	if err := d.PutContent(ctx, "/a/b/c/1/link1/x", []byte("y")); err == nil {
		t.Fatal("PutContent with a file as its directory succeeded")
	}
}

// PutContentUnsynced stores whole files, creating directories, replacing
// what was there, and leaves no temporary file behind; a driver without
// it gets PutContent.
func TestPutContentUnsynced(t *testing.T) {
	ctx := t.Context()
	root := t.TempDir()
	d, err := New(Parameters{RootDirectory: root})
	if err != nil {
		t.Fatal(err)
	}
	for _, content := range []string{"first state", "second"} {
		if err := driver.PutContentUnsynced(ctx, d, "/up/hashstates/sha256/5", []byte(content)); err != nil {
			t.Fatal(err)
		}
		if got, err := d.GetContent(ctx, "/up/hashstates/sha256/5"); err != nil || string(got) != content {
			t.Fatalf("content = %q, %v; want %q", got, err, content)
		}
	}
	if entries, err := os.ReadDir(filepath.Join(root, tmpDirName)); err != nil || len(entries) != 0 {
		t.Fatalf("temporary files left: %v, %v", entries, err)
	}
	if err := driver.PutContentUnsynced(ctx, d, "/up/hashstates/sha256/5/x", []byte("y")); err == nil {
		t.Fatal("PutContentUnsynced below a file succeeded")
	}
	if entries, err := os.ReadDir(filepath.Join(root, tmpDirName)); err != nil || len(entries) != 0 {
		t.Fatalf("temporary files left after a failure: %v, %v", entries, err)
	}
}

// Walk takes each entry's kind from the directory listing and stats only
// files and what the listing cannot tell: a symbolic link to a directory
// (which a tree laid down by hand may hold) is still walked into, a link
// to a file still reports the file's size, and a dangling link is skipped
// as an entry gone between listing and stat.
func TestWalkKindsFromListing(t *testing.T) {
	ctx := t.Context()
	root := t.TempDir()
	for _, dir := range []string{"w/dir", "elsewhere/sub"} {
		if err := os.MkdirAll(filepath.Join(root, dir), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for p, content := range map[string]string{"w/dir/file": "12345", "elsewhere/sub/inner": "abc", "elsewhere/target": "xy"} {
		if err := os.WriteFile(filepath.Join(root, p), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for link, target := range map[string]string{"w/linkdir": "../elsewhere/sub", "w/linkfile": "../elsewhere/target", "w/dangling": "../nowhere"} {
		if err := os.Symlink(target, filepath.Join(root, link)); err != nil {
			t.Fatal(err)
		}
	}
	d, err := New(Parameters{RootDirectory: root})
	if err != nil {
		t.Fatal(err)
	}
	el, ok := d.(interface{ Unwrap() driver.StorageDriver }).Unwrap().(driver.EntryLister)
	if !ok {
		t.Fatal("the filesystem driver lists no entry kinds")
	}
	entries, err := el.ListEntries(ctx, "/w")
	if err != nil {
		t.Fatal(err)
	}
	dirs := map[string]bool{}
	for _, e := range entries {
		dirs[e.Path] = e.IsDir
	}
	want := map[string]bool{"/w/dir": true, "/w/linkdir": false, "/w/linkfile": false, "/w/dangling": false}
	if !maps.Equal(dirs, want) {
		t.Fatalf("ListEntries(/w) directories = %v, want %v", dirs, want)
	}
	var got []string
	err = d.Walk(ctx, "/w", func(fi driver.FileInfo) error {
		got = append(got, fmt.Sprintf("%s dir=%v size=%d", fi.Path(), fi.IsDir(), fi.Size()))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	wantWalk := []string{
		"/w/dir dir=true size=0",
		"/w/dir/file dir=false size=5",
		"/w/linkdir dir=true size=0",
		"/w/linkdir/inner dir=false size=3",
		"/w/linkfile dir=false size=2",
	}
	if !slices.Equal(got, wantWalk) {
		t.Fatalf("Walk(/w) =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(wantWalk, "\n"))
	}
}

// Deleting a directory that a symbolic link replaced after Delete looked
// at it (removeTree is what runs then) removes the link and never what it
// points at.
func TestRemoveTreeNeverFollowsALink(t *testing.T) {
	root := t.TempDir()
	other := filepath.Join(root, "other")
	if err := os.MkdirAll(other, 0o755); err != nil {
		t.Fatal(err)
	}
	precious := filepath.Join(other, "precious")
	if err := os.WriteFile(precious, []byte("keep"), 0o644); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(root, "blob")
	if err := os.Symlink(other, link); err != nil {
		t.Fatal(err)
	}
	if err := removeTree(link); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(link); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the link is still there: %v", err)
	}
	if _, err := os.Stat(precious); err != nil {
		t.Fatalf("removeTree followed the link: %v", err)
	}
}
