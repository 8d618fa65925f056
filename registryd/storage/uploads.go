package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/opencontainers/go-digest"

	"github.com/berth-dev/berth/registryd/storage/driver"
)

// Upload describes an upload session.
type Upload struct {
	ID        string
	Size      int64
	StartedAt time.Time
}

// CreateUpload starts an upload session in repository name: it writes the
// startedat file (RFC 3339, UTC, as Distribution does). The data file is
// created by the first append; until then the upload is empty.
func (s *Store) CreateUpload(ctx context.Context, name string) (Upload, error) {
	if err := checkName(name); err != nil {
		return Upload{}, err
	}
	id := uuid.NewString()
	now := time.Now().UTC()
	if err := s.driver.PutContent(ctx, UploadStartedAtPath(name, id), []byte(now.Format(time.RFC3339))); err != nil {
		return Upload{}, err
	}
	return Upload{ID: id, StartedAt: now.Truncate(time.Second)}, nil
}

// StatUpload describes upload id of repository name.
func (s *Store) StatUpload(ctx context.Context, name, id string) (Upload, error) {
	if err := checkName(name); err != nil {
		return Upload{}, err
	}
	if !ValidUploadID(id) {
		return Upload{}, ErrUploadUnknown
	}
	b, err := s.driver.GetContent(ctx, UploadStartedAtPath(name, id))
	if err != nil {
		if errors.Is(err, driver.ErrNotFound) {
			return Upload{}, ErrUploadUnknown
		}
		return Upload{}, err
	}
	started, err := time.Parse(time.RFC3339, strings.TrimSpace(string(b)))
	if err != nil {
		return Upload{}, fmt.Errorf("upload %s: corrupt startedat: %w", id, err)
	}
	u := Upload{ID: id, StartedAt: started}
	fi, err := s.driver.Stat(ctx, UploadDataPath(name, id))
	switch {
	case errors.Is(err, driver.ErrNotFound):
	case err != nil:
		return Upload{}, err
	default:
		u.Size = fi.Size()
	}
	return u, nil
}

// AppendUpload appends r to upload id. When offset is not negative it must
// equal the current size of the upload, or an *OffsetError is returned and
// nothing is written. It returns the new size. When r fails part way, what
// was received is kept (the client can ask for the upload's size and
// resume) and the read error is returned.
//
// The bytes are hashed with SHA-256 as they are written, and the hash's
// state is stored at the new size (see hashstate.go), so that
// CommitUpload need not read the upload again. Appends and commits of one
// upload are serialised within this process.
func (s *Store) AppendUpload(ctx context.Context, name, id string, offset int64, r io.Reader) (int64, error) {
	unlock, err := s.uploadLocks.lock(ctx, id)
	if err != nil {
		return 0, err
	}
	defer unlock()
	u, err := s.StatUpload(ctx, name, id)
	if err != nil {
		return 0, err
	}
	if offset >= 0 && offset != u.Size {
		return u.Size, &OffsetError{Size: u.Size, Requested: offset}
	}
	h := s.resumeHash(ctx, name, id, u.Size)
	w, err := s.driver.Writer(ctx, UploadDataPath(name, id), true)
	if err != nil {
		return u.Size, err
	}
	hw := &hashingWriter{w: w, h: h}
	_, copyErr := io.Copy(hw, r)
	if err := w.Commit(ctx); err != nil {
		_ = w.Close()
		return u.Size, err
	}
	size := w.Size()
	if err := w.Close(); err != nil && copyErr == nil {
		copyErr = err
	}
	// The state is kept only when it covers exactly the committed bytes:
	// not when the file had grown between the stat and the open.
	if h != nil && size == u.Size+hw.n {
		s.saveHashState(ctx, name, id, size, h)
	}
	return size, copyErr
}

