package gc

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"path"
	"slices"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/opencontainers/go-digest"

	"github.com/berth-dev/berth/registryd/notifications"
	"github.com/berth-dev/berth/registryd/retention"
	"github.com/berth-dev/berth/registryd/storage"
)

// unit is one deletion of the sweep's first phase, in a repository: a
// revision with the tags retention deletes that name it, or such a tag
// alone when its revision stays (another tag or the grace period keeps it).
type unit struct {
	plan *repoPlan
	// digest is the dead revision; "" for a tag whose revision stays.
	digest digest.Digest
	// tags are the tags retention deletes that point at digest.
	tags []retention.Tag
}

// units lists the first phase's deletions: every dead revision, with the
// pruned tags naming it, and every other pruned tag on its own.
func (c *collector) units() []unit {
	var out []unit
	for _, p := range c.plans {
		byDigest := make(map[digest.Digest][]retention.Tag)
		for _, t := range p.pruned {
			byDigest[t.Digest] = append(byDigest[t.Digest], t)
		}
		for _, d := range p.dead {
			out = append(out, unit{plan: p, digest: d, tags: byDigest[d]})
			delete(byDigest, d)
		}
		for _, t := range p.pruned {
			if _, ok := byDigest[t.Digest]; ok {
				out = append(out, unit{plan: p, tags: []retention.Tag{t}})
			}
		}
	}
	return out
}

// sweepManifests removes the tags retention deletes and the dead
// revisions, one unit at a time: the unit's tags (each with its history,
// the tag's directory, as a client's DELETE of the tag does), then the
// tag index entries naming the revision, then its revision link. Tags go
// first, so that no tag is left pointing at a missing revision. A unit
// starts only before the deadline and then runs to its end (it is one
// deletion for the deadline's margin): a revision is never left behind
// untagged by its retention tags yet undeleted, which a later run without
// DeleteUntagged would no longer recognise as garbage.
//
// When a tag cannot be deleted its revision stays, with its blob; the
// call returns how many tags failed, and the run then deletes no blob:
// what that tag reaches must stay. When a revision cannot be removed its
// blob is kept, so the revision left behind still has its content.
func (c *collector) sweepManifests(ctx context.Context) (tagFailures int) {
	items := c.units()
	if len(items) == 0 {
		return 0
	}
	tags, manifests := 0, 0
	for _, it := range items {
		tags += len(it.tags)
		if it.digest != "" {
			manifests++
		}
	}
	c.log.Info("Deleting tags and manifests", "tags", tags, "manifests", manifests, "dryRun", c.opts.DryRun)
	var failed atomic.Int64
	parallel(ctx, c.opts.Workers, items, func(ctx context.Context, it unit) {
		if c.expired() {
			return
		}
		name, d := it.plan.name, it.digest
		for _, t := range it.tags {
			if err := c.deleteNow(ctx, storage.TagPath(name, t.Name)); err != nil {
				c.fail(fmt.Errorf("tag %s:%s: %w", name, t.Name, err))
				failed.Add(1)
				if d != "" {
					c.keepBlob(d)
				}
				return
			}
			if !c.opts.DryRun {
				c.emitTagDeleted(name, t.Name)
			}
			c.log.Debug("Deleted tag", "repository", name, "tag", t.Name, "digest", t.Digest, "dryRun", c.opts.DryRun)
			c.count(func(s *Summary) {
				s.Retention.TagsDeleted++
				if c.tagsDeleted == nil {
					c.tagsDeleted = make(map[string]int)
				}
				c.tagsDeleted[name]++
				s.Deleted.Tags = append(s.Deleted.Tags, RepositoryTag{Repository: name, Tag: t.Name, Digest: t.Digest})
			})
		}
		if d == "" {
			return
		}
		tags := it.plan.tagIndex[d]
		for i, tag := range tags {
			if err := c.deleteNow(ctx, path.Dir(storage.TagIndexLinkPath(name, tag, d))); err != nil {
				c.fail(fmt.Errorf("tag index entry %s:%s -> %s: %w", name, tag, d, err))
				c.keepBlob(d)
				c.count(func(s *Summary) { s.TagIndexEntriesDeleted += i })
				return
			}
		}
		if err := c.deleteNow(ctx, path.Dir(storage.RevisionLinkPath(name, d))); err != nil {
			c.fail(fmt.Errorf("manifest %s@%s: %w", name, d, err))
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
	return int(failed.Load())
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

// blobWalk is what walkBlobs found.
type blobWalk struct {
	marked int
	// dead are unmarked and old; young are kept by the grace period
	// (marked only through young manifests, or data modified within it).
	dead  []Blob
	young []digest.Digest
	err   error
}

// walkBlobs walks blobs/ once and sorts every blob by the marks: live,
// young or dead. It runs while sweepManifests deletes, so it does not look
// at the blobs a failed deletion keeps: sweepBlobs does, once both are
// done.
func (c *collector) walkBlobs(ctx context.Context) blobWalk {
	var w blobWalk
	w.err = c.store.WalkBlobs(ctx, func(b storage.BlobInfo) error {
		switch {
		case c.isLive(b.Digest):
			w.marked++
		case c.isMarked(b.Digest) || c.isYoung(b.ModTime):
			w.young = append(w.young, b.Digest)
		default:
			w.dead = append(w.dead, Blob{Digest: b.Digest, Size: b.Size})
		}
		return nil
	})
	return w
}

// sweepBlobs removes the dead blobs walkBlobs found, except those kept
// since.
func (c *collector) sweepBlobs(ctx context.Context, w blobWalk) error {
	c.sum.BlobsMarked = w.marked
	young := 0
	for _, d := range w.young {
		if !c.isKept(d) { // else kept by a failed deletion, and not counted as young
			young++
			c.keepBlob(d) // keepBlob keeps its _layers links
		}
	}
	c.sum.BlobsKeptYoung = young
	if w.err != nil {
		return w.err
	}
	dead := slices.DeleteFunc(w.dead, func(b Blob) bool { return c.isKept(b.Digest) })
	c.log.Info("Deleting blobs", "count", len(dead), "marked", w.marked, "keptYoung", young, "dryRun", c.opts.DryRun)
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

// emitTagDeleted reports the deletion of a tag as the registry reports a
// client's DELETE /v2/<name>/manifests/<tag>: action delete, a target
// naming the repository and the tag. No HTTP request caused it: the
// request names the method the action stands for and the collector as
// the user agent.
func (c *collector) emitTagDeleted(repo, tag string) {
	if c.opts.Events == nil {
		return
	}
	c.opts.Events.Write(notifications.Event{
		ID:        uuid.NewString(),
		Timestamp: time.Now().UTC(),
		Action:    notifications.ActionDelete,
		Target:    notifications.Target{Repository: repo, Tag: tag},
		Request:   notifications.Request{ID: uuid.NewString(), Method: http.MethodDelete, UserAgent: EventUserAgent},
		Source:    c.opts.EventSource,
	})
}

// EventUserAgent is the user agent of the events the collector emits.
const EventUserAgent = "registryd-garbage-collect"
