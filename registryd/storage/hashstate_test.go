package storage_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/sha512"
	"encoding"
	"encoding/hex"
	"errors"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/berth-dev/berth/registryd/storage"
	"github.com/berth-dev/berth/registryd/storage/driver"
	"github.com/berth-dev/berth/registryd/storage/driver/filesystem"
	"github.com/berth-dev/berth/registryd/storage/driver/inmemory"
)

// dataReads counts the Readers opened on upload data files.
type dataReads struct {
	driver.StorageDriver
	n atomic.Int64
}

func (d *dataReads) Reader(ctx context.Context, p string, offset int64) (io.ReadCloser, error) {
	if strings.Contains(p, "/_uploads/") && strings.HasSuffix(p, "/data") {
		d.n.Add(1)
	}
	return d.StorageDriver.Reader(ctx, p, offset)
}

// appendAll appends each chunk in turn at its offset, as a client resuming
// over several requests does.
func appendAll(t *testing.T, s *storage.Store, repo, id string, chunks ...string) {
	t.Helper()
	off := int64(0)
	for _, c := range chunks {
		size, err := s.AppendUpload(ctx, repo, id, off, strings.NewReader(c))
		if err != nil {
			t.Fatal(err)
		}
		off += int64(len(c))
		if size != off {
			t.Fatalf("size after append %d, want %d", size, off)
		}
	}
}

func newUpload(t *testing.T, s *storage.Store, repo string) string {
	t.Helper()
	u, err := s.CreateUpload(ctx, repo)
	if err != nil {
		t.Fatal(err)
	}
	return u.ID
}

func sha256State(t *testing.T, b []byte) []byte {
	t.Helper()
	h := sha256.New()
	h.Write(b)
	state, err := h.(encoding.BinaryMarshaler).MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return state
}

// A chunked upload over several requests keeps a state at each size, in
// Distribution's form, and commits without reading the upload again.
func TestUploadHashStateResumed(t *testing.T) {
	drv := &dataReads{StorageDriver: inmemory.New()}
	s := storage.New(drv)
	id := newUpload(t, s, "a")
	chunks := []string{"first chunk, ", "second chunk, ", "last"}
	appendAll(t, s, "a", id, chunks...)
	content := strings.Join(chunks, "")
	off := 0
	for _, c := range chunks {
		off += len(c)
		got, err := drv.GetContent(ctx, storage.UploadHashStatePath("a", id, digest.SHA256, int64(off)))
		if err != nil {
			t.Fatalf("state at %d: %v", off, err)
		}
		if want := sha256State(t, []byte(content[:off])); !bytes.Equal(got, want) {
			t.Fatalf("state at %d is not crypto/sha256's state of the first %d bytes", off, off)
		}
	}
	if n := drv.n.Load(); n != 0 {
		t.Fatalf("appends read the upload %d times", n)
	}
	d := digest.FromString(content)
	desc, err := s.CommitUpload(ctx, "a", id, d)
	if err != nil {
		t.Fatal(err)
	}
	if desc.Size != int64(len(content)) {
		t.Fatalf("size %d", desc.Size)
	}
	if n := drv.n.Load(); n != 0 {
		t.Fatalf("commit read the upload %d times", n)
	}
	assertBlob(t, s, "a", d, content)
	if _, err := drv.Stat(ctx, storage.RepositoryPath("a")+"/_uploads/"+id); !errors.Is(err, driver.ErrNotFound) {
		t.Fatalf("upload (with its states) left after commit: %v", err)
	}
}

