// Package storage is registryd's registry layer: it lays out blobs,
// repositories, manifests, tags and upload sessions on a storage driver
// exactly as the CNCF Distribution registry does, so that a directory (or
// bucket) written by one is served by the other.
//
// Layout, below RootPath (/docker/registry/v2):
//
//	blobs/<alg>/<hex[0:2]>/<hex>/data                         content of every blob and manifest
//	repositories/<name>/_layers/<alg>/<hex>/link               blob linked into the repository
//	repositories/<name>/_manifests/revisions/<alg>/<hex>/link  manifest stored in the repository
//	repositories/<name>/_manifests/tags/<tag>/current/link     what the tag points at
//	repositories/<name>/_manifests/tags/<tag>/index/<alg>/<hex>/link  every digest the tag ever pointed at
//	repositories/<name>/_uploads/<uuid>/data                   upload in progress
//	repositories/<name>/_uploads/<uuid>/startedat              RFC 3339 UTC start time
//
// A link file holds the target digest string ("sha256:<hex>") and nothing
// else, no newline. Readers follow the link's content, not the path it sits
// at, as Distribution does (it links a sha512-addressed upload to a sha256
// canonical blob).
//
// Where registryd differs from Distribution, on purpose:
//
//   - A blob pushed with a sha512 (or sha384) digest is stored at
//     blobs/sha512/... and linked to itself; Distribution stores it under
//     its sha256 and links the sha512 path to that. Both layouts read
//     correctly in both registries, because both follow link contents.
//   - registryd does not write _uploads/<id>/hashstates/: it re-hashes the
//     upload data when the upload is committed. Hash states left by
//     Distribution are ignored and removed with the upload.
//   - registryd keeps a referrers index per repository under
//     repositories/<name>/_berth/, a directory Distribution never reads or
//     writes; it is checked against the revisions on every request, so
//     Distribution's writes are seen (see referrers.go). Distribution
//     serves a directory with the index as if it were not there.
//   - registryd keeps recently read and written manifests in memory, by
//     digest (manifestcache.go). Only content is cached: whether a
//     manifest is in a repository is read from storage on every request.
package storage

import (
	"context"
	// Register sha384 and sha512 with go-digest.
	_ "crypto/sha512"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path"
	"runtime"
	"strings"
	"sync"

	"github.com/opencontainers/go-digest"

	"github.com/berth-dev/berth/registryd/storage/driver"
)

// Errors returned by Store. Callers match them with errors.Is.
var (
	ErrNameInvalid       = errors.New("invalid repository name")
	ErrTagInvalid        = errors.New("invalid tag")
	ErrDigestInvalid     = errors.New("invalid digest")
	ErrDigestMismatch    = errors.New("content does not match digest")
	ErrBlobUnknown       = errors.New("blob unknown")
	ErrManifestUnknown   = errors.New("manifest unknown")
	ErrTagUnknown        = errors.New("tag unknown")
	ErrRepositoryUnknown = errors.New("repository unknown")
	ErrUploadUnknown     = errors.New("upload unknown")
)

// OffsetError is returned when an upload chunk does not start where the
// upload currently ends.
type OffsetError struct {
	// Size is the current size of the upload.
	Size int64
	// Requested is the offset the client asked to write at.
	Requested int64
}

func (e *OffsetError) Error() string {
	return fmt.Sprintf("upload is %d bytes long, chunk starts at %d", e.Size, e.Requested)
}

// Descriptor is a digest and a size.
type Descriptor struct {
	Digest digest.Digest
	Size   int64
}

// Store is the registry layer over one storage driver. It is safe for
// concurrent use as far as the driver is.
type Store struct {
	driver driver.StorageDriver
	log    *slog.Logger
	// admitWrite is asked before writes that no client request asked
	// for (the referrers index, see referrers.go).
	admitWrite func() (release func(), ok bool)
	indexLocks indexLocks
	// indexedSums holds, per repository, the SHA-256 of the indexed file
	// this process last found or wrote (referrers.go).
	indexedSums sync.Map
	// manifests caches manifest content by digest (manifestcache.go).
	manifests *manifestCache
	// tagConcurrency bounds the tag lookups TagsFor runs at once.
	tagConcurrency int
	// cache is the blob descriptor cache (cache.go); its zero value
	// caches nothing.
	cache blobCache
}

// Option configures a Store.
type Option func(*Store)

// WithWriteAdmission sets what the Store asks before writing on its own
// initiative (the referrers index, written while answering a read): admit
// returns ok false to refuse (read-only mode), and otherwise a release
// called when the write is done. Without it such writes are always made.
func WithWriteAdmission(admit func() (release func(), ok bool)) Option {
	return func(s *Store) { s.admitWrite = admit }
}

