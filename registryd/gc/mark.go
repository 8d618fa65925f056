package gc

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/berth-dev/berth/registryd/retention"
	"github.com/berth-dev/berth/registryd/storage"
	"github.com/berth-dev/berth/registryd/storage/driver"
)

// progressInterval is how often marking logs how far it got.
const progressInterval = 10 * time.Second

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
	// pruned are the tags retention deletes, sorted.
	pruned []retention.Tag
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

	plan := &repoPlan{name: name}
	rule := -1
	if c.opts.Retention != nil {
		rule = c.opts.Retention.Match(name)
	}
	var tags []storage.TagInfo
	if c.opts.DeleteUntagged || rule >= 0 {
		tags, err = c.store.TagInfos(ctx, name)
		if err != nil && !errors.Is(err, storage.ErrRepositoryUnknown) {
			return err
		}
	}
	var guarded int
	if rule >= 0 {
		rtags := make([]retention.Tag, len(tags))
		for i, t := range tags {
			rtags[i] = retention.Tag{Name: t.Name, Digest: t.Digest, Pushed: t.Pushed}
		}
		dec := c.opts.Retention.Apply(name, rtags, c.start)
		plan.pruned = dec.Delete
		if dec.Guarded {
			guarded = 1
			c.log.Warn("Retention would delete every tag of the repository; the last-tag guard keeps the most recent",
				"repository", name, "rule", dec.Rule, "tag", dec.Keep[0].Name)
		}
		for _, t := range dec.Delete {
			c.log.Debug("Tag not kept by retention", "repository", name, "tag", t.Name, "digest", t.Digest, "pushed", t.Pushed.UTC().Format(time.RFC3339), "rule", dec.Rule)
		}
	}
	pruned := make(map[string]bool, len(plan.pruned))
	for _, t := range plan.pruned {
		pruned[t.Name] = true
	}
	// kept are the tags left once retention is done: every tag the
	// collection keeps, and whose history is pruned with dead revisions.
	var kept []string
	tagged := make(map[digest.Digest]bool)
	for _, t := range tags {
		if !pruned[t.Name] {
			kept = append(kept, t.Name)
			tagged[t.Digest] = true
		}
	}

	roots := make([]digest.Digest, 0, len(nodes))
	switch {
	case c.opts.DeleteUntagged:
		for _, t := range tags {
			if pruned[t.Name] {
				continue
			}
			if nodes[t.Digest] == nil {
				c.log.Warn("Tag points at no manifest of its repository", "repository", name, "tag", t.Name, "digest", t.Digest)
				continue
			}
			roots = append(roots, t.Digest)
		}
	case len(plan.pruned) == 0:
		for _, d := range revs {
			if nodes[d] != nil {
				roots = append(roots, d)
			}
		}
	default:
		// Without DeleteUntagged every revision is live, except those
		// only the pruned tags named (orphaned): what retention frees.
		// Untagged referrers of a revision of the repository are not
		// roots, so those of an orphaned revision go with it; the closure
		// brings back those of every live one.
		orphaned := make(map[digest.Digest]bool)
		for _, t := range plan.pruned {
			if !tagged[t.Digest] {
				orphaned[t.Digest] = true
			}
		}
		for _, d := range revs {
			n := nodes[d]
			if n == nil || orphaned[d] || (!tagged[d] && n.subject != "" && nodes[n.subject] != nil) {
				continue
			}
			roots = append(roots, d)
		}
	}

	live, marks, err := c.closure(ctx, name, nodes, roots, nil)
	if err != nil {
		return err
	}
	var young map[digest.Digest]bool
	var youngMarks []digest.Digest
	if !c.youngAfter.IsZero() {
		if young, youngMarks, err = c.markYoung(ctx, name, revs, nodes, live); err != nil {
			return err
		}
	}

	for _, d := range revs {
		if nodes[d] != nil && !live[d] && !young[d] {
			plan.dead = append(plan.dead, d)
		}
	}
	if len(plan.dead) > 0 {
		if plan.tagIndex, err = c.tagIndexEntries(ctx, name, kept, plan.dead); err != nil {
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
	c.sum.ManifestsKeptYoung += len(young)
	if rule >= 0 {
		c.sum.Retention.Repositories++
		c.sum.Retention.TagsKeptByLastTagGuard += guarded
	}
	if len(plan.dead) > 0 || len(plan.pruned) > 0 {
		c.plans = append(c.plans, plan)
	}
	c.log.Debug("Marked repository", "repository", name, "manifests", len(nodes), "live", len(live), "keptYoung", len(young),
		"dead", len(plan.dead), "tagsPruned", len(plan.pruned))
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
	// Without DeleteUntagged the only revisions not live are those
	// retention orphaned.
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
	links, err := storage.ParseManifestLinks(content)
	if err != nil {
		n.bad = err
		return n, nil //nolint:nilerr // an unparsable manifest is recorded on the node, not fatal to the run
	}
	n.blobs, n.children, n.subject = links.Blobs, links.Children, links.Subject
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