func assertBlob(t *testing.T, s *storage.Store, repo string, d digest.Digest, content string) {
	t.Helper()
	desc, err := s.StatBlob(ctx, repo, d)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := s.OpenBlob(ctx, desc.Digest, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil || string(b) != content {
		t.Fatalf("blob %s = %q, %v; want %q", d, b, err, content)
	}
}

// A wrong digest is refused, with a state present and without, and the
// upload is cancelled.
func TestUploadHashStateMismatchRefused(t *testing.T) {
	for _, d := range []digest.Digest{
		digest.FromString("something else"),
		digest.SHA512.FromString("something else"),
	} {
		t.Run(d.Algorithm().String(), func(t *testing.T) {
			s := storage.New(inmemory.New())
			id := newUpload(t, s, "a")
			appendAll(t, s, "a", id, "some ", "bytes")
			if _, err := s.CommitUpload(ctx, "a", id, d); !errors.Is(err, storage.ErrDigestMismatch) {
				t.Fatalf("commit with a wrong digest: %v", err)
			}
			if _, err := s.StatUpload(ctx, "a", id); !errors.Is(err, storage.ErrUploadUnknown) {
				t.Fatalf("upload after a mismatch: %v", err)
			}
			if _, err := s.StatBlob(ctx, "a", d); !errors.Is(err, storage.ErrBlobUnknown) {
				t.Fatalf("blob stored: %v", err)
			}
		})
	}
}

// A sha512 digest is verified by reading the upload.
func TestUploadHashStateSHA512(t *testing.T) {
	drv := &dataReads{StorageDriver: inmemory.New()}
	s := storage.New(drv)
	id := newUpload(t, s, "a")
	appendAll(t, s, "a", id, "sha512 ", "content")
	sum := sha512.Sum512([]byte("sha512 content"))
	d := digest.Digest("sha512:" + hex.EncodeToString(sum[:]))
	if _, err := s.CommitUpload(ctx, "a", id, d); err != nil {
		t.Fatal(err)
	}
	if drv.n.Load() != 1 {
		t.Fatalf("commit read the upload %d times, want 1", drv.n.Load())
	}
	assertBlob(t, s, "a", d, "sha512 content")
}

// An upload whose state is missing, undecodable, or of other bytes is
// still committed under its true digest and refused under another: the
// appends rebuild the hash from the data, and the commit reads the upload
// when the state does not give the digest.
func TestUploadHashStateFallback(t *testing.T) {
	const first, second = "written by another replica, ", "then by us"
	content := first + second
	cases := map[string]func(t *testing.T, drv driver.StorageDriver, path string){
		"missing": func(t *testing.T, drv driver.StorageDriver, path string) {
			if err := drv.Delete(ctx, path); err != nil {
				t.Fatal(err)
			}
		},
		"undecodable": func(t *testing.T, drv driver.StorageDriver, path string) {
			if err := drv.PutContent(ctx, path, []byte("opaque hash state")); err != nil {
				t.Fatal(err)
			}
		},
		"of other bytes": func(t *testing.T, drv driver.StorageDriver, path string) {
			other := strings.Repeat("x", len(first))
			if err := drv.PutContent(ctx, path, sha256State(t, []byte(other))); err != nil {
				t.Fatal(err)
			}
		},
	}
	for name, spoil := range cases {
		t.Run(name, func(t *testing.T) {
			for _, commitWith := range []digest.Digest{digest.FromString(content), digest.FromString("not it")} {
				drv := &dataReads{StorageDriver: inmemory.New()}
				s := storage.New(drv)
				id := newUpload(t, s, "a")
				appendAll(t, s, "a", id, first)
				spoil(t, drv, storage.UploadHashStatePath("a", id, digest.SHA256, int64(len(first))))
				if _, err := s.AppendUpload(ctx, "a", id, int64(len(first)), strings.NewReader(second)); err != nil {
					t.Fatal(err)
				}
				_, err := s.CommitUpload(ctx, "a", id, commitWith)
				if commitWith != digest.FromString(content) {
					if !errors.Is(err, storage.ErrDigestMismatch) {
						t.Fatalf("commit with a wrong digest: %v", err)
					}
					continue
				}
				if err != nil {
					t.Fatalf("commit: %v", err)
				}
				assertBlob(t, s, "a", commitWith, content)
			}
		})
	}
}

// A state at the final size that was spoiled after the last append (a
// partial write, a corrupt file) cannot refuse the upload: the commit
// reads it. And a state from an earlier size is never used for a larger
// upload (data appended without a state, as an older registryd does).
func TestUploadHashStateCommitFallback(t *testing.T) {
	t.Run("spoiled final state", func(t *testing.T) {
		drv := &dataReads{StorageDriver: inmemory.New()}
		s := storage.New(drv)
		id := newUpload(t, s, "a")
		appendAll(t, s, "a", id, "abc")
		if err := drv.PutContent(ctx, storage.UploadHashStatePath("a", id, digest.SHA256, 3), sha256State(t, []byte("xyz"))); err != nil {
			t.Fatal(err)
		}
		if _, err := s.CommitUpload(ctx, "a", id, digest.FromString("abc")); err != nil {
			t.Fatal(err)
		}
		if drv.n.Load() != 1 {
			t.Fatalf("commit read the upload %d times, want 1", drv.n.Load())
		}
	})
	t.Run("grown without a state", func(t *testing.T) {
		drv := inmemory.New()
		s := storage.New(drv)
		id := newUpload(t, s, "a")
		appendAll(t, s, "a", id, "abc")
		growBehind(t, drv, "a", id, "def")
		if _, err := s.CommitUpload(ctx, "a", id, digest.FromString("abc")); !errors.Is(err, storage.ErrDigestMismatch) {
			t.Fatalf("commit under the digest of the first 3 bytes: %v", err)
		}
		id = newUpload(t, s, "a")
		appendAll(t, s, "a", id, "abc")
		growBehind(t, drv, "a", id, "def")
		if _, err := s.CommitUpload(ctx, "a", id, digest.FromString("abcdef")); err != nil {
			t.Fatal(err)
		}
		assertBlob(t, s, "a", digest.FromString("abcdef"), "abcdef")
	})
}

// growBehind appends data to upload id's data file through the driver,
// behind the store's back: the upload grows without a hash state.
func growBehind(t *testing.T, drv driver.StorageDriver, name, id, data string) {
	t.Helper()
	w, err := drv.Writer(ctx, storage.UploadDataPath(name, id), true)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(w, data); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

// gatedReader yields its first part, signals, and yields the rest once
// released.
type gatedReader struct {
	first, rest io.Reader
	started     chan struct{}
	release     chan struct{}
	once        sync.Once
}

func (g *gatedReader) Read(p []byte) (int, error) {
	if n, err := g.first.Read(p); n > 0 || err != io.EOF {
		return n, err
	}
	g.once.Do(func() { close(g.started); <-g.release })
	return g.rest.Read(p)
}

// signalReader closes read on its first Read.
type signalReader struct {
	r    io.Reader
	read chan struct{}
	once sync.Once
}

func (s *signalReader) Read(p []byte) (int, error) {
	s.once.Do(func() { close(s.read) })
	return s.r.Read(p)
}

// Two appends to one upload at once, on the filesystem driver, are
// serialised: the upload holds one body after the other, and commits
// under the digest of what it holds.
func TestUploadConcurrentAppends(t *testing.T) {
	drv, err := filesystem.New(filesystem.Parameters{RootDirectory: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	s := storage.New(drv)
	id := newUpload(t, s, "a")
	a := strings.Repeat("a", 256<<10)
	b := strings.Repeat("b", 256<<10)
	g := &gatedReader{first: strings.NewReader(a[:128<<10]), rest: strings.NewReader(a[128<<10:]),
		started: make(chan struct{}), release: make(chan struct{})}
	var wg sync.WaitGroup
	errs := make([]error, 2)
	wg.Go(func() { _, errs[0] = s.AppendUpload(ctx, "a", id, -1, g) })
	<-g.started
	second := &signalReader{r: strings.NewReader(b), read: make(chan struct{})}
	wg.Go(func() { _, errs[1] = s.AppendUpload(ctx, "a", id, -1, second) })
	// Serialised, the second append does not read its body while the first
	// is in flight; give it 100 ms to show that it would.
	select {
	case <-second.read:
		t.Error("the second append read its body while the first was in flight")
	case <-time.After(100 * time.Millisecond):
	}
	close(g.release)
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CommitUpload(ctx, "a", id, digest.FromString(a+b)); err != nil {
		t.Fatalf("commit of the first body then the second: %v", err)
	}
	assertBlob(t, s, "a", digest.FromString(a+b), a+b)
}

// Waiting for an upload's lock ends with the request.
func TestUploadLockHonoursContext(t *testing.T) {
	s := storage.New(inmemory.New())
	id := newUpload(t, s, "a")
	g := &gatedReader{first: strings.NewReader("x"), rest: strings.NewReader(""),
		started: make(chan struct{}), release: make(chan struct{})}
	done := make(chan error)
	go func() { _, err := s.AppendUpload(ctx, "a", id, -1, g); done <- err }()
	<-g.started
	cctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if _, err := s.AppendUpload(cctx, "a", id, -1, strings.NewReader("y")); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("append waiting for the lock: %v", err)
	}
	close(g.release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, err := s.CommitUpload(ctx, "a", id, digest.FromString("x")); err != nil {
		t.Fatal(err)
	}
}
