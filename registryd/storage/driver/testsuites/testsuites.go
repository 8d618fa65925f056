// Package testsuites is the conformance suite every registryd storage
// driver runs. A driver's test calls Run with a constructor that returns a
// fresh, empty driver for each subtest:
//
//	func TestDriver(t *testing.T) {
//		testsuites.Run(t, func(t *testing.T) driver.StorageDriver {
//			return inmemory.New()
//		})
//	}
//
// Decisions:
//
//   - The suite is driver-agnostic: it only talks to the StorageDriver
//     interface, makes no assumption about a filesystem, and does not assert
//     behaviour the contract leaves open (whether bytes are visible before
//     Commit, whether empty parent directories survive a Delete, appending
//     to a missing path, Stat of the root of an empty store).
//   - Each subtest gets its own driver, so a backend behind an emulator can
//     hand out a fresh bucket or prefix per subtest.
//   - A backend that cannot honour part of the contract says so with
//     Lacks(capability); the affected subtests are skipped with the reason,
//     never silently passed.
//   - Everything is bounded: no sleeps, fixed iteration counts, and the
//     largest object is LargeFileSize (32 MiB by default).
//   - Nothing assumes a listing fits one page: ManyEntries lists, walks and
//     deletes more entries than a driver that lists in small pages (object
//     stores, with their page size turned down by the test) gets per page.
//   - RunShared checks what replicas on one storage rely on, with two
//     drivers over the same storage.
package testsuites

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/berth-dev/berth/registryd/storage/driver"
)

// Capability names a part of the contract a backend may lack.
type Capability string

const (
	// AtomicMove: a reader of Move's destination sees the old or the new
	// content, never an error or a mix, while the move runs.
	AtomicMove Capability = "atomic-move"
	// ResumableWriter: a Writer opened with append continues what an
	// earlier, closed but uncommitted writer of the same path wrote.
	ResumableWriter Capability = "resumable-writer"
)

// Option tunes Run.
type Option func(*config)

type config struct {
	lacks         map[Capability]bool
	largeFileSize int64
	manyEntries   int
}

// Lacks declares capabilities the driver does not have; the subtests that
// need them are skipped.
func Lacks(caps ...Capability) Option {
	return func(c *config) {
		for _, cp := range caps {
			c.lacks[cp] = true
		}
	}
}

// WithLargeFileSize sets the size of the object the large-file subtests
// stream (default 32 MiB).
func WithLargeFileSize(n int64) Option {
	return func(c *config) { c.largeFileSize = n }
}

// NewDriver returns a fresh, empty driver for one subtest. It may register
// cleanups on t.
type NewDriver func(t *testing.T) driver.StorageDriver

type suite struct {
	cfg       config
	newDriver NewDriver
}

// Run runs the whole suite against the driver newDriver builds.
func Run(t *testing.T, newDriver NewDriver, opts ...Option) {
	s := &suite{
		cfg:       config{lacks: map[Capability]bool{}, largeFileSize: 32 << 20, manyEntries: 300},
		newDriver: newDriver,
	}
	for _, o := range opts {
		o(&s.cfg)
	}
	tests := []struct {
		name string
		fn   func(t *testing.T, d driver.StorageDriver)
		need Capability
	}{
		{"Name", s.testName, ""},
		{"PutGetRoundTrip", s.testPutGet, ""},
		{"Overwrite", s.testOverwrite, ""},
		{"EmptyContent", s.testEmptyContent, ""},
		{"PutContents", s.testPutContents, ""},
		{"ValidUnusualPaths", s.testValidUnusualPaths, ""},
		{"LargeFile", s.testLargeFile, ""},
		{"WriterAppendResume", s.testWriterAppendResume, ResumableWriter},
		{"WriterTruncates", s.testWriterTruncates, ""},
		{"WriterCancel", s.testWriterCancel, ""},
		{"WriterStates", s.testWriterStates, ""},
		{"ReaderOffsets", s.testReaderOffsets, ""},
		{"Stat", s.testStat, ""},
		{"List", s.testList, ""},
		{"ManyEntries", s.testManyEntries, ""},
		{"Move", s.testMove, ""},
		{"MoveOverwrite", s.testMoveOverwrite, ""},
		{"MoveNestedDestination", s.testMoveNested, ""},
		{"MoveMissingSource", s.testMoveMissingSource, ""},
		{"MoveConcurrentReaders", s.testMoveConcurrentReaders, AtomicMove},
		{"Delete", s.testDelete, ""},
		{"DeleteRecursive", s.testDeleteRecursive, ""},
		{"DeleteSiblingPrefix", s.testDeleteSiblingPrefix, ""},
		{"Walk", s.testWalk, ""},
		{"WalkSkipDir", s.testWalkSkipDir, ""},
		{"WalkFilledBuffer", s.testWalkFilledBuffer, ""},
		{"WalkError", s.testWalkError, ""},
		{"WalkStartAfterHint", s.testWalkStartAfterHint, ""},
		{"InvalidPaths", s.testInvalidPaths, ""},
		{"NotFound", s.testNotFound, ""},
		{"RedirectURL", s.testRedirectURL, ""},
		{"ConcurrentWritersDifferentPaths", s.testConcurrentWriters, ""},
		{"ConcurrentPutContentSamePath", s.testConcurrentPutSamePath, ""},
		{"ContextCancelled", s.testContextCancelled, ""},
		{"WalkContextCancelled", s.testWalkContextCancelled, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.need != "" && s.cfg.lacks[tc.need] {
				t.Skipf("driver declares it lacks %q", tc.need)
			}
			tc.fn(t, s.newDriver(t))
		})
	}
}

