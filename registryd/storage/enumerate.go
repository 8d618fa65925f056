package storage

import (
	"context"
	"errors"
	"path"
	"strings"

	"github.com/opencontainers/go-digest"

	"github.com/berth-dev/berth/registryd/storage/driver"
)

// Enumeration helpers for whole-store maintenance (garbage collection).
// They stream: each entry is handed to the callback as the driver's walk
// meets it, so a caller holds only what it decides to keep.

// WalkRepositories calls fn with the name of every repository, in walk
// order (which is not quite catalog order, see Repositories). A repository
// is a directory under repositories/ holding a _manifests directory, the
// definition Repositories and Distribution's catalog use. An error from fn
// ends the walk and is returned.
func (s *Store) WalkRepositories(ctx context.Context, fn func(name string) error) error {
	root := repositoriesRoot()
	err := s.driver.Walk(ctx, root, func(fi driver.FileInfo) error {
		if !fi.IsDir() {
			return nil
		}
		p := fi.Path()
		base := path.Base(p)
		if base == "_manifests" {
			if err := fn(strings.TrimPrefix(path.Dir(p), root+"/")); err != nil {
				return err
			}
			return driver.ErrSkipDir
		}
		if strings.HasPrefix(base, "_") {
			return driver.ErrSkipDir
		}
		return nil
	})
	if errors.Is(err, driver.ErrNotFound) {
		return nil
	}
	return err
}

// BlobsPath is the root of the global blob store (blobs/).
func BlobsPath() string { return blobsRoot() }

// WalkBlobs calls fn with the digest and size of every blob in the global
// blob store, in one walk of blobs/ (no per-blob round trip). Only
// blobs/<alg>/<hex[0:2]>/<hex>/data files whose path spells a valid digest
// are reported; anything else found there is skipped. An error from fn
// ends the walk and is returned.
func (s *Store) WalkBlobs(ctx context.Context, fn func(d digest.Digest, size int64) error) error {
	root := blobsRoot()
	err := s.driver.Walk(ctx, root, func(fi driver.FileInfo) error {
		rel := strings.TrimPrefix(fi.Path(), root+"/")
		parts := strings.Split(rel, "/")
		if fi.IsDir() {
			// alg, prefix, hex: descend; anything deeper is not a blob.
			if len(parts) > 3 {
				return driver.ErrSkipDir
			}
			return nil
		}
		if len(parts) != 4 || parts[3] != "data" {
			return nil
		}
		d := digest.Digest(parts[0] + ":" + parts[2])
		if d.Validate() != nil || !strings.HasPrefix(parts[2], parts[1]) || len(parts[1]) != 2 {
			return nil
		}
		return fn(d, fi.Size())
	})
	if errors.Is(err, driver.ErrNotFound) {
		return nil
	}
	return err
}

// BlobPath is the directory holding blob d (blobs/<alg>/<hex[0:2]>/<hex>):
// deleting it removes the blob.
func BlobPath(d digest.Digest) string { return blobDir(d) }

// linkedDigests lists the digests named by <dir>/<alg>/<hex> directories,
// the shape of _layers and _manifests/revisions: the digest is read from
// the path, not from the link file.
func (s *Store) linkedDigests(ctx context.Context, dir string) ([]digest.Digest, error) {
	algs, err := s.driver.List(ctx, dir)
	if errors.Is(err, driver.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []digest.Digest
	for _, algDir := range algs {
		alg := path.Base(algDir)
		hexes, err := s.driver.List(ctx, algDir)
		if errors.Is(err, driver.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		for _, h := range hexes {
			if enc := path.Base(h); validEncoded(alg, enc) {
				out = append(out, digest.Digest(alg+":"+enc))
			}
		}
	}
	return out, nil
}

// LayerLinks returns, unsorted, the digests of every blob linked into
// repository name under _layers, as spelled by the link paths.
func (s *Store) LayerLinks(ctx context.Context, name string) ([]digest.Digest, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	return s.linkedDigests(ctx, path.Join(RepositoryPath(name), "_layers"))
}

// LayerLinkTarget returns the digest the _layers link of d in repository
// name points at (where the content lives; usually d itself).
func (s *Store) LayerLinkTarget(ctx context.Context, name string, d digest.Digest) (digest.Digest, error) {
	if err := checkName(name); err != nil {
		return "", err
	}
	if err := checkDigest(d); err != nil {
		return "", err
	}
	return s.readLink(ctx, LayerLinkPath(name, d), ErrBlobUnknown)
}

// RevisionLinkTarget returns the digest the revision link of manifest d in
// repository name points at.
func (s *Store) RevisionLinkTarget(ctx context.Context, name string, d digest.Digest) (digest.Digest, error) {
	if err := checkName(name); err != nil {
		return "", err
	}
	if err := checkDigest(d); err != nil {
		return "", err
	}
	return s.readLink(ctx, RevisionLinkPath(name, d), ErrManifestUnknown)
}

// TagIndex returns, unsorted, every digest recorded in the index (history)
// of tag in repository name.
func (s *Store) TagIndex(ctx context.Context, name, tag string) ([]digest.Digest, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	if !ValidTag(tag) {
		return nil, ErrTagInvalid
	}
	return s.linkedDigests(ctx, path.Join(tagPath(name, tag), "index"))
}

// validEncoded reports whether alg:enc is a valid digest. Listings of
// large repositories check thousands of names, so the common algorithms
// are checked by length and lower-case hex by hand; anything else goes
// through digest.Validate.
func validEncoded(alg, enc string) bool {
	var size int
	switch digest.Algorithm(alg) {
	case digest.SHA256:
		size = 64
	case digest.SHA384:
		size = 96
	case digest.SHA512:
		size = 128
	default:
		return digest.Digest(alg+":"+enc).Validate() == nil
	}
	if len(enc) != size {
		return false
	}
	for i := 0; i < len(enc); i++ {
		if c := enc[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}
