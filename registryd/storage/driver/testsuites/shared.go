package testsuites

import (
	"bytes"
	"slices"
	"testing"

	"github.com/berth-dev/berth/registryd/storage/driver"
)

// NewSharedDrivers returns two fresh drivers over the same empty storage,
// as two registryd replicas on one bucket (or one volume) see it.
type NewSharedDrivers func(t *testing.T) (a, b driver.StorageDriver)

// RunShared checks what replicas sharing a storage rely on: what one
// writes, moves or deletes, the other sees at once, and an upload one
// started the other continues — with a writer closed uncommitted, and
// with registryd's own pattern of a commit per request.
func RunShared(t *testing.T, newPair NewSharedDrivers) {
	tests := map[string]func(t *testing.T, a, b driver.StorageDriver){
		"PutContentSeenByOther":  testSharedPut,
		"WriterContinuedByOther": testSharedWriter,
		"CommitPerRequest":       testSharedCommitPerRequest,
		"MoveAndDeleteSeen":      testSharedMoveDelete,
	}
	for name, fn := range tests {
		t.Run(name, func(t *testing.T) {
			a, b := newPair(t)
			fn(t, a, b)
		})
	}
}

func testSharedPut(t *testing.T, a, b driver.StorageDriver) {
	put(t, a, "/shared/dir/file", []byte("from a"))
	wantContent(t, b, "/shared/dir/file", []byte("from a"))
	if list, err := b.List(t.Context(), "/shared/dir"); err != nil || !slices.Equal(list, []string{"/shared/dir/file"}) {
		t.Fatalf("b.List = %v, %v", list, err)
	}
	put(t, b, "/shared/dir/file", []byte("from b, longer"))
	wantContent(t, a, "/shared/dir/file", []byte("from b, longer"))
}

func testSharedWriter(t *testing.T, a, b driver.StorageDriver) {
	ctx := t.Context()
	const path = "/shared/uploads/u/data"
	part1 := randomBytes(7, 6<<20+3) // more than S3's smallest part
	part2 := randomBytes(8, 1<<20+9)
	part3 := randomBytes(9, 12345)

	w, err := a.Writer(ctx, path, false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(part1); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatalf("a: Close: %v", err)
	}
	// The other replica sees how much the upload holds, and continues it.
	if fi := statOK(t, b, path); fi.Size() != int64(len(part1)) {
		t.Fatalf("b: Stat size = %d after a closed its writer, want %d", fi.Size(), len(part1))
	}
	w, err = b.Writer(ctx, path, true)
	if err != nil {
		t.Fatal(err)
	}
	if w.Size() != int64(len(part1)) {
		t.Fatalf("b: resumed Size() = %d, want %d", w.Size(), len(part1))
	}
	if _, err := w.Write(part2); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatalf("b: Close: %v", err)
	}
	w, err = a.Writer(ctx, path, true)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(part3); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(ctx); err != nil {
		t.Fatalf("a: Commit: %v", err)
	}
	w.Close()
	want := bytes.Join([][]byte{part1, part2, part3}, nil)
	wantContent(t, b, path, want)
	wantContent(t, a, path, want)
}

// testSharedCommitPerRequest follows registryd's upload: an empty object
// first, then one appending writer per PATCH, committed each time, on
// alternating replicas.
func testSharedCommitPerRequest(t *testing.T, a, b driver.StorageDriver) {
	ctx := t.Context()
	const path = "/shared/uploads/v/data"
	put(t, a, path, nil)
	var want []byte
	for i, size := range []int{1 << 10, 5<<20 + 1, 17, 3 << 20} {
		d := a
		if i%2 == 1 {
			d = b
		}
		chunk := randomBytes(uint64(20+i), size)
		w, err := d.Writer(ctx, path, true)
		if err != nil {
			t.Fatal(err)
		}
		if w.Size() != int64(len(want)) {
			t.Fatalf("chunk %d: Size() = %d, want %d", i, w.Size(), len(want))
		}
		if _, err := w.Write(chunk); err != nil {
			t.Fatal(err)
		}
		if err := w.Commit(ctx); err != nil {
			t.Fatalf("chunk %d: Commit: %v", i, err)
		}
		if err := w.Close(); err != nil {
			t.Fatalf("chunk %d: Close after Commit: %v", i, err)
		}
		want = append(want, chunk...)
		other := b
		if d == b {
			other = a
		}
		if fi := statOK(t, other, path); fi.Size() != int64(len(want)) {
			t.Fatalf("chunk %d: the other replica's Stat size = %d, want %d", i, fi.Size(), len(want))
		}
	}
	wantContent(t, a, path, want)
}

func testSharedMoveDelete(t *testing.T, a, b driver.StorageDriver) {
	ctx := t.Context()
	put(t, a, "/shared/up/data", []byte("blob"))
	if err := a.Move(ctx, "/shared/up/data", "/shared/blobs/ab/abc/data"); err != nil {
		t.Fatal(err)
	}
	wantContent(t, b, "/shared/blobs/ab/abc/data", []byte("blob"))
	_, err := b.Stat(ctx, "/shared/up/data")
	wantNotFound(t, b, "b: Stat(moved source)", err)
	if err := b.Delete(ctx, "/shared/blobs"); err != nil {
		t.Fatal(err)
	}
	_, err = a.Stat(ctx, "/shared/blobs/ab/abc/data")
	wantNotFound(t, a, "a: Stat(deleted by b)", err)
	err = a.Walk(ctx, "/shared/blobs", func(driver.FileInfo) error { return nil })
	wantNotFound(t, a, "a: Walk(deleted by b)", err)
}