// ---- helpers ----

func put(t *testing.T, d driver.StorageDriver, path string, content []byte) {
	t.Helper()
	if err := d.PutContent(t.Context(), path, content); err != nil {
		t.Fatalf("PutContent(%s): %v", path, err)
	}
}

func get(t *testing.T, d driver.StorageDriver, path string) []byte {
	t.Helper()
	b, err := d.GetContent(t.Context(), path)
	if err != nil {
		t.Fatalf("GetContent(%s): %v", path, err)
	}
	return b
}

func wantContent(t *testing.T, d driver.StorageDriver, path string, want []byte) {
	t.Helper()
	if got := get(t, d, path); !bytes.Equal(got, want) {
		t.Fatalf("GetContent(%s) = %d bytes %q, want %d bytes %q", path, len(got), abbrev(got), len(want), abbrev(want))
	}
}

func abbrev(b []byte) string {
	if len(b) > 32 {
		return string(b[:32]) + "..."
	}
	return string(b)
}

// wantNotFound checks err is a PathNotFoundError, by errors.Is and errors.As.
func wantNotFound(t *testing.T, d driver.StorageDriver, op string, err error) {
	t.Helper()
	if !errors.Is(err, driver.ErrNotFound) {
		t.Fatalf("%s: err = %v, want errors.Is(err, driver.ErrNotFound)", op, err)
	}
	var pnf driver.PathNotFoundError
	if !errors.As(err, &pnf) {
		t.Fatalf("%s: err = %T %v, want driver.PathNotFoundError", op, err, err)
	}
	if pnf.Path == "" || pnf.DriverName != d.Name() {
		t.Fatalf("%s: PathNotFoundError = %+v, want a path and driver name %q", op, pnf, d.Name())
	}
}

// randomBytes returns n reproducible pseudo-random bytes.
func randomBytes(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := 0; i < n; i += 8 {
		var w [8]byte
		binary.LittleEndian.PutUint64(w[:], r.Uint64())
		copy(b[i:], w[:])
	}
	return b
}

