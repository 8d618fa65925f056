package storage

import (
	"context"
	"crypto/sha256"
	"encoding"
	"hash"
	"io"
	"sync"

	"github.com/opencontainers/go-digest"

	"github.com/berth-dev/berth/registryd/storage/driver"
)

// Upload hash states.
//
// AppendUpload hashes the bytes it appends with SHA-256 and stores the
// hash's state (crypto/sha256's encoding.BinaryMarshaler form, the one
// Distribution writes) at _uploads/<id>/hashstates/sha256/<size>, once
// the data up to <size> is committed. The next append resumes from the
// state at the upload's current size, and CommitUpload checks a sha256
// digest against the state at the final size instead of reading the
// upload again.
//
// A state is not made durable (driver.PutContentUnsynced: no fsync on
// the filesystem, where a durable one would cost an upload's append two
// more fsyncs): a crash may lose it or leave it empty, which the reader
// treats as missing.
//
// A state is named by the number of bytes it covers, so a state left
// behind by an earlier append is never taken for the current one: when
// the upload has grown past it (another replica appended, or an older
// version of registryd, or Distribution without a state at that size),
// there is no state at the current size, and AppendUpload re-reads the
// data to rebuild one while CommitUpload re-reads the whole upload. A
// state that does not decode is treated as missing. A state that decodes
// but gives another digest makes CommitUpload re-read the upload, so the
// refusal of an upload always rests on its bytes. Only SHA-256 is kept:
// a sha512 or sha384 digest is checked by reading the upload, as before.
// The states live under the upload's directory and go with it (commit,
// cancel, purge).

// hashStateAlg is the algorithm whose state an upload keeps.
const hashStateAlg = digest.SHA256

// loadHashState returns the hash of the first size bytes of upload id
// from its stored state, or nil when there is no usable state at size.
func (s *Store) loadHashState(ctx context.Context, name, id string, size int64) hash.Hash {
	h := sha256.New()
	if size == 0 {
		return h
	}
	b, err := s.driver.GetContent(ctx, UploadHashStatePath(name, id, hashStateAlg, size))
	if err != nil {
		return nil
	}
	if err := h.(encoding.BinaryUnmarshaler).UnmarshalBinary(b); err != nil {
		return nil
	}
	return h
}

// resumeHash returns the hash of the first size bytes of upload id: from
// the stored state, or else by reading them. It returns nil when neither
// works; the append then keeps no state.
func (s *Store) resumeHash(ctx context.Context, name, id string, size int64) hash.Hash {
	if h := s.loadHashState(ctx, name, id, size); h != nil {
		return h
	}
	rc, err := s.driver.Reader(ctx, UploadDataPath(name, id), 0)
	if err != nil {
		return nil
	}
	defer rc.Close()
	h := sha256.New()
	if _, err := io.CopyN(h, rc, size); err != nil {
		return nil
	}
	return h
}

// saveHashState stores h as the state of upload id after size bytes,
// without waiting for it to be durable. A failure is logged, not
// returned: the state only saves a later read.
func (s *Store) saveHashState(ctx context.Context, name, id string, size int64, h hash.Hash) {
	state, err := h.(encoding.BinaryMarshaler).MarshalBinary()
	if err == nil {
		err = driver.PutContentUnsynced(ctx, s.driver, UploadHashStatePath(name, id, hashStateAlg, size), state)
	}
	if err != nil {
		s.log.WarnContext(ctx, "Storing an upload's hash state; the commit will read the upload again",
			"repository", name, "upload", id, "size", size, "error", err)
	}
}

// stateVerifies reports whether the stored hash state of upload id at
// size gives d. False means "not known": the caller reads the upload.
func (s *Store) stateVerifies(ctx context.Context, name, id string, size int64, d digest.Digest) bool {
	if d.Algorithm() != hashStateAlg {
		return false
	}
	h := s.loadHashState(ctx, name, id, size)
	return h != nil && digest.NewDigest(hashStateAlg, h) == d
}

// hashingWriter hashes what w accepted, and counts it. h may be nil.
type hashingWriter struct {
	w io.Writer
	h hash.Hash
	n int64
}

func (hw *hashingWriter) Write(p []byte) (int, error) {
	n, err := hw.w.Write(p)
	if hw.h != nil {
		hw.h.Write(p[:n])
	}
	hw.n += int64(n)
	return n, err
}

// uploadLocks serialises the appends and commits of one upload within
// this process: two requests appending to one upload at once would
// interleave their bytes under one hash state. The lock of an upload
// exists while someone holds or waits for it.
type uploadLocks struct {
	mu   sync.Mutex
	held map[string]*uploadLock
}

type uploadLock struct {
	token chan struct{} // holds one value while locked
	users int           // holders and waiters, under uploadLocks.mu
}

// lock takes the lock of upload id, or fails when ctx ends first, and
// returns its release.
func (l *uploadLocks) lock(ctx context.Context, id string) (func(), error) {
	l.mu.Lock()
	if l.held == nil {
		l.held = map[string]*uploadLock{}
	}
	e := l.held[id]
	if e == nil {
		e = &uploadLock{token: make(chan struct{}, 1)}
		l.held[id] = e
	}
	e.users++
	l.mu.Unlock()
	leave := func() {
		l.mu.Lock()
		if e.users--; e.users == 0 {
			delete(l.held, id)
		}
		l.mu.Unlock()
	}
	select {
	case e.token <- struct{}{}:
		return func() { <-e.token; leave() }, nil
	case <-ctx.Done():
		leave()
		return nil, ctx.Err()
	}
}
