package storage

import (
	"context"
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"
	"time"

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

// BlobInfo describes a blob of the global blob store.
type BlobInfo struct {
	Digest digest.Digest
	Size   int64
	// ModTime is the data file's modification time as the driver reports
	// it: when its content was last written (an upload's last chunk, since
	// committing moves the upload's file).
	ModTime time.Time
}

// WalkBlobs calls fn with every blob in the global blob store, in one walk
// of blobs/ (no per-blob round trip). Only
// blobs/<alg>/<hex[0:2]>/<hex>/data files whose path spells a valid digest
// are reported; anything else found there is skipped. An error from fn
// ends the walk and is returned.
func (s *Store) WalkBlobs(ctx context.Context, fn func(b BlobInfo) error) error {
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
			return nil //nolint:nilerr // a path that is not a blob's is skipped, as Distribution skips it
		}
		return fn(BlobInfo{Digest: d, Size: fi.Size(), ModTime: fi.ModTime()})
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

// WalkLayerLinks calls fn with the repository, the digest and the link
// file's modification time of every _layers link in the store, in one walk
// of repositories/ that skips _manifests and _uploads (no per-link round
// trip). Repositories without a _manifests directory (a first push whose
// manifest has not arrived) are included. A link is written when a blob is
// uploaded to or mounted into a repository, even when the blob's content
// was already stored, so its time says when the repository last claimed
// the blob. An error from fn ends the walk and is returned.
func (s *Store) WalkLayerLinks(ctx context.Context, fn func(name string, d digest.Digest, modTime time.Time) error) error {
	root := repositoriesRoot()
	err := s.driver.Walk(ctx, root, func(fi driver.FileInfo) error {
		rel := strings.TrimPrefix(fi.Path(), root+"/")
		repo, link, inLayers := strings.Cut(rel, "/_layers/")
		if !inLayers {
			if fi.IsDir() {
				switch path.Base(rel) {
				case "_manifests", "_uploads":
					return driver.ErrSkipDir
				}
			}
			return nil
		}
		parts := strings.Split(link, "/")
		if fi.IsDir() {
			if len(parts) > 2 {
				return driver.ErrSkipDir
			}
			return nil
		}
		if len(parts) != 3 || parts[2] != "link" {
			return nil
		}
		d := digest.Digest(parts[0] + ":" + parts[1])
		if d.Validate() != nil || !ValidName(repo) {
			return nil //nolint:nilerr // a path that is not a link's is skipped, as Distribution skips it
		}
		return fn(repo, d, fi.ModTime())
	})
	if errors.Is(err, driver.ErrNotFound) {
		return nil
	}
	return err
}

// RevisionLinkModTime returns the modification time of the revision link
// of manifest d in repository name: when the manifest was last pushed to
// it.
func (s *Store) RevisionLinkModTime(ctx context.Context, name string, d digest.Digest) (time.Time, error) {
	if err := checkName(name); err != nil {
		return time.Time{}, err
	}
	if err := checkDigest(d); err != nil {
		return time.Time{}, err
	}
	fi, err := s.driver.Stat(ctx, RevisionLinkPath(name, d))
	if errors.Is(err, driver.ErrNotFound) {
		return time.Time{}, ErrManifestUnknown
	}
	if err != nil {
		return time.Time{}, err
	}
	return fi.ModTime(), nil
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
	for i := range len(enc) {
		if c := enc[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// TagInfo describes a tag of a repository.
type TagInfo struct {
	Name string
	// Digest is what the tag's current link points at.
	Digest digest.Digest
	// Pushed is the current link's modification time: registryd and
	// Distribution rewrite the link on every push of the tag, so it is
	// when the tag was last pushed.
	Pushed time.Time
}

// TagInfos returns every tag of repository name with its target and push
// time, sorted by name, from one walk of the tags directory that skips the
// tags' histories (index/), and one read per tag. A tag directory without
// a current link is not a tag (as in Tags' lookups); a corrupt link is an
// error. ErrRepositoryUnknown is returned when the repository does not
// exist.
func (s *Store) TagInfos(ctx context.Context, name string) ([]TagInfo, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	root := tagsPath(name)
	var out []TagInfo
	err := s.driver.Walk(ctx, root, func(fi driver.FileInfo) error {
		parts := strings.Split(strings.TrimPrefix(fi.Path(), root+"/"), "/")
		if fi.IsDir() {
			switch {
			case len(parts) == 1 && !ValidTag(parts[0]):
				return driver.ErrSkipDir
			case len(parts) == 2 && parts[1] != "current":
				return driver.ErrSkipDir
			case len(parts) > 2:
				return driver.ErrSkipDir
			}
			return nil
		}
		if len(parts) != 3 || parts[1] != "current" || parts[2] != "link" {
			return nil
		}
		out = append(out, TagInfo{Name: parts[0], Pushed: fi.ModTime()})
		return nil
	})
	if errors.Is(err, driver.ErrNotFound) {
		return emptyListing[TagInfo](ctx, s, name)
	}
	if err != nil {
		return nil, err
	}
	tags := out[:0]
	for _, t := range out {
		d, err := s.readLink(ctx, TagCurrentLinkPath(name, t.Name), ErrTagUnknown)
		if errors.Is(err, ErrTagUnknown) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("tag %s: %w", t.Name, err)
		}
		t.Digest = d
		tags = append(tags, t)
	}
	slices.SortFunc(tags, func(a, b TagInfo) int { return strings.Compare(a.Name, b.Name) })
	return tags, nil
}

// TagPath is the directory of tag in repository name
// (_manifests/tags/<tag>): deleting it removes the tag with its history,
// as Untag does.
func TagPath(name, tag string) string { return tagPath(name, tag) }