func statOK(t *testing.T, d driver.StorageDriver, path string) driver.FileInfo {
	t.Helper()
	fi, err := d.Stat(t.Context(), path)
	if err != nil {
		t.Fatalf("Stat(%s): %v", path, err)
	}
	return fi
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

// ---- basic content ----

func (s *suite) testName(t *testing.T, d driver.StorageDriver) {
	if d.Name() == "" {
		t.Fatal("Name() is empty")
	}
}

func (s *suite) testPutGet(t *testing.T, d driver.StorageDriver) {
	cases := map[string][]byte{
		"/a":                  []byte("a"),
		"/docker/registry/v2": []byte("text content\n"),
		"/bin/zeros":          make([]byte, 4096),
		"/bin/random":         randomBytes(1, 100_003),
		"/bin/all-bytes": func() []byte {
			b := make([]byte, 256)
			for i := range b {
				b[i] = byte(i)
			}
			return b
		}(),
	}
	for p, c := range cases {
		put(t, d, p, c)
	}
	for p, c := range cases {
		wantContent(t, d, p, c)
		if fi := statOK(t, d, p); fi.Size() != int64(len(c)) || fi.IsDir() {
			t.Errorf("Stat(%s) size=%d dir=%v, want size=%d file", p, fi.Size(), fi.IsDir(), len(c))
		}
	}
	// The driver must not keep a reference to the caller's slice.
	buf := []byte("original")
	put(t, d, "/alias", buf)
	copy(buf, "XXXXXXXX")
	wantContent(t, d, "/alias", []byte("original"))
}

func (s *suite) testOverwrite(t *testing.T, d driver.StorageDriver) {
	put(t, d, "/o/file", bytes.Repeat([]byte("long"), 1000))
	put(t, d, "/o/file", []byte("short"))
	wantContent(t, d, "/o/file", []byte("short"))
	put(t, d, "/o/file", bytes.Repeat([]byte("x"), 10_000))
	wantContent(t, d, "/o/file", bytes.Repeat([]byte("x"), 10_000))
}

func (s *suite) testEmptyContent(t *testing.T, d driver.StorageDriver) {
	put(t, d, "/empty", nil)
	wantContent(t, d, "/empty", nil)
	if fi := statOK(t, d, "/empty"); fi.Size() != 0 || fi.IsDir() {
		t.Fatalf("Stat(/empty) = size %d dir %v", fi.Size(), fi.IsDir())
	}
	r, err := d.Reader(t.Context(), "/empty", 0)
	if err != nil {
		t.Fatalf("Reader(/empty, 0): %v", err)
	}
	defer r.Close()
	if b, err := io.ReadAll(r); err != nil || len(b) != 0 {
		t.Fatalf("read empty = %q, %v", b, err)
	}
	put(t, d, "/empty", []byte("now full"))
	put(t, d, "/empty", []byte{})
	wantContent(t, d, "/empty", nil)
}

// testPutContents stores groups of files in one call (driver.PutContents:
// the driver's BatchPutter, or PutContent one after another): every file
// holds its content afterwards, new and replaced ones alike, and a path
// given twice holds the later content.
func (s *suite) testPutContents(t *testing.T, d driver.StorageDriver) {
	ctx := t.Context()
	put(t, d, "/batch/old", []byte("old"))
	groups := [][]driver.ContentWrite{
		{{Path: "/batch/blob/data", Content: randomBytes(7, 4096)}},
		{
			{Path: "/batch/links/a/link", Content: []byte("a")},
			{Path: "/batch/old", Content: []byte("replaced")},
			{Path: "/batch/empty", Content: nil},
		},
		{{Path: "/batch/links/a/link", Content: []byte("a, again")}},
	}
	if err := driver.PutContents(ctx, d, groups...); err != nil {
		t.Fatalf("PutContents: %v", err)
	}
	wantContent(t, d, "/batch/blob/data", randomBytes(7, 4096))
	wantContent(t, d, "/batch/links/a/link", []byte("a, again"))
	wantContent(t, d, "/batch/old", []byte("replaced"))
	wantContent(t, d, "/batch/empty", nil)
	names, err := d.List(ctx, "/batch")
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(names)
	if want := []string{"/batch/blob", "/batch/empty", "/batch/links", "/batch/old"}; !slices.Equal(names, want) {
		t.Fatalf("List(/batch) = %v, want %v", names, want)
	}
}
func (s *suite) testValidUnusualPaths(t *testing.T, d driver.StorageDriver) {
	paths := []string{
		"/UPPER/Case",
		"/dots/.hidden",
		"/dots/...",
		"/dots/a..b",
		"/under_score/dash-dash",
		"/docker/registry/v2/blobs/sha256/ab/ab" + strings.Repeat("0", 62) + "/data",
		"/" + strings.Repeat("long", 50),
	}
	for i, p := range paths {
		c := fmt.Appendf(nil, "content %d", i)
		put(t, d, p, c)
		wantContent(t, d, p, c)
	}
}

// ---- writers ----

func (s *suite) testLargeFile(t *testing.T, d driver.StorageDriver) {
	ctx := t.Context()
	const path = "/large/blob/data"
	const chunk = 1 << 20
	base := randomBytes(2, chunk)
	total := s.cfg.largeFileSize
	w, err := d.Writer(ctx, path, false)
	if err != nil {
		t.Fatalf("Writer: %v", err)
	}
	h := sha256.New()
	buf := make([]byte, chunk)
	for off := int64(0); off < total; off += chunk {
		n := min(chunk, total-off)
		copy(buf, base)
		binary.LittleEndian.PutUint64(buf, uint64(off)) // every chunk differs
		h.Write(buf[:n])
		if m, err := w.Write(buf[:n]); err != nil || int64(m) != n {
			t.Fatalf("Write at %d: %d, %v", off, m, err)
		}
	}
	if w.Size() != total {
		t.Fatalf("Size() = %d, want %d", w.Size(), total)
	}
	if err := w.Commit(ctx); err != nil {
		t.Fatalf("Commit: %v", err)
	}
	if err := w.Close(); err != nil {
		t.Fatalf("Close after Commit: %v", err)
	}
	want := h.Sum(nil)

	if fi := statOK(t, d, path); fi.Size() != total {
		t.Fatalf("Stat size = %d, want %d", fi.Size(), total)
	}
	r, err := d.Reader(ctx, path, 0)
	if err != nil {
		t.Fatalf("Reader: %v", err)
	}
	h2 := sha256.New()
	n, err := io.Copy(h2, r)
	r.Close()
	if err != nil || n != total || !bytes.Equal(h2.Sum(nil), want) {
		t.Fatalf("read back %d bytes (err %v), digest match %v", n, err, bytes.Equal(h2.Sum(nil), want))
	}
	// A reader in the middle sees the right bytes.
	off := total/2 + 3
	r, err = d.Reader(ctx, path, off)
	if err != nil {
		t.Fatalf("Reader(%d): %v", off, err)
	}
	defer r.Close()
	got := make([]byte, 16)
	if _, err := io.ReadFull(r, got); err != nil {
		t.Fatalf("read at %d: %v", off, err)
	}
	chunkStart := off - off%chunk
	copy(buf, base)
	binary.LittleEndian.PutUint64(buf, uint64(chunkStart))
	if wantB := buf[off-chunkStart : off-chunkStart+16]; !bytes.Equal(got, wantB) {
		t.Fatalf("bytes at %d = %x, want %x", off, got, wantB)
	}
}

func (s *suite) testWriterAppendResume(t *testing.T, d driver.StorageDriver) {
	ctx := t.Context()
	const path = "/uploads/u1/data"
	part1 := randomBytes(3, 5<<20+17) // past a typical multipart part size
	part2 := randomBytes(4, 3<<20+5)

	w, err := d.Writer(ctx, path, false)
	if err != nil {
		t.Fatalf("Writer: %v", err)
	}
	if w.Size() != 0 {
		t.Fatalf("new writer Size() = %d", w.Size())
	}
	if _, err := w.Write(part1); err != nil {
		t.Fatalf("Write part1: %v", err)
	}
	if w.Size() != int64(len(part1)) {
		t.Fatalf("Size() = %d, want %d", w.Size(), len(part1))
	}
	if err := w.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	w, err = d.Writer(ctx, path, true)
	if err != nil {
		t.Fatalf("Writer(append): %v", err)
	}
	if w.Size() != int64(len(part1)) {
		t.Fatalf("resumed Size() = %d, want %d", w.Size(), len(part1))
	}
	if _, err := w.Write(part2); err != nil {
		t.Fatalf("Write part2: %v", err)
	}
	if w.Size() != int64(len(part1)+len(part2)) {
		t.Fatalf("Size() = %d, want %d", w.Size(), len(part1)+len(part2))
	}
	if err := w.Commit(ctx); err != nil {
		t.Fatalf("Commit: %v", err)
	}
	if err := w.Close(); err != nil {
		t.Fatalf("Close after Commit: %v", err)
	}
	wantContent(t, d, path, append(slices.Clone(part1), part2...))

	// Appending to committed content continues it too.
	w, err = d.Writer(ctx, path, true)
	if err != nil {
		t.Fatalf("Writer(append) on committed: %v", err)
	}
	if w.Size() != int64(len(part1)+len(part2)) {
		t.Fatalf("Size() on committed = %d", w.Size())
	}
	if _, err := w.Write([]byte("tail")); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	w.Close()
	if fi := statOK(t, d, path); fi.Size() != int64(len(part1)+len(part2)+4) {
		t.Fatalf("Stat size = %d", fi.Size())
	}
}

func (s *suite) testWriterTruncates(t *testing.T, d driver.StorageDriver) {
	ctx := t.Context()
	put(t, d, "/w/t", []byte("old content that is long"))
	w, err := d.Writer(ctx, "/w/t", false)
	if err != nil {
		t.Fatalf("Writer: %v", err)
	}
	if w.Size() != 0 {
		t.Fatalf("Writer(append=false) Size() = %d, want 0", w.Size())
	}
	if _, err := w.Write([]byte("new")); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	wantContent(t, d, "/w/t", []byte("new"))
}

func (s *suite) testWriterCancel(t *testing.T, d driver.StorageDriver) {
	ctx := t.Context()
	w, err := d.Writer(ctx, "/w/cancelled", false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("discard me")); err != nil {
		t.Fatal(err)
	}
	if err := w.Cancel(ctx); err != nil {
		t.Fatalf("Cancel: %v", err)
	}
	_, err = d.GetContent(ctx, "/w/cancelled")
	wantNotFound(t, d, "GetContent after Cancel", err)
	if err := w.Commit(ctx); err == nil {
		t.Fatal("Commit after Cancel succeeded")
	}
	if _, err := w.Write([]byte("more")); err == nil {
		t.Fatal("Write after Cancel succeeded")
	}
	if err := w.Close(); err != nil {
		t.Fatalf("Close after Cancel: %v", err)
	}
}

func (s *suite) testWriterStates(t *testing.T, d driver.StorageDriver) {
	ctx := t.Context()
	w, err := d.Writer(ctx, "/w/states", false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("abc")); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("more")); err == nil {
		t.Fatal("Write after Commit succeeded")
	}
	if err := w.Close(); err != nil {
		t.Fatalf("Close after Commit: %v", err)
	}
	wantContent(t, d, "/w/states", []byte("abc"))

	w, err = d.Writer(ctx, "/w/closed", false)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("x")); err == nil {
		t.Fatal("Write after Close succeeded")
	}
}