// WithManifestCache sets how many bytes of manifests the Store keeps in
// memory (manifestcache.go); 0 turns the cache off. The default is
// DefaultManifestCacheBytes.
func WithManifestCache(bytes int64) Option {
	return func(s *Store) { s.manifests = newManifestCache(bytes) }
}

// WithLogger sets where the Store reports problems it works around.
func WithLogger(l *slog.Logger) Option { return func(s *Store) { s.log = l } }

// WithTagConcurrency bounds how many tags TagsFor (the lookup behind a
// manifest delete) reads at once (storage.tag.concurrencylimit); 0 or less
// means GOMAXPROCS, as in Distribution.
func WithTagConcurrency(n int) Option { return func(s *Store) { s.tagConcurrency = n } }

// New returns a Store over d.
func New(d driver.StorageDriver, opts ...Option) *Store {
	s := &Store{
		driver:     d,
		log:        slog.New(slog.DiscardHandler),
		admitWrite: func() (func(), bool) { return func() {}, true },
		manifests:  newManifestCache(DefaultManifestCacheBytes),
	}
	for _, o := range opts {
		o(s)
	}
	if s.tagConcurrency <= 0 {
		s.tagConcurrency = runtime.GOMAXPROCS(0)
	}
	return s
}

// Driver returns the underlying driver.
func (s *Store) Driver() driver.StorageDriver { return s.driver }

func checkName(name string) error {
	if !ValidName(name) {
		return ErrNameInvalid
	}
	return nil
}

func checkDigest(d digest.Digest) error {
	if d.Validate() != nil {
		return ErrDigestInvalid
	}
	return nil
}

// readLink reads a link file. missing is returned when it does not exist.
func (s *Store) readLink(ctx context.Context, p string, missing error) (digest.Digest, error) {
	b, err := s.driver.GetContent(ctx, p)
	if err != nil {
		if errors.Is(err, driver.ErrNotFound) {
			return "", missing
		}
		return "", err
	}
	d, err := digest.Parse(strings.TrimSpace(string(b)))
	if err != nil {
		return "", fmt.Errorf("corrupt link %s: %w", p, err)
	}
	return d, nil
}

func (s *Store) writeLink(ctx context.Context, p string, d digest.Digest) error {
	return s.driver.PutContent(ctx, p, []byte(d.String()))
}

// StatGlobalBlob describes the blob d in the global blob store, whatever
// repository it belongs to, from the blob descriptor cache when it knows d.
func (s *Store) StatGlobalBlob(ctx context.Context, d digest.Digest) (Descriptor, error) {
	if err := checkDigest(d); err != nil {
		return Descriptor{}, err
	}
	if desc, ok := s.cache.blob(ctx, d); ok {
		return desc, nil
	}
	desc, err := s.statGlobalBlob(ctx, d)
	if err == nil {
		s.cache.setBlob(ctx, desc)
	}
	return desc, err
}

// statGlobalBlob is StatGlobalBlob from storage, never the cache: for
// writes, which must not trust a cache that might be stale.
func (s *Store) statGlobalBlob(ctx context.Context, d digest.Digest) (Descriptor, error) {
	fi, err := s.driver.Stat(ctx, BlobDataPath(d))
	if err != nil {
		if errors.Is(err, driver.ErrNotFound) {
			return Descriptor{}, ErrBlobUnknown
		}
		return Descriptor{}, err
	}
	if fi.IsDir() {
		return Descriptor{}, ErrBlobUnknown
	}
	return Descriptor{Digest: d, Size: fi.Size()}, nil
}

// StatBlob describes blob d as seen from repository name: it must be linked
// into the repository. The returned digest is the link's target, which is
// where the content lives. The link and the blob's size come from the blob
// descriptor cache when it has them.
func (s *Store) StatBlob(ctx context.Context, name string, d digest.Digest) (Descriptor, error) {
	if err := checkName(name); err != nil {
		return Descriptor{}, err
	}
	if err := checkDigest(d); err != nil {
		return Descriptor{}, err
	}
	target, cached := s.cache.link(ctx, name, d)
	if !cached {
		var err error
		if target, err = s.readLink(ctx, LayerLinkPath(name, d), ErrBlobUnknown); err != nil {
			return Descriptor{}, err
		}
	}
	desc, err := s.StatGlobalBlob(ctx, target)
	switch {
	case err == nil && !cached:
		s.cache.setLink(ctx, name, d, target)
	case errors.Is(err, ErrBlobUnknown) && cached:
		// The blob is gone (garbage-collected): so is the link.
		s.cache.evictLink(ctx, name, d)
	}
	return desc, err
}