// CommitUpload verifies that upload id hashes to d, moves it into the
// global blob store, links it into repository name and removes the upload.
// On a digest mismatch the upload is cancelled (as Distribution does) and
// ErrDigestMismatch is returned.
//
// A sha256 digest is checked against the hash state stored at the
// upload's size when there is one; otherwise, or when the state does not
// give d, the upload is read and hashed again, so that a bad state can
// never refuse a good upload.
func (s *Store) CommitUpload(ctx context.Context, name, id string, d digest.Digest) (Descriptor, error) {
	if err := checkDigest(d); err != nil {
		return Descriptor{}, err
	}
	unlock, err := s.uploadLocks.lock(ctx, id)
	if err != nil {
		return Descriptor{}, err
	}
	defer unlock()
	u, err := s.StatUpload(ctx, name, id)
	if err != nil {
		return Descriptor{}, err
	}
	dataPath := UploadDataPath(name, id)
	n := u.Size
	if !s.stateVerifies(ctx, name, id, u.Size, d) {
		verifier := d.Verifier()
		n = 0
		rc, err := s.driver.Reader(ctx, dataPath, 0)
		switch {
		case errors.Is(err, driver.ErrNotFound):
			// Nothing was ever appended: the empty blob.
		case err != nil:
			return Descriptor{}, err
		default:
			n, err = io.Copy(verifier, rc)
			rc.Close()
			if err != nil {
				return Descriptor{}, err
			}
		}
		if n != u.Size || !verifier.Verified() {
			if err := s.cancelUpload(ctx, name, id); err != nil {
				return Descriptor{}, err
			}
			return Descriptor{}, ErrDigestMismatch
		}
	}
	if _, err := s.statGlobalBlob(ctx, d); errors.Is(err, ErrBlobUnknown) {
		if n == 0 {
			err = s.driver.PutContent(ctx, BlobDataPath(d), nil)
		} else {
			err = s.driver.Move(ctx, dataPath, BlobDataPath(d))
		}
		if err != nil {
			return Descriptor{}, err
		}
	} else if err != nil {
		return Descriptor{}, err
	}
	if err := s.linkBlob(ctx, name, d, Descriptor{Digest: d, Size: n}); err != nil {
		return Descriptor{}, err
	}
	if err := s.driver.Delete(ctx, uploadPath(name, id)); err != nil && !errors.Is(err, driver.ErrNotFound) {
		return Descriptor{}, err
	}
	return Descriptor{Digest: d, Size: n}, nil
}

// CancelUpload removes upload id of repository name.
func (s *Store) CancelUpload(ctx context.Context, name, id string) error {
	unlock, err := s.uploadLocks.lock(ctx, id)
	if err != nil {
		return err
	}
	defer unlock()
	return s.cancelUpload(ctx, name, id)
}

// cancelUpload is CancelUpload for a caller holding the upload's lock.
func (s *Store) cancelUpload(ctx context.Context, name, id string) error {
	if _, err := s.StatUpload(ctx, name, id); err != nil {
		return err
	}
	err := s.driver.Delete(ctx, uploadPath(name, id))
	if errors.Is(err, driver.ErrNotFound) {
		return ErrUploadUnknown
	}
	return err
}

// PutBlob stores content as a blob of repository name in one step,
// verifying it against d.
func (s *Store) PutBlob(ctx context.Context, name string, d digest.Digest, content []byte) (Descriptor, error) {
	if err := checkName(name); err != nil {
		return Descriptor{}, err
	}
	if err := checkDigest(d); err != nil {
		return Descriptor{}, err
	}
	if d.Algorithm().FromBytes(content) != d {
		return Descriptor{}, ErrDigestMismatch
	}
	if err := s.putBlob(ctx, d, content); err != nil {
		return Descriptor{}, err
	}
	desc := Descriptor{Digest: d, Size: int64(len(content))}
	if err := s.linkBlob(ctx, name, d, desc); err != nil {
		return Descriptor{}, err
	}
	return desc, nil
}