// ---- readers and metadata ----

func (s *suite) testReaderOffsets(t *testing.T, d driver.StorageDriver) {
	ctx := t.Context()
	content := randomBytes(5, 10_000)
	put(t, d, "/r/f", content)
	for _, off := range []int64{0, 1, 4999, 9999} {
		r, err := d.Reader(ctx, "/r/f", off)
		if err != nil {
			t.Fatalf("Reader(%d): %v", off, err)
		}
		b, err := io.ReadAll(r)
		r.Close()
		if err != nil || !bytes.Equal(b, content[off:]) {
			t.Fatalf("Reader(%d) read %d bytes, err %v; want %d bytes", off, len(b), err, len(content)-int(off))
		}
	}
	r, err := d.Reader(ctx, "/r/f", int64(len(content)))
	if err != nil {
		t.Fatalf("Reader(size): %v", err)
	}
	n, err := r.Read(make([]byte, 10))
	r.Close()
	if n != 0 || !errors.Is(err, io.EOF) {
		t.Fatalf("Reader(size).Read = %d, %v; want 0, io.EOF", n, err)
	}
	for _, off := range []int64{int64(len(content)) + 1, int64(len(content)) * 10, -1} {
		_, err := d.Reader(ctx, "/r/f", off)
		var ioe driver.InvalidOffsetError
		if !errors.As(err, &ioe) {
			t.Fatalf("Reader(%d): err = %v, want InvalidOffsetError", off, err)
		}
		if ioe.Offset != off {
			t.Fatalf("InvalidOffsetError.Offset = %d, want %d", ioe.Offset, off)
		}
	}
}

func (s *suite) testStat(t *testing.T, d driver.StorageDriver) {
	put(t, d, "/s/dir/file", []byte("12345"))
	fi := statOK(t, d, "/s/dir/file")
	if fi.Path() != "/s/dir/file" || fi.Size() != 5 || fi.IsDir() || fi.ModTime().IsZero() {
		t.Fatalf("Stat(file) = path %q size %d dir %v mod %v", fi.Path(), fi.Size(), fi.IsDir(), fi.ModTime())
	}
	for _, dir := range []string{"/s", "/s/dir"} {
		fi := statOK(t, d, dir)
		if fi.Path() != dir || !fi.IsDir() {
			t.Fatalf("Stat(%s) = path %q dir %v, want a directory", dir, fi.Path(), fi.IsDir())
		}
	}
	for _, p := range []string{"/s/missing", "/s/dir/file/below", "/s/di", "/nothing"} {
		_, err := d.Stat(t.Context(), p)
		wantNotFound(t, d, "Stat("+p+")", err)
	}
}

