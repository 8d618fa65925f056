package storage

import (
	"context"
	"fmt"

	"github.com/opencontainers/go-digest"
)

// The blob descriptor cache (storage.cache.blobdescriptor) remembers what
// the store has learnt about blobs: which digest a repository's _layers
// link points at, and the size of each blob of the global store. With it,
// a blob HEAD or GET and the blob checks of a manifest PUT are answered
// without reading storage, which matters on object stores.
//
// A stale entry is the Distribution registry's most reported garbage
// collection bug: the registry says a swept blob exists, so the client
// skips the upload and the image cannot be pulled. So:
//
//   - only reads trust the cache; writes (an upload's commit, a mount, a
//     blob stored in one step) check storage, so a stale entry can never
//     make a write skip content it needs;
//   - a link is evicted when its blob is deleted through the API (before
//     and after the deletion; a failed eviction fails the delete), and a
//     blob when a read finds its content gone;
//   - `registryd garbage-collect` evicts every blob and link it sweeps from
//     a shared (redis) cache, and a replica's in-memory cache is dropped
//     whenever the replica leaves read-only mode, which every garbage
//     collection run ends with (see registryd/server).
//
// A link hit counts only with a blob hit: evicting a blob invalidates every
// repository's view of it.

// BlobDescriptorCache is a cache of blob descriptors and repository links.
// Implementations (registryd/storage/cache) must be safe for concurrent use.
// Lookups report a miss with ok false; an error is a cache failure, which
// the store treats as a miss.
type BlobDescriptorCache interface {
	// Blob returns the descriptor of blob d of the global blob store.
	Blob(ctx context.Context, d digest.Digest) (desc Descriptor, ok bool, err error)
	// SetBlob remembers desc.
	SetBlob(ctx context.Context, desc Descriptor) error
	// EvictBlob forgets blob d, and with it every link to it.
	EvictBlob(ctx context.Context, d digest.Digest) error
	// Link returns the digest blob d is linked to in repository name.
	Link(ctx context.Context, name string, d digest.Digest) (target digest.Digest, ok bool, err error)
	// SetLink remembers that d is linked to target in repository name.
	SetLink(ctx context.Context, name string, d, target digest.Digest) error
	// EvictLink forgets the link of d in repository name.
	EvictLink(ctx context.Context, name string, d digest.Digest) error
}

// WithBlobDescriptorCache makes the store cache blob descriptors in c.
func WithBlobDescriptorCache(c BlobDescriptorCache) Option {
	return func(s *Store) { s.cache = blobCache{c} }
}

// blobCache wraps the configured cache; its zero value caches nothing.
// Lookup and store failures are misses (the cache logs them itself).
type blobCache struct{ c BlobDescriptorCache }

func (b blobCache) blob(ctx context.Context, d digest.Digest) (Descriptor, bool) {
	if b.c == nil {
		return Descriptor{}, false
	}
	desc, ok, err := b.c.Blob(ctx, d)
	return desc, ok && err == nil
}

func (b blobCache) setBlob(ctx context.Context, desc Descriptor) {
	if b.c != nil {
		_ = b.c.SetBlob(ctx, desc)
	}
}

func (b blobCache) evictBlob(ctx context.Context, d digest.Digest) {
	if b.c != nil {
		_ = b.c.EvictBlob(ctx, d)
	}
}

func (b blobCache) link(ctx context.Context, name string, d digest.Digest) (digest.Digest, bool) {
	if b.c == nil {
		return "", false
	}
	target, ok, err := b.c.Link(ctx, name, d)
	return target, ok && err == nil
}

func (b blobCache) setLink(ctx context.Context, name string, d, target digest.Digest) {
	if b.c != nil {
		_ = b.c.SetLink(ctx, name, d, target)
	}
}

func (b blobCache) evictLink(ctx context.Context, name string, d digest.Digest) {
	_ = b.mustEvictLink(ctx, name, d)
}

// mustEvictLink evicts and returns the cache's failure.
func (b blobCache) mustEvictLink(ctx context.Context, name string, d digest.Digest) error {
	if b.c == nil {
		return nil
	}
	if err := b.c.EvictLink(ctx, name, d); err != nil {
		return fmt.Errorf("evicting %s@%s from the blob descriptor cache: %w", name, d, err)
	}
	return nil
}
