package gc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/berth-dev/berth/registryd/storage"
	"github.com/berth-dev/berth/registryd/storage/driver"
)

// progressInterval is how often marking logs how far it got.
const progressInterval = 10 * time.Second

// descriptor is the part of an OCI descriptor the collector reads.
type descriptor struct {
	Digest digest.Digest `json:"digest"`
}

// manifestRefs is every field of every manifest kind that names content:
// OCI and Docker image manifests (config, layers), indexes and manifest
// lists (manifests), the OCI subject, and schema 1's fsLayers, which
// registryd never accepts but a store may still hold.
type manifestRefs struct {
	Config    *descriptor  `json:"config"`
	Layers    []descriptor `json:"layers"`
	Manifests []descriptor `json:"manifests"`
	Subject   *descriptor  `json:"subject"`
	FSLayers  []struct {
		BlobSum digest.Digest `json:"blobSum"`
	} `json:"fsLayers"`
}

// node is one manifest revision of the repository being marked.
type node struct {
	// target is where the revision link points (the content's digest).
	target digest.Digest
	// blobs are config and layers; children are index entries.
	blobs, children []digest.Digest
	subject         digest.Digest
	// missing: the content is gone from the blob store.
	missing bool
	// bad is why the content could not be decoded.
	bad error
}

// repoPlan is what the sweep must remove from one repository.
type repoPlan struct {
	name string
	// dead revisions, sorted, and the tags whose index names each.
	dead     []digest.Digest
	tagIndex map[digest.Digest][]string
}

// mark walks every repository, marking with opts.Workers workers. It stops
// at the first error.
func (c *collector) mark(ctx context.Context) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	names := make(chan string)
	var done atomic.Int64
	var wg sync.WaitGroup
	for range c.opts.Workers {
		wg.Go(func() {
			for name := range names {
				if ctx.Err() != nil {
					continue
				}
				if c.expired() {
					cancel(ErrDeadline)
					continue
				}
				if err := c.markRepository(ctx, name); err != nil {
					cancel(fmt.Errorf("repository %s: %w", name, err))
				}
				done.Add(1)
			}
		})
	}
	stop := make(chan struct{})
	go func() {
		t := time.NewTicker(progressInterval)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				c.log.Info("Marking", "repositories", done.Load())
			}
		}
	}()
	walkErr := c.store.WalkRepositories(ctx, func(name string) error {
		select {
		case names <- name:
			return nil
		case <-ctx.Done():
			return context.Cause(ctx)
		}
	})
	close(names)
	wg.Wait()
	close(stop)
	if err := context.Cause(ctx); err != nil {
		return err
	}
	if walkErr != nil {
		return walkErr
	}
	if c.youngAfter.IsZero() {
		return nil
	}
	return c.markYoungLayerLinks(ctx)
}

