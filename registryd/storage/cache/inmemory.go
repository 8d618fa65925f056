// Package cache holds the blob descriptor caches of
// storage.cache.blobdescriptor: InMemory (inmemory, bounded by
// blobdescriptorsize) and Redis (redis, configured by the redis section).
// See registryd/storage's cache.go for what is cached and when it is
// evicted.
package cache

import (
	"context"
	"math"

	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/opencontainers/go-digest"

	"github.com/berth-dev/berth/registryd/storage"
)

// DefaultInMemorySize is how many entries the in-memory cache holds when
// blobdescriptorsize is not set (the reference's default).
const DefaultInMemorySize = 10000

// key is a blob of the global store (repo "") or a repository's link.
type key struct {
	repo   string
	digest digest.Digest
}

// entry is a blob's size or a link's target.
type entry struct {
	size   int64
	target digest.Digest
}

// InMemory is a blob descriptor cache in the process's memory: at most size
// entries, blobs and links together, the least recently used evicted first.
// It is per process, so registryd drops it whenever the replica leaves
// read-only mode (Clear), and a deletion through another replica is not
// seen here until then; use Redis to share one cache between replicas.
type InMemory struct {
	lru *lru.Cache[key, entry]
}

var _ storage.BlobDescriptorCache = (*InMemory)(nil)

// NewInMemory returns an in-memory cache of at most size entries; 0 means
// unbounded.
func NewInMemory(size int) *InMemory {
	if size <= 0 {
		size = math.MaxInt
	}
	c, err := lru.New[key, entry](size)
	if err != nil {
		panic(err) // only for size <= 0
	}
	return &InMemory{lru: c}
}

// Len is the number of entries held.
func (m *InMemory) Len() int { return m.lru.Len() }

// Clear forgets everything.
func (m *InMemory) Clear() { m.lru.Purge() }

func (m *InMemory) Blob(_ context.Context, d digest.Digest) (storage.Descriptor, bool, error) {
	e, ok := m.lru.Get(key{digest: d})
	return storage.Descriptor{Digest: d, Size: e.size}, ok, nil
}

func (m *InMemory) SetBlob(_ context.Context, desc storage.Descriptor) error {
	m.lru.Add(key{digest: desc.Digest}, entry{size: desc.Size})
	return nil
}

func (m *InMemory) EvictBlob(_ context.Context, d digest.Digest) error {
	m.lru.Remove(key{digest: d})
	return nil
}

func (m *InMemory) Link(_ context.Context, name string, d digest.Digest) (digest.Digest, bool, error) {
	e, ok := m.lru.Get(key{repo: name, digest: d})
	return e.target, ok, nil
}

func (m *InMemory) SetLink(_ context.Context, name string, d, target digest.Digest) error {
	m.lru.Add(key{repo: name, digest: d}, entry{target: target})
	return nil
}

func (m *InMemory) EvictLink(_ context.Context, name string, d digest.Digest) error {
	m.lru.Remove(key{repo: name, digest: d})
	return nil
}