// statBlob is StatBlob from storage, never the cache.
func (s *Store) statBlob(ctx context.Context, name string, d digest.Digest) (Descriptor, error) {
	if err := checkName(name); err != nil {
		return Descriptor{}, err
	}
	if err := checkDigest(d); err != nil {
		return Descriptor{}, err
	}
	target, err := s.readLink(ctx, LayerLinkPath(name, d), ErrBlobUnknown)
	if err != nil {
		return Descriptor{}, err
	}
	return s.statGlobalBlob(ctx, target)
}

// OpenBlob opens the content of blob d (a link target, as returned by
// StatBlob) at offset. A blob found missing is evicted from the cache.
func (s *Store) OpenBlob(ctx context.Context, d digest.Digest, offset int64) (io.ReadCloser, error) {
	if err := checkDigest(d); err != nil {
		return nil, err
	}
	rc, err := s.driver.Reader(ctx, BlobDataPath(d), offset)
	if errors.Is(err, driver.ErrNotFound) {
		s.cache.evictBlob(ctx, d)
		return nil, ErrBlobUnknown
	}
	return rc, err
}

// BlobRedirectURL returns a URL the client may fetch blob d from directly,
// or "" when the driver serves no redirects.
func (s *Store) BlobRedirectURL(ctx context.Context, method string, d digest.Digest) (string, error) {
	u, err := s.driver.RedirectURL(ctx, method, BlobDataPath(d))
	if errors.Is(err, driver.ErrUnsupportedMethod) {
		return "", nil
	}
	return u, err
}

// MountBlob links blob d, linked in repository from, into repository name.
// Whether from has it is read from storage, not the cache: a link to a blob
// that is gone would make the client skip an upload it needs.
func (s *Store) MountBlob(ctx context.Context, name, from string, d digest.Digest) (Descriptor, error) {
	if err := checkName(name); err != nil {
		return Descriptor{}, err
	}
	desc, err := s.statBlob(ctx, from, d)
	if err != nil {
		return Descriptor{}, err
	}
	if err := s.writeLink(ctx, LayerLinkPath(name, d), desc.Digest); err != nil {
		return Descriptor{}, err
	}
	s.cache.setLink(ctx, name, d, desc.Digest)
	s.cache.setBlob(ctx, desc)
	return Descriptor{Digest: d, Size: desc.Size}, nil
}

// DeleteBlob unlinks blob d from repository name and evicts the link from
// the cache. The content stays in the global blob store until garbage
// collection, as in Distribution. The link is evicted before and after the
// deletion, so that a lookup running meanwhile cannot leave it cached; an
// eviction that fails fails the delete.
func (s *Store) DeleteBlob(ctx context.Context, name string, d digest.Digest) error {
	if _, err := s.statBlob(ctx, name, d); err != nil {
		return err
	}
	if err := s.cache.mustEvictLink(ctx, name, d); err != nil {
		return err
	}
	if err := s.driver.Delete(ctx, path.Dir(LayerLinkPath(name, d))); err != nil {
		return err
	}
	return s.cache.mustEvictLink(ctx, name, d)
}

// linkBlob links blob desc into repository name as d and tells the cache.
func (s *Store) linkBlob(ctx context.Context, name string, d digest.Digest, desc Descriptor) error {
	if err := s.writeLink(ctx, LayerLinkPath(name, d), desc.Digest); err != nil {
		return err
	}
	s.cache.setLink(ctx, name, d, desc.Digest)
	s.cache.setBlob(ctx, desc)
	return nil
}

// putBlob stores content as blob d in the global blob store unless it is
// already there (as storage, not the cache, says).
func (s *Store) putBlob(ctx context.Context, d digest.Digest, content []byte) error {
	if _, err := s.statGlobalBlob(ctx, d); err == nil {
		return nil
	} else if !errors.Is(err, ErrBlobUnknown) {
		return err
	}
	return s.driver.PutContent(ctx, BlobDataPath(d), content)
}

// emptyListing answers a listing in repository name whose directory does
// not exist: empty when the repository exists, ErrRepositoryUnknown when
// it does not.
func emptyListing[T any](ctx context.Context, s *Store, name string) ([]T, error) {
	ok, err := s.RepositoryExists(ctx, name)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, ErrRepositoryUnknown
	}
	return []T{}, nil
}

// RepositoryExists reports whether anything is stored for repository name.
func (s *Store) RepositoryExists(ctx context.Context, name string) (bool, error) {
	if err := checkName(name); err != nil {
		return false, err
	}
	_, err := s.driver.Stat(ctx, RepositoryPath(name))
	if errors.Is(err, driver.ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}