// markRepository marks the live manifests of repository name and plans the
// removal of its dead ones.
func (c *collector) markRepository(ctx context.Context, name string) error {
	revs, err := c.store.ManifestDigests(ctx, name)
	if err != nil {
		return err
	}
	nodes := make(map[digest.Digest]*node, len(revs))
	for _, d := range revs {
		n, err := c.readManifest(ctx, name, d)
		if err != nil {
			return err
		}
		if n != nil {
			nodes[d] = n
		}
	}

	var tags []string
	roots := make([]digest.Digest, 0, len(nodes))
	if c.opts.DeleteUntagged {
		tags, err = c.store.Tags(ctx, name)
		if err != nil && !errors.Is(err, storage.ErrRepositoryUnknown) {
			return err
		}
		for _, tag := range tags {
			d, err := c.store.ResolveTag(ctx, name, tag)
			if errors.Is(err, storage.ErrTagUnknown) {
				continue
			}
			if err != nil {
				return fmt.Errorf("tag %s: %w", tag, err)
			}
			if nodes[d] == nil {
				c.log.Warn("Tag points at no manifest of its repository", "repository", name, "tag", tag, "digest", d)
				continue
			}
			roots = append(roots, d)
		}
	} else {
		for _, d := range revs {
			if nodes[d] != nil {
				roots = append(roots, d)
			}
		}
	}

	live, marks, err := c.closure(ctx, name, nodes, roots, nil)
	if err != nil {
		return err
	}
	var kept map[digest.Digest]bool
	var youngMarks []digest.Digest
	if !c.youngAfter.IsZero() {
		if kept, youngMarks, err = c.markYoung(ctx, name, revs, nodes, live); err != nil {
			return err
		}
	}

	plan := &repoPlan{name: name}
	for _, d := range revs {
		if nodes[d] != nil && !live[d] && !kept[d] {
			plan.dead = append(plan.dead, d)
		}
	}
	if len(plan.dead) > 0 {
		if plan.tagIndex, err = c.tagIndexEntries(ctx, name, tags, plan.dead); err != nil {
			return err
		}
	}

	c.mu.Lock()
	defer c.mu.Unlock()
	for _, d := range marks {
		c.marked[d] = true
	}
	for _, d := range youngMarks {
		if _, ok := c.marked[d]; !ok {
			c.marked[d] = false
		}
	}
	c.repos = append(c.repos, name)
	c.sum.Repositories++
	c.sum.ManifestsMarked += len(live)
	c.sum.ManifestsKeptYoung += len(kept)
	if len(plan.dead) > 0 {
		c.plans = append(c.plans, plan)
	}
	c.log.Debug("Marked repository", "repository", name, "manifests", len(nodes), "live", len(live), "keptYoung", len(kept), "dead", len(plan.dead))
	return nil
}

// markYoung applies the grace period to the revisions of repository name:
// the untagged ones whose link is young are kept with everything they
// reach (children, referrers, blobs). It returns the revisions kept that
// live does not hold and the digests they mark.
//
// Blobs are kept by their own data file's time (sweepBlobs) and by the
// time of their _layers links (markYoungLayerLinks): an upload of a blob
// the store already holds, and a cross-repository mount, write only the
// link, and a client that pushed such a blob just before read-only, whose
// manifest PUT was refused, would otherwise find it swept when it retries.
func (c *collector) markYoung(ctx context.Context, name string, revs []digest.Digest, nodes map[digest.Digest]*node, live map[digest.Digest]bool) (map[digest.Digest]bool, []digest.Digest, error) {
	if !c.opts.DeleteUntagged {
		// Every revision is live already.
		return nil, nil, nil
	}
	var roots []digest.Digest
	for _, d := range revs {
		if nodes[d] == nil || live[d] {
			continue
		}
		mod, err := c.store.RevisionLinkModTime(ctx, name, d)
		if errors.Is(err, storage.ErrManifestUnknown) {
			continue
		}
		if err != nil {
			return nil, nil, fmt.Errorf("manifest %s: %w", d, err)
		}
		if c.isYoung(mod) {
			roots = append(roots, d)
		}
	}
	if len(roots) == 0 {
		return nil, nil, nil
	}
	return c.closure(ctx, name, nodes, roots, live)
}

