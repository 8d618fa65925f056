package gc

import (
	"context"
	"errors"
	"fmt"
	"path"

	"github.com/opencontainers/go-digest"

	"github.com/berth-dev/berth/registryd/storage"
)

// deadManifest is one revision to remove.
type deadManifest struct {
	plan   *repoPlan
	digest digest.Digest
}

// sweepManifests removes dead revisions: the tag index entries naming
// each, then its revision link. When that fails the manifest's blob is
// kept, so the revision left behind still has its content.
func (c *collector) sweepManifests(ctx context.Context) {
	var items []deadManifest
	for _, p := range c.plans {
		for _, d := range p.dead {
			items = append(items, deadManifest{plan: p, digest: d})
		}
	}
	if len(items) == 0 {
		return
	}
	c.log.Info("Deleting manifests", "count", len(items), "dryRun", c.opts.DryRun)
	parallel(ctx, c.opts.Workers, items, func(ctx context.Context, it deadManifest) {
		name, d := it.plan.name, it.digest
		tags := it.plan.tagIndex[d]
		for i, tag := range tags {
			if err := c.deleteDir(ctx, path.Dir(storage.TagIndexLinkPath(name, tag, d))); err != nil {
				c.failUnlessStopped(fmt.Errorf("tag index entry %s:%s -> %s: %w", name, tag, d, err))
				c.keepBlob(d)
				c.count(func(s *Summary) { s.TagIndexEntriesDeleted += i })
				return
			}
		}
		if err := c.deleteDir(ctx, path.Dir(storage.RevisionLinkPath(name, d))); err != nil {
			c.failUnlessStopped(fmt.Errorf("manifest %s@%s: %w", name, d, err))
			c.keepBlob(d)
			c.count(func(s *Summary) { s.TagIndexEntriesDeleted += len(tags) })
			return
		}
		c.log.Debug("Deleted manifest", "repository", name, "digest", d, "tags", tags, "dryRun", c.opts.DryRun)
		c.count(func(s *Summary) {
			s.TagIndexEntriesDeleted += len(tags)
			s.ManifestsDeleted++
			s.Deleted.Manifests = append(s.Deleted.Manifests, RepositoryDigest{Repository: name, Digest: d})
		})
	})
}

// failUnlessStopped records a failed deletion, unless it was not started
// because the deadline was reached.
func (c *collector) failUnlessStopped(err error) {
	if errors.Is(err, errStopped) {
		return
	}
	c.fail(err)
}

func (c *collector) count(f func(*Summary)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	f(c.sum)
}

func (c *collector) keepBlob(d digest.Digest) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.keptBlobs == nil {
		c.keptBlobs = make(map[digest.Digest]struct{})
	}
	c.keptBlobs[d] = struct{}{}
}

func (c *collector) isKept(d digest.Digest) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.keptBlobs[d]
	return ok
}

// sweepBlobs walks blobs/ once and removes every blob outside the marked
// set whose data is older than the grace period.
func (c *collector) sweepBlobs(ctx context.Context) error {
	var dead []Blob
	marked, young := 0, 0
	err := c.store.WalkBlobs(ctx, func(b storage.BlobInfo) error {
		switch {
		case c.isLive(b.Digest):
			marked++
		case c.isKept(b.Digest):
		case c.isMarked(b.Digest) || c.isYoung(b.ModTime):
			// Kept by the grace period: keepBlob keeps its _layers links.
			young++
			c.keepBlob(b.Digest)
		default:
			dead = append(dead, Blob{Digest: b.Digest, Size: b.Size})
		}
		return nil
	})
	c.sum.BlobsMarked = marked
	c.sum.BlobsKeptYoung = young
	if err != nil {
		return err
	}
	c.log.Info("Deleting blobs", "count", len(dead), "marked", marked, "keptYoung", young, "dryRun", c.opts.DryRun)
	c.deleteBlobs(ctx, dead, func(b Blob, err error) {
		if err != nil {
			c.failUnlessStopped(fmt.Errorf("blob %s: %w", b.Digest, err))
			c.keepBlob(b.Digest)
			return
		}
		c.evict(ctx, "blob "+b.Digest.String(), func(bdc storage.BlobDescriptorCache) error { return bdc.EvictBlob(ctx, b.Digest) })
		c.log.Debug("Deleted blob", "digest", b.Digest, "size", b.Size, "dryRun", c.opts.DryRun)
		c.count(func(s *Summary) {
			s.BlobsDeleted++
			s.BytesFreed += b.Size
			s.Deleted.Blobs = append(s.Deleted.Blobs, b)
		})
	})
	return ctx.Err()
}

// sweepLayerLinks removes, in every repository, the _layers links to
// digests outside the live set, except links to blobs that could not be
// deleted.
func (c *collector) sweepLayerLinks(ctx context.Context) {
	parallel(ctx, c.opts.Workers, c.repos, func(ctx context.Context, name string) {
		if c.expired() {
			return
		}
		links, err := c.store.LayerLinks(ctx, name)
		if err != nil {
			c.fail(fmt.Errorf("listing _layers of %s: %w", name, err))
			return
		}
		for _, d := range links {
			if c.isMarked(d) || c.isKept(d) {
				continue
			}
			if d.Algorithm() != digest.Canonical {
				target, err := c.store.LayerLinkTarget(ctx, name, d)
				if err != nil && !errors.Is(err, storage.ErrBlobUnknown) {
					c.fail(fmt.Errorf("layer link %s@%s: %w", name, d, err))
					continue
				}
				if err == nil && (c.isMarked(target) || c.isKept(target)) {
					continue
				}
			}
			if err := c.deleteDir(ctx, path.Dir(storage.LayerLinkPath(name, d))); err != nil {
				if errors.Is(err, errStopped) {
					return
				}
				c.fail(fmt.Errorf("layer link %s@%s: %w", name, d, err))
				continue
			}
			c.evict(ctx, "layer link "+name+"@"+d.String(), func(bdc storage.BlobDescriptorCache) error { return bdc.EvictLink(ctx, name, d) })
			c.log.Debug("Deleted layer link", "repository", name, "digest", d, "dryRun", c.opts.DryRun)
			c.count(func(s *Summary) {
				s.LayerLinksDeleted++
				s.Deleted.LayerLinks = append(s.Deleted.LayerLinks, RepositoryDigest{Repository: name, Digest: d})
			})
		}
	})
}

// evict tells Options.Cache about a deletion (not in a dry run).
func (c *collector) evict(ctx context.Context, what string, f func(storage.BlobDescriptorCache) error) {
	if c.opts.Cache == nil || c.opts.DryRun {
		return
	}
	if err := f(c.opts.Cache); err != nil {
		c.fail(fmt.Errorf("evicting %s from the blob descriptor cache: %w", what, err))
	}
}