func (s *suite) testList(t *testing.T, d driver.StorageDriver) {
	ctx := t.Context()
	for _, p := range []string{"/l/a", "/l/b/c", "/l/b/d/e", "/l/ab", "/l2/x", "/top"} {
		put(t, d, p, []byte(p))
	}
	cases := map[string][]string{
		"/":      {"/l", "/l2", "/top"},
		"/l":     {"/l/a", "/l/ab", "/l/b"},
		"/l/b":   {"/l/b/c", "/l/b/d"},
		"/l/b/d": {"/l/b/d/e"},
	}
	for dir, want := range cases {
		got, err := d.List(ctx, dir)
		if err != nil {
			t.Fatalf("List(%s): %v", dir, err)
		}
		if !slices.Equal(sorted(got), want) {
			t.Fatalf("List(%s) = %v, want %v", dir, sorted(got), want)
		}
	}
	_, err := d.List(ctx, "/l/missing")
	wantNotFound(t, d, "List(/l/missing)", err)
	_, err = d.List(ctx, "/l/b/c") // a file
	if err == nil {
		t.Fatal("List of a file succeeded")
	}
}

// ---- move ----

func (s *suite) testMove(t *testing.T, d driver.StorageDriver) {
	content := randomBytes(6, 3000)
	put(t, d, "/m/src", content)
	if err := d.Move(t.Context(), "/m/src", "/m/dst"); err != nil {
		t.Fatalf("Move: %v", err)
	}
	wantContent(t, d, "/m/dst", content)
	_, err := d.GetContent(t.Context(), "/m/src")
	wantNotFound(t, d, "GetContent(source after Move)", err)
}

func (s *suite) testMoveOverwrite(t *testing.T, d driver.StorageDriver) {
	put(t, d, "/m/src", []byte("new"))
	put(t, d, "/m/dst", []byte("old and longer"))
	if err := d.Move(t.Context(), "/m/src", "/m/dst"); err != nil {
		t.Fatalf("Move: %v", err)
	}
	wantContent(t, d, "/m/dst", []byte("new"))
	_, err := d.Stat(t.Context(), "/m/src")
	wantNotFound(t, d, "Stat(source after Move)", err)
}

func (s *suite) testMoveNested(t *testing.T, d driver.StorageDriver) {
	put(t, d, "/uploads/x/data", []byte("blob"))
	dst := "/blobs/sha256/ab/abcdef/data"
	if err := d.Move(t.Context(), "/uploads/x/data", dst); err != nil {
		t.Fatalf("Move to new nested directory: %v", err)
	}
	wantContent(t, d, dst, []byte("blob"))
	if fi := statOK(t, d, "/blobs/sha256/ab"); !fi.IsDir() {
		t.Fatal("parent of moved file is not a directory")
	}
}

func (s *suite) testMoveMissingSource(t *testing.T, d driver.StorageDriver) {
	put(t, d, "/m/dst", []byte("keep"))
	err := d.Move(t.Context(), "/m/missing", "/m/dst")
	wantNotFound(t, d, "Move(missing)", err)
	wantContent(t, d, "/m/dst", []byte("keep"))
}

func (s *suite) testMoveConcurrentReaders(t *testing.T, d driver.StorageDriver) {
	ctx := t.Context()
	const moves = 20
	const size = 64 << 10
	contents := make([][]byte, moves+1)
	for i := range contents {
		contents[i] = bytes.Repeat([]byte{byte('A' + i)}, size)
	}
	put(t, d, "/mv/dst", contents[0])

	var wg sync.WaitGroup
	errs := make(chan error, 4)
	done := make(chan struct{})
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-done:
					return
				default:
				}
				b, err := d.GetContent(ctx, "/mv/dst")
				if err != nil {
					errs <- fmt.Errorf("GetContent during Move: %w", err)
					return
				}
				if len(b) != size || bytes.Count(b, b[:1]) != size {
					errs <- fmt.Errorf("torn read during Move: %d bytes starting %q", len(b), abbrev(b))
					return
				}
			}
		})
	}
	for i := 1; i <= moves; i++ {
		put(t, d, "/mv/src", contents[i])
		if err := d.Move(ctx, "/mv/src", "/mv/dst"); err != nil {
			close(done)
			wg.Wait()
			t.Fatalf("Move %d: %v", i, err)
		}
	}
	close(done)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	wantContent(t, d, "/mv/dst", contents[moves])
}

// ---- delete ----