// markYoungLayerLinks keeps every blob with a young _layers link in any
// repository (see markYoung for why), in one walk of the store.
func (c *collector) markYoungLayerLinks(ctx context.Context) error {
	var marks []digest.Digest
	err := c.store.WalkLayerLinks(ctx, func(name string, d digest.Digest, mod time.Time) error {
		if !c.isYoung(mod) {
			return nil
		}
		marks = append(marks, d)
		if d.Algorithm() != digest.Canonical {
			target, err := c.store.LayerLinkTarget(ctx, name, d)
			if err == nil {
				marks = append(marks, target)
			} else if !errors.Is(err, storage.ErrBlobUnknown) {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("_layers links: %w", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, d := range marks {
		if _, ok := c.marked[d]; !ok {
			c.marked[d] = false
		}
	}
	return nil
}

// closure computes the revisions reachable from roots through index
// children and the subject relation, and the digests they mark. Revisions
// in seen (already live) are neither returned nor followed again.
//
// A live revision whose content cannot be decoded stops the run: what it
// references is unknown. One reached only through young roots (seen is
// not nil) is kept with its own content and the run goes on: it is
// garbage or a push in progress, and must not block every collection for
// the length of the grace period.
func (c *collector) closure(ctx context.Context, name string, nodes map[digest.Digest]*node, roots []digest.Digest, seen map[digest.Digest]bool) (map[digest.Digest]bool, []digest.Digest, error) {
	referrers := make(map[digest.Digest][]digest.Digest)
	for d, n := range nodes {
		if n.subject != "" {
			referrers[n.subject] = append(referrers[n.subject], d)
		}
	}
	live := make(map[digest.Digest]bool, len(nodes))
	var marks []digest.Digest
	stack := roots
	for len(stack) > 0 {
		d := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		n := nodes[d]
		if live[d] || seen[d] || n == nil {
			continue
		}
		if n.bad != nil && seen == nil {
			return nil, nil, fmt.Errorf("live manifest %s cannot be decoded, so what it references is unknown: %w", d, n.bad)
		}
		live[d] = true
		marks = append(marks, d, n.target)
		if n.bad != nil {
			c.log.Warn("Young manifest cannot be decoded; keeping it and its content only", "repository", name, "digest", d, "error", n.bad)
			continue
		}
		if n.missing {
			c.log.Warn("Live manifest has no content in the blob store", "repository", name, "digest", d)
		}
		for _, b := range n.blobs {
			marks = append(marks, b)
			// A blob named by a non-canonical digest may be stored under
			// the canonical one, reached through the _layers link.
			if b.Algorithm() != digest.Canonical {
				target, err := c.store.LayerLinkTarget(ctx, name, b)
				if err == nil {
					marks = append(marks, target)
				} else if !errors.Is(err, storage.ErrBlobUnknown) {
					return nil, nil, err
				}
			}
		}
		for _, ch := range n.children {
			marks = append(marks, ch)
			stack = append(stack, ch)
		}
		stack = append(stack, referrers[d]...)
	}
	return live, marks, nil
}

// readManifest reads and decodes revision d of repository name. It returns
// nil when the revision vanished since it was listed.
func (c *collector) readManifest(ctx context.Context, name string, d digest.Digest) (*node, error) {
	target, err := c.store.RevisionLinkTarget(ctx, name, d)
	if errors.Is(err, storage.ErrManifestUnknown) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("manifest %s: %w", d, err)
	}
	n := &node{target: target}
	content, err := c.drv.GetContent(ctx, storage.BlobDataPath(target))
	if errors.Is(err, driver.ErrNotFound) {
		n.missing = true
		return n, nil
	}
	if err != nil {
		return nil, fmt.Errorf("manifest %s: %w", d, err)
	}
	var m manifestRefs
	if err := json.Unmarshal(content, &m); err != nil {
		n.bad = err
		return n, nil //nolint:nilerr // an unparsable manifest is recorded on the node, not fatal to the run
	}
	add := func(list *[]digest.Digest, ds ...digest.Digest) {
		for _, x := range ds {
			if x.Validate() == nil {
				*list = append(*list, x)
			}
		}
	}
	if m.Config != nil {
		add(&n.blobs, m.Config.Digest)
	}
	for _, l := range m.Layers {
		add(&n.blobs, l.Digest)
	}
	for _, l := range m.FSLayers {
		add(&n.blobs, l.BlobSum)
	}
	for _, ch := range m.Manifests {
		add(&n.children, ch.Digest)
	}
	if m.Subject != nil && m.Subject.Digest.Validate() == nil {
		n.subject = m.Subject.Digest
	}
	return n, nil
}

// tagIndexEntries finds, for each dead revision, the tags whose history
// names it: one listing per tag, not one lookup per tag and revision.
func (c *collector) tagIndexEntries(ctx context.Context, name string, tags []string, dead []digest.Digest) (map[digest.Digest][]string, error) {
	isDead := make(map[digest.Digest]bool, len(dead))
	for _, d := range dead {
		isDead[d] = true
	}
	out := make(map[digest.Digest][]string)
	for _, tag := range tags {
		entries, err := c.store.TagIndex(ctx, name, tag)
		if err != nil {
			return nil, fmt.Errorf("tag %s: %w", tag, err)
		}
		for _, d := range entries {
			if isDead[d] {
				out[d] = append(out[d], tag)
			}
		}
	}
	return out, nil
}
