package storage

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/opencontainers/go-digest"

	"github.com/berth-dev/berth/registryd/storage/driver"
)

// The manifest cache.
//
// A digest names one content for ever, so the bytes of manifest d, and
// what ParseManifest makes of them, can be kept once read or written.
// Whether d is a manifest of a repository can change at any time (a
// delete, garbage collection, another replica), so that is never cached:
// every read still checks the repository's revision link in storage (a
// stat, where reading the manifest costs the link, the content and a
// parse). Nothing else is decided from the cache either: existence of
// blobs, tags and uploads is always read from storage, so nothing a
// garbage collection removes can be served or assumed present.
//
// An entry is added only for content that hashes to its digest. The cache
// holds at most DefaultManifestCacheBytes (WithManifestCache; each entry
// counts twice its length, for the parsed form) in least-recently-used
// order, and no manifest larger than manifestCacheMaxEntry.

// DefaultManifestCacheBytes bounds the manifest cache: thousands of
// ordinary manifests.
const DefaultManifestCacheBytes = 32 << 20

// manifestCacheMaxEntry is the largest manifest cached.
const manifestCacheMaxEntry = 1 << 20

// StoredManifest is a manifest read from storage: its bytes and what
// ParseManifest(Content, "") makes of them. It may be shared between
// callers, who must not modify it.
type StoredManifest struct {
	Digest    digest.Digest
	Content   []byte
	Manifest  *Manifest
	MediaType string
}

type manifestCache struct {
	mu      sync.Mutex
	max     int64
	size    int64
	order   *list.List // of *StoredManifest, most recently used first
	entries map[digest.Digest]*list.Element
}

func newManifestCache(max int64) *manifestCache {
	return &manifestCache{max: max, order: list.New(), entries: map[digest.Digest]*list.Element{}}
}

func cost(m *StoredManifest) int64 { return 2 * int64(len(m.Content)) }

func (c *manifestCache) get(d digest.Digest) *StoredManifest {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[d]
	if !ok {
		return nil
	}
	c.order.MoveToFront(e)
	return e.Value.(*StoredManifest)
}

func (c *manifestCache) add(m *StoredManifest) {
	if c.max <= 0 || len(m.Content) > manifestCacheMaxEntry || cost(m) > c.max {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.entries[m.Digest]; ok {
		c.order.MoveToFront(e)
		return
	}
	c.entries[m.Digest] = c.order.PushFront(m)
	c.size += cost(m)
	for c.size > c.max {
		last := c.order.Back()
		old := c.order.Remove(last).(*StoredManifest)
		delete(c.entries, old.Digest)
		c.size -= cost(old)
	}
}

// parseStored parses content read or written as manifest d, and caches it
// when it hashes to d.
func (s *Store) parseStored(d digest.Digest, content []byte) (*StoredManifest, error) {
	m, mt, err := ParseManifest(content, "")
	if err != nil {
		return nil, fmt.Errorf("stored manifest %s: %w", d, err)
	}
	sm := &StoredManifest{Digest: d, Content: content, Manifest: m, MediaType: mt}
	if d.Algorithm().Available() && d.Algorithm().FromBytes(content) == d {
		s.manifests.add(sm)
	}
	return sm, nil
}

// ReadManifest returns manifest d of repository name, parsed. The
// revision link is checked in storage every time; the content comes from
// the manifest cache when it holds d (see above).
func (s *Store) ReadManifest(ctx context.Context, name string, d digest.Digest) (*StoredManifest, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	if err := checkDigest(d); err != nil {
		return nil, err
	}
	if sm := s.manifests.get(d); sm != nil {
		fi, err := s.driver.Stat(ctx, RevisionLinkPath(name, d))
		switch {
		case errors.Is(err, driver.ErrNotFound) || (err == nil && fi.IsDir()):
			return nil, ErrManifestUnknown
		case err != nil:
			return nil, err
		}
		return sm, nil
	}
	content, err := s.readManifestContent(ctx, name, d)
	if err != nil {
		return nil, err
	}
	return s.parseStored(d, content)
}