func (s *suite) testDelete(t *testing.T, d driver.StorageDriver) {
	put(t, d, "/d/file", []byte("x"))
	put(t, d, "/d/other", []byte("y"))
	if err := d.Delete(t.Context(), "/d/file"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	_, err := d.GetContent(t.Context(), "/d/file")
	wantNotFound(t, d, "GetContent after Delete", err)
	wantContent(t, d, "/d/other", []byte("y"))
	list, err := d.List(t.Context(), "/d")
	if err != nil || !slices.Equal(list, []string{"/d/other"}) {
		t.Fatalf("List(/d) after Delete = %v, %v", list, err)
	}
	err = d.Delete(t.Context(), "/d/file")
	wantNotFound(t, d, "Delete(deleted)", err)
}

func (s *suite) testDeleteRecursive(t *testing.T, d driver.StorageDriver) {
	files := []string{"/r/a/1", "/r/a/b/2", "/r/a/b/c/3", "/r/a/b/c/d/4"}
	for _, p := range files {
		put(t, d, p, []byte(p))
	}
	put(t, d, "/r/keep", []byte("keep"))
	if err := d.Delete(t.Context(), "/r/a"); err != nil {
		t.Fatalf("Delete(/r/a): %v", err)
	}
	for _, p := range append(files, "/r/a", "/r/a/b/c") {
		_, err := d.Stat(t.Context(), p)
		wantNotFound(t, d, "Stat("+p+") after recursive Delete", err)
	}
	wantContent(t, d, "/r/keep", []byte("keep"))
}

func (s *suite) testDeleteSiblingPrefix(t *testing.T, d driver.StorageDriver) {
	put(t, d, "/a/x", []byte("a"))
	put(t, d, "/ab/x", []byte("ab"))
	put(t, d, "/a-b", []byte("a-b"))
	put(t, d, "/a.c", []byte("a.c"))
	if err := d.Delete(t.Context(), "/a"); err != nil {
		t.Fatalf("Delete(/a): %v", err)
	}
	wantContent(t, d, "/ab/x", []byte("ab"))
	wantContent(t, d, "/a-b", []byte("a-b"))
	wantContent(t, d, "/a.c", []byte("a.c"))
	_, err := d.Stat(t.Context(), "/a/x")
	wantNotFound(t, d, "Stat(/a/x)", err)
}

// ---- walk ----

// walkTree is the tree the Walk subtests use. "/w/b-c" sorts between
// "/w/b" and its children in plain byte order, but after them in walk order.
var walkTree = []string{
	"/w/a",
	"/w/b/c",
	"/w/b/d/e",
	"/w/b/d/f",
	"/w/b-c",
	"/w/c/g",
	"/w/h",
}

// walkOrder is every entry below /w in walk order; dirs end in "/" here
// only to tell them apart in assertions.
var walkOrder = []string{
	"/w/a",
	"/w/b/",
	"/w/b/c",
	"/w/b/d/",
	"/w/b/d/e",
	"/w/b/d/f",
	"/w/b-c",
	"/w/c/",
	"/w/c/g",
	"/w/h",
}

func setupWalk(t *testing.T, d driver.StorageDriver) {
	for _, p := range walkTree {
		put(t, d, p, []byte(p))
	}
}

func entryName(fi driver.FileInfo) string {
	if fi.IsDir() {
		return fi.Path() + "/"
	}
	return fi.Path()
}

func collect(t *testing.T, d driver.StorageDriver, from string, stop func(fi driver.FileInfo) error, opts ...driver.WalkOption) ([]string, error) {
	t.Helper()
	var got []string
	err := d.Walk(t.Context(), from, func(fi driver.FileInfo) error {
		got = append(got, entryName(fi))
		if stop != nil {
			return stop(fi)
		}
		return nil
	}, opts...)
	return got, err
}

func (s *suite) testWalk(t *testing.T, d driver.StorageDriver) {
	setupWalk(t, d)
	got, err := collect(t, d, "/w", nil)
	if err != nil {
		t.Fatalf("Walk(/w): %v", err)
	}
	if !slices.Equal(got, walkOrder) {
		t.Fatalf("Walk(/w) =\n%v\nwant\n%v", got, walkOrder)
	}
	got, err = collect(t, d, "/", nil)
	if err != nil {
		t.Fatalf("Walk(/): %v", err)
	}
	if want := append([]string{"/w/"}, walkOrder...); !slices.Equal(got, want) {
		t.Fatalf("Walk(/) =\n%v\nwant\n%v", got, want)
	}
	got, err = collect(t, d, "/w/b", nil)
	if err != nil {
		t.Fatalf("Walk(/w/b): %v", err)
	}
	if want := walkOrder[2:6]; !slices.Equal(got, want) {
		t.Fatalf("Walk(/w/b) = %v, want %v", got, want)
	}
	// FileInfo carries sizes.
	err = d.Walk(t.Context(), "/w/b/d", func(fi driver.FileInfo) error {
		if fi.IsDir() || fi.Size() != int64(len(fi.Path())) {
			return fmt.Errorf("entry %s: dir %v size %d", fi.Path(), fi.IsDir(), fi.Size())
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	_, err = collect(t, d, "/missing", nil)
	wantNotFound(t, d, "Walk(/missing)", err)
}

func (s *suite) testWalkSkipDir(t *testing.T, d driver.StorageDriver) {
	setupWalk(t, d)
	got, err := collect(t, d, "/w", func(fi driver.FileInfo) error {
		if fi.Path() == "/w/b" {
			return driver.ErrSkipDir
		}
		return nil
	})
	if err != nil {
		t.Fatalf("Walk: %v", err)
	}
	want := []string{"/w/a", "/w/b/", "/w/b-c", "/w/c/", "/w/c/g", "/w/h"}
	if !slices.Equal(got, want) {
		t.Fatalf("Walk skipping /w/b = %v, want %v", got, want)
	}
	// ErrSkipDir from a file skips the rest of its directory.
	got, err = collect(t, d, "/w", func(fi driver.FileInfo) error {
		if fi.Path() == "/w/b/d/e" {
			return driver.ErrSkipDir
		}
		return nil
	})
	if err != nil {
		t.Fatalf("Walk: %v", err)
	}
	want = []string{"/w/a", "/w/b/", "/w/b/c", "/w/b/d/", "/w/b/d/e", "/w/b-c", "/w/c/", "/w/c/g", "/w/h"}
	if !slices.Equal(got, want) {
		t.Fatalf("Walk skipping from file /w/b/d/e = %v, want %v", got, want)
	}
}

func (s *suite) testWalkFilledBuffer(t *testing.T, d driver.StorageDriver) {
	setupWalk(t, d)
	got, err := collect(t, d, "/w", func(fi driver.FileInfo) error {
		if fi.Path() == "/w/b/d/e" {
			return driver.ErrFilledBuffer
		}
		return nil
	})
	if err != nil {
		t.Fatalf("Walk ending with ErrFilledBuffer returned %v, want nil", err)
	}
	if want := walkOrder[:5]; !slices.Equal(got, want) {
		t.Fatalf("Walk = %v, want %v", got, want)
	}
}

func (s *suite) testWalkError(t *testing.T, d driver.StorageDriver) {
	setupWalk(t, d)
	boom := errors.New("boom")
	got, err := collect(t, d, "/w", func(fi driver.FileInfo) error {
		if fi.Path() == "/w/b/c" {
			return boom
		}
		return nil
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Walk returned %v, want the WalkFn's error", err)
	}
	if want := walkOrder[:3]; !slices.Equal(got, want) {
		t.Fatalf("Walk = %v, want %v", got, want)
	}
}

func (s *suite) testWalkStartAfterHint(t *testing.T, d driver.StorageDriver) {
	setupWalk(t, d)
	cases := map[string][]string{
		"/w/a":     walkOrder[1:],
		"/w/b":     walkOrder[2:],
		"/w/b/c":   walkOrder[3:],
		"/w/b/d/e": walkOrder[5:],
		"/w/b/d/z": walkOrder[6:], // not an entry: starts after where it would sort
		"/w/b/zz":  walkOrder[6:],
		"/w/b-c":   walkOrder[7:],
		"/w/h":     nil,
		"/w/z":     nil,
		"/a":       walkOrder,
		"/x":       nil,
	}
	for hint, want := range cases {
		got, err := collect(t, d, "/w", nil, driver.WithStartAfterHint(hint))
		if err != nil {
			t.Fatalf("Walk(hint %s): %v", hint, err)
		}
		// It is a hint: a driver may report entries at or before it, but
		// what follows it must be complete and in order.
		var after []string
		for _, e := range got {
			if driver.ComparePaths(strings.TrimSuffix(e, "/"), hint) > 0 {
				after = append(after, e)
			}
		}
		if !slices.Equal(after, want) {
			t.Fatalf("Walk(hint %s) reported after the hint %v, want %v", hint, after, want)
		}
	}
}

// ---- errors ----

var invalidPaths = []string{
	"",
	"a",
	"a/b",
	"//",
	"/a//b",
	"/a/",
	"/a/b/",
	"/..",
	"/a/../b",
	"/a/.",
	"/./a",
	"/a b",
	"/a\tb",
	"/a\x00b",
	"/caf\u00e9",
	"/a:b",
	"/a*",
	"/a?b",
	"/a\\b",
	"/a+b",
	"/a@sha256",
}

func (s *suite) testInvalidPaths(t *testing.T, d driver.StorageDriver) {
	ctx := t.Context()
	put(t, d, "/valid", []byte("v"))
	ops := map[string]func(p string) error{
		"GetContent": func(p string) error { _, err := d.GetContent(ctx, p); return err },
		"PutContent": func(p string) error { return d.PutContent(ctx, p, []byte("x")) },
		"PutContents": func(p string) error {
			return driver.PutContents(ctx, d, []driver.ContentWrite{{Path: "/batch-valid", Content: []byte("x")}}, []driver.ContentWrite{{Path: p, Content: []byte("x")}})
		},
		"Reader": func(p string) error { _, err := d.Reader(ctx, p, 0); return err },
		"Writer": func(p string) error {
			w, err := d.Writer(ctx, p, false)
			if err == nil {
				_ = w.Cancel(ctx)
			}
			return err
		},
		"Stat":        func(p string) error { _, err := d.Stat(ctx, p); return err },
		"List":        func(p string) error { _, err := d.List(ctx, p); return err },
		"MoveFrom":    func(p string) error { return d.Move(ctx, p, "/moved") },
		"MoveTo":      func(p string) error { return d.Move(ctx, "/valid", p) },
		"Delete":      func(p string) error { return d.Delete(ctx, p) },
		"RedirectURL": func(p string) error { _, err := d.RedirectURL(ctx, "GET", p); return err },
		"Walk": func(p string) error {
			return d.Walk(ctx, p, func(driver.FileInfo) error { return nil })
		},
	}
	for name, op := range ops {
		for _, p := range invalidPaths {
			err := op(p)
			var ipe driver.InvalidPathError
			if !errors.As(err, &ipe) {
				t.Errorf("%s(%q): err = %v, want InvalidPathError", name, p, err)
			}
		}
	}
	// The root is a directory, not an object.
	for _, name := range []string{"GetContent", "PutContent", "PutContents", "Reader", "Writer", "MoveFrom", "MoveTo", "Delete", "RedirectURL"} {
		var ipe driver.InvalidPathError
		if err := ops[name]("/"); !errors.As(err, &ipe) {
			t.Errorf("%s(\"/\"): err = %v, want InvalidPathError", name, err)
		}
	}
	wantContent(t, d, "/valid", []byte("v"))
	// A batch with an invalid path writes nothing, not even its valid
	// files.
	_, err := d.GetContent(ctx, "/batch-valid")
	wantNotFound(t, d, "GetContent of a refused batch's file", err)
}

func (s *suite) testNotFound(t *testing.T, d driver.StorageDriver) {
	ctx := t.Context()
	put(t, d, "/nf/exists", []byte("x"))
	const p = "/nf/missing"
	_, err := d.GetContent(ctx, p)
	wantNotFound(t, d, "GetContent", err)
	_, err = d.Reader(ctx, p, 0)
	wantNotFound(t, d, "Reader", err)
	_, err = d.Stat(ctx, p)
	wantNotFound(t, d, "Stat", err)
	_, err = d.List(ctx, p)
	wantNotFound(t, d, "List", err)
	wantNotFound(t, d, "Move", d.Move(ctx, p, "/nf/other"))
	wantNotFound(t, d, "Delete", d.Delete(ctx, p))
	wantNotFound(t, d, "Walk", d.Walk(ctx, p, func(driver.FileInfo) error { return nil }))
	// A directory is not content.
	_, err = d.GetContent(ctx, "/nf")
	if err == nil {
		t.Fatal("GetContent of a directory succeeded")
	}
}

func (s *suite) testRedirectURL(t *testing.T, d driver.StorageDriver) {
	put(t, d, "/redirect/file", []byte("x"))
	for _, method := range []string{"GET", "HEAD"} {
		if _, err := d.RedirectURL(t.Context(), method, "/redirect/file"); err != nil {
			t.Fatalf("RedirectURL(%s): %v", method, err)
		}
	}
}

// ---- concurrency ----

func (s *suite) testConcurrentWriters(t *testing.T, d driver.StorageDriver) {
	ctx := t.Context()
	const writers = 8
	contents := make([][]byte, writers)
	for i := range contents {
		contents[i] = randomBytes(uint64(100+i), 256<<10+i)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 2*writers)
	for i := range writers {
		wg.Go(func() {
			p := fmt.Sprintf("/cw/%d/data", i)
			w, err := d.Writer(ctx, p, false)
			if err != nil {
				errs <- err
				return
			}
			for c := range slices.Chunk(contents[i], 32<<10) {
				if _, err := w.Write(c); err != nil {
					errs <- err
					return
				}
			}
			if err := w.Commit(ctx); err != nil {
				errs <- err
				return
			}
			if err := w.Close(); err != nil {
				errs <- err
			}
		})
		wg.Go(func() {
			if err := d.PutContent(ctx, fmt.Sprintf("/cw/%d/put", i), contents[i]); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for i := range writers {
		wantContent(t, d, fmt.Sprintf("/cw/%d/data", i), contents[i])
		wantContent(t, d, fmt.Sprintf("/cw/%d/put", i), contents[i])
	}
}

func (s *suite) testConcurrentPutSamePath(t *testing.T, d driver.StorageDriver) {
	ctx := t.Context()
	const writers, rounds, size = 6, 5, 128 << 10
	const path = "/same/path"
	put(t, d, path, bytes.Repeat([]byte{'0'}, size))

	var wg sync.WaitGroup
	errs := make(chan error, writers+2)
	done := make(chan struct{})
	wg.Go(func() { // a reader that must never see a torn or missing file
		for {
			select {
			case <-done:
				return
			default:
			}
			b, err := d.GetContent(ctx, path)
			if err != nil {
				errs <- fmt.Errorf("GetContent during PutContent: %w", err)
				return
			}
			if len(b) != size || bytes.Count(b, b[:1]) != size {
				errs <- fmt.Errorf("torn content: %d bytes starting %q", len(b), abbrev(b))
				return
			}
		}
	})
	var writersWG sync.WaitGroup
	for i := range writers {
		writersWG.Go(func() {
			c := bytes.Repeat([]byte{byte('A' + i)}, size)
			for range rounds {
				if err := d.PutContent(ctx, path, c); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	writersWG.Wait()
	close(done)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	got := get(t, d, path)
	if len(got) != size || bytes.Count(got, got[:1]) != size || got[0] < 'A' || got[0] >= 'A'+writers {
		t.Fatalf("final content is not one writer's: %d bytes starting %q", len(got), abbrev(got))
	}
	// After the race, the last writer wins.
	put(t, d, path, []byte("last"))
	wantContent(t, d, path, []byte("last"))
}

// ---- context ----

func (s *suite) testContextCancelled(t *testing.T, d driver.StorageDriver) {
	put(t, d, "/ctx/file", []byte("x"))
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	ops := map[string]func() error{
		"GetContent":  func() error { _, err := d.GetContent(ctx, "/ctx/file"); return err },
		"PutContent":  func() error { return d.PutContent(ctx, "/ctx/new", []byte("x")) },
		"Reader":      func() error { _, err := d.Reader(ctx, "/ctx/file", 0); return err },
		"Writer":      func() error { _, err := d.Writer(ctx, "/ctx/w", false); return err },
		"Stat":        func() error { _, err := d.Stat(ctx, "/ctx/file"); return err },
		"List":        func() error { _, err := d.List(ctx, "/ctx"); return err },
		"Move":        func() error { return d.Move(ctx, "/ctx/file", "/ctx/moved") },
		"Delete":      func() error { return d.Delete(ctx, "/ctx/file") },
		"RedirectURL": func() error { _, err := d.RedirectURL(ctx, "GET", "/ctx/file"); return err },
		"Walk":        func() error { return d.Walk(ctx, "/ctx", func(driver.FileInfo) error { return nil }) },
	}
	for name, op := range ops {
		if err := op(); !errors.Is(err, context.Canceled) {
			t.Errorf("%s with a cancelled context: err = %v, want context.Canceled", name, err)
		}
	}
	// Nothing changed.
	wantContent(t, d, "/ctx/file", []byte("x"))
	if _, err := d.Stat(t.Context(), "/ctx/new"); !errors.Is(err, driver.ErrNotFound) {
		t.Errorf("PutContent with a cancelled context left content: %v", err)
	}
}

func (s *suite) testWalkContextCancelled(t *testing.T, d driver.StorageDriver) {
	setupWalk(t, d)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var n int
	err := d.Walk(ctx, "/w", func(driver.FileInfo) error {
		n++
		cancel()
		return nil
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Walk cancelled mid-way returned %v, want context.Canceled", err)
	}
	if n >= len(walkOrder) {
		t.Fatalf("Walk visited all %d entries after its context was cancelled", n)
	}
}
