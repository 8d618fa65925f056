package gc

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/berth-dev/berth/registryd/notifications"
	"github.com/berth-dev/berth/registryd/retention"
	"github.com/berth-dev/berth/registryd/storage"
	"github.com/berth-dev/berth/registryd/storage/driver"
)

// DefaultWorkers is how many repositories are marked, and how many
// deletions run, at a time when Options.Workers is 0.
const DefaultWorkers = 8

// maxErrorMessages bounds Summary.Errors; ErrorCount counts them all.
const maxErrorMessages = 50

// Options tune one garbage collection run.
type Options struct {
	// DryRun deletes nothing; the Summary names what a real run would delete.
	DryRun bool
	// DeleteUntagged treats manifests reachable from no tag (through index
	// children and the subject relation) as garbage.
	DeleteUntagged bool
	// Workers bounds the repositories marked and deletions run concurrently.
	Workers int
	// GracePeriod protects recent content: a blob whose data file, a
	// manifest revision whose link, or a blob whose _layers link in any
	// repository was modified less than GracePeriod before the run started
	// is never deleted, and a manifest kept that way keeps what it
	// references. 0 turns the protection off (Distribution's behaviour).
	GracePeriod time.Duration
	// Deadline, when set, is the instant from which no deletion starts:
	// the run then stops and returns an error wrapping ErrDeadline with
	// the Summary of what was done. Reached while marking, nothing is
	// deleted.
	Deadline time.Time
	// Now is the clock the grace period and the deadline are measured
	// with; time.Now when nil.
	Now func() time.Time
	// Logger receives progress; nil discards it.
	Logger *slog.Logger
	// Cache, when set, is told to forget every blob and layer link the run
	// deletes: a blob descriptor cache shared with the registries serving
	// the storage (redis). A failed eviction counts as a failed deletion.
	Cache storage.BlobDescriptorCache
	// Retention, when set, deletes the tags its rules do not keep, before
	// anything else; what only those tags reached is then collected like
	// any garbage, with or without DeleteUntagged (see the package
	// documentation).
	Retention *retention.Compiled
	// Events, when set, receives a delete event for every tag retention
	// deletes, the event a client's DELETE of the tag produces (not in a
	// dry run).
	Events notifications.Sink
	// EventSource identifies the collector in those events.
	EventSource notifications.Source
}

// RepositoryDigest names a manifest revision or a _layers link.
type RepositoryDigest struct {
	Repository string        `json:"repository"`
	Digest     digest.Digest `json:"digest"`
}

// Blob is a blob of the global blob store.
type Blob struct {
	Digest digest.Digest `json:"digest"`
	Size   int64         `json:"size"`
}

// RepositoryTag names a tag.
type RepositoryTag struct {
	Repository string `json:"repository"`
	Tag        string `json:"tag"`
	// Digest is what the tag pointed at.
	Digest digest.Digest `json:"digest"`
}

// Deleted lists what a run deleted (or, in a dry run, would delete), each
// list sorted.
type Deleted struct {
	// Tags are the tags retention deleted.
	Tags       []RepositoryTag    `json:"tags"`
	Manifests  []RepositoryDigest `json:"manifests"`
	Blobs      []Blob             `json:"blobs"`
	LayerLinks []RepositoryDigest `json:"layerLinks"`
}

// Summary is the outcome of a run. In a dry run the *Deleted counts, the
// bytes freed and the Deleted lists describe what a real run would delete.
type Summary struct {
	DryRun                 bool  `json:"dryRun"`
	DeleteUntagged         bool  `json:"deleteUntagged"`
	Repositories           int   `json:"repositories"`
	ManifestsMarked        int   `json:"manifestsMarked"`
	ManifestsDeleted       int   `json:"manifestsDeleted"`
	TagIndexEntriesDeleted int   `json:"tagIndexEntriesDeleted"`
	BlobsMarked            int   `json:"blobsMarked"`
	BlobsDeleted           int   `json:"blobsDeleted"`
	BytesFreed             int64 `json:"bytesFreed"`
	LayerLinksDeleted      int   `json:"layerLinksDeleted"`
	// GracePeriodSeconds is Options.GracePeriod. ManifestsKeptYoung and
	// BlobsKeptYoung count what the same run without a grace period would
	// have deleted and this one kept: young untagged revisions and the
	// older ones only they reach; blobs whose data or a _layers link is
	// young, or that only kept manifests reference.
	GracePeriodSeconds float64  `json:"gracePeriodSeconds"`
	ManifestsKeptYoung int      `json:"manifestsKeptYoung"`
	BlobsKeptYoung     int      `json:"blobsKeptYoung"`
	DurationSeconds    float64  `json:"durationSeconds"`
	ErrorCount         int      `json:"errorCount"`
	Errors             []string `json:"errors,omitempty"`
	// Error is why the run stopped early, if it did.
	Error string `json:"error,omitempty"`
	// Retention is what the retention policy did; nil without one.
	Retention *RetentionSummary `json:"retention,omitempty"`
	Deleted   *Deleted          `json:"deleted,omitempty"`
}

// RetentionSummary is what a retention policy did (or, in a dry run, would
// do).
type RetentionSummary struct {
	// Rules is the number of rules of the policy.
	Rules int `json:"rules"`
	// Repositories counts the repositories a rule applied to.
	Repositories int `json:"repositories"`
	// TagsDeleted counts the tags deleted.
	TagsDeleted int `json:"tagsDeleted"`
	// TagsKeptByLastTagGuard counts the tags the last-tag guard kept: one
	// per repository whose every tag the rule would have deleted.
	TagsKeptByLastTagGuard int `json:"tagsKeptByLastTagGuard"`
	// ByRepository counts the tags deleted per repository, most first
	// (then by name). The termination log keeps as many as fit.
	ByRepository []RepositoryTags `json:"byRepository,omitempty"`
	// RepositoriesOmitted is how many repositories with deleted tags
	// ByRepository leaves out.
	RepositoriesOmitted int `json:"repositoriesOmitted,omitempty"`
	// EventsDropped counts the delete events of deleted tags not delivered
	// to a notifications endpoint (set by the caller that delivers them).
	EventsDropped int `json:"eventsDropped,omitempty"`
}

// RepositoryTags counts the tags deleted in a repository.
type RepositoryTags struct {
	Repository  string `json:"repository"`
	TagsDeleted int    `json:"tagsDeleted"`
}

// Duration is how long the run took.
func (s *Summary) Duration() time.Duration {
	return time.Duration(s.DurationSeconds * float64(time.Second))
}

// ErrPartial is returned (wrapped) when some deletions failed; the Summary
// lists them. Running the collector again finishes the job.
var ErrPartial = errors.New("some deletions failed; run garbage-collect again to finish")

// ErrDeadline is returned (wrapped) when Options.Deadline stopped the run;
// the Summary counts what was deleted before it. Running the collector
// again finishes the job.
var ErrDeadline = errors.New("deadline reached")

// Run collects garbage in the storage behind drv. Nothing may write to the
// storage while it runs (see the package documentation). It always returns
// a Summary; the error is non-nil when marking failed (nothing was deleted),
// when some deletions failed (errors.Is(err, ErrPartial)) or when the
// deadline stopped the run (errors.Is(err, ErrDeadline)).
func Run(ctx context.Context, drv driver.StorageDriver, opts Options) (*Summary, error) {
	start := time.Now()
	if opts.Workers <= 0 {
		opts.Workers = DefaultWorkers
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.GracePeriod < 0 {
		return &Summary{DryRun: opts.DryRun, DeleteUntagged: opts.DeleteUntagged, Error: "negative grace period"},
			fmt.Errorf("grace period %s is negative", opts.GracePeriod)
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	c := &collector{
		store:  storage.New(drv),
		drv:    drv,
		opts:   opts,
		log:    opts.Logger,
		marked: make(map[digest.Digest]bool),
		sum: &Summary{
			DryRun:             opts.DryRun,
			DeleteUntagged:     opts.DeleteUntagged,
			GracePeriodSeconds: opts.GracePeriod.Seconds(),
			Deleted:            &Deleted{Tags: []RepositoryTag{}, Manifests: []RepositoryDigest{}, Blobs: []Blob{}, LayerLinks: []RepositoryDigest{}},
		},
	}
	c.start = opts.Now()
	attrs := []any{"dryRun", opts.DryRun, "deleteUntagged", opts.DeleteUntagged, "workers", opts.Workers, "gracePeriod", opts.GracePeriod.String()}
	if opts.Retention != nil {
		c.sum.Retention = &RetentionSummary{Rules: opts.Retention.Rules()}
		attrs = append(attrs, "retentionRules", opts.Retention.Rules())
	}
	if opts.GracePeriod > 0 {
		c.youngAfter = c.start.Add(-opts.GracePeriod)
		attrs = append(attrs, "keepModifiedAfter", c.youngAfter.UTC().Format(time.RFC3339))
	}
	if !opts.Deadline.IsZero() {
		attrs = append(attrs, "deadline", opts.Deadline.UTC().Format(time.RFC3339))
	}
	c.log.Info("Starting garbage collection", attrs...)
	err := c.run(ctx)
	c.sum.DurationSeconds = time.Since(start).Seconds()
	d := c.sum.Deleted
	slices.SortFunc(d.Tags, func(a, b RepositoryTag) int {
		return cmp.Or(strings.Compare(a.Repository, b.Repository), strings.Compare(a.Tag, b.Tag))
	})
	if r := c.sum.Retention; r != nil && len(c.tagsDeleted) > 0 {
		r.ByRepository = byRepository(c.tagsDeleted)
	}
	slices.SortFunc(d.Manifests, compareRepositoryDigest)
	slices.SortFunc(d.LayerLinks, compareRepositoryDigest)
	slices.SortFunc(d.Blobs, func(a, b Blob) int { return strings.Compare(string(a.Digest), string(b.Digest)) })
	if err != nil {
		c.sum.Error = err.Error()
		c.log.Error("Garbage collection failed", "error", err)
		return c.sum, err
	}
	if c.sum.ErrorCount > 0 {
		err := fmt.Errorf("%d deletions failed: %w", c.sum.ErrorCount, ErrPartial)
		c.sum.Error = err.Error()
		c.log.Error("Garbage collection incomplete", "errors", c.sum.ErrorCount)
		return c.sum, err
	}
	c.log.Info("Garbage collection done", "dryRun", opts.DryRun,
		"repositories", c.sum.Repositories,
		"manifestsMarked", c.sum.ManifestsMarked, "manifestsDeleted", c.sum.ManifestsDeleted,
		"blobsMarked", c.sum.BlobsMarked, "blobsDeleted", c.sum.BlobsDeleted,
		"bytesFreed", c.sum.BytesFreed, "layerLinksDeleted", c.sum.LayerLinksDeleted,
		"manifestsKeptYoung", c.sum.ManifestsKeptYoung, "blobsKeptYoung", c.sum.BlobsKeptYoung,
		"duration", time.Since(start).Round(time.Millisecond))
	return c.sum, nil
}

func compareRepositoryDigest(a, b RepositoryDigest) int {
	return cmp.Or(storage.CompareNames(a.Repository, b.Repository), strings.Compare(string(a.Digest), string(b.Digest)))
}

// collector is the state of one run.
type collector struct {
	store *storage.Store
	drv   driver.StorageDriver
	opts  Options
	log   *slog.Logger

	// start is when the run started, by Options.Now: retention's push
	// times are judged against it.
	start time.Time
	// youngAfter is the grace period's cutoff: content modified after it
	// is young. Zero without a grace period.
	youngAfter time.Time
	// stopped is set once the deadline has been seen; it never clears, so
	// no phase starts deleting after an earlier one stopped.
	stopped atomic.Bool

	mu sync.Mutex
	// marked holds what the mark phase keeps: true for digests live
	// through tags (or every revision retention did not orphan, without
	// DeleteUntagged), false for those kept only by the grace period.
	marked map[digest.Digest]bool
	sum    *Summary
	// repos holds every repository name, for the _layers pass.
	repos []string
	// plans holds the repositories that have dead revisions or tags to
	// delete.
	plans []*repoPlan
	// keptBlobs are unmarked blobs that must stay because a deletion that
	// should have come first failed.
	keptBlobs map[digest.Digest]struct{}
	// tagsDeleted counts the tags retention deleted, per repository.
	tagsDeleted map[string]int
}

func (c *collector) run(ctx context.Context) error {
	if err := c.mark(ctx); err != nil {
		if errors.Is(err, ErrDeadline) {
			return fmt.Errorf("%w while marking: nothing was deleted", ErrDeadline)
		}
		return fmt.Errorf("mark: %w (nothing was deleted)", err)
	}
	c.log.Info("Marked", "repositories", c.sum.Repositories, "manifests", c.sum.ManifestsMarked,
		"digests", len(c.marked), "manifestsKeptYoung", c.sum.ManifestsKeptYoung)
	if c.expired() {
		return fmt.Errorf("%w after marking: nothing was deleted", ErrDeadline)
	}
	// The walk of blobs/ only reads, and needs only the marks: it runs
	// while the tags and manifests are deleted (a walk is CPU, those
	// deletions mostly wait for the filesystem), and the blobs it finds
	// are judged again once those deletions are done. When the sweep ends
	// the run (the deadline, a failed tag), the walk
	// is cancelled rather than waited for: on a large object store it
	// could take minutes past the deadline.
	var walk blobWalk
	var wg sync.WaitGroup
	walkCtx, cancelWalk := context.WithCancel(ctx)
	defer cancelWalk()
	wg.Go(func() { walk = c.walkBlobs(walkCtx) })
	failedTags := c.sweepManifests(ctx)
	if c.expired() || failedTags > 0 {
		cancelWalk()
	}
	wg.Wait()
	if c.expired() {
		return c.stoppedError("tags and manifests")
	}
	if failedTags > 0 {
		return fmt.Errorf("%w: %d tags could not be deleted, so no blob was deleted (what those tags reach must stay)", ErrPartial, failedTags)
	}
	c.pruneReferrersIndexes(ctx)
	if err := c.sweepBlobs(ctx, walk); err != nil {
		return fmt.Errorf("sweep blobs: %w", err)
	}
	if c.expired() {
		return c.stoppedError("blobs")
	}
	c.sweepLayerLinks(ctx)
	if c.expired() {
		return c.stoppedError("_layers links")
	}
	return ctx.Err()
}

// expired reports whether the deadline has been reached; once it has, it
// stays reached.
func (c *collector) expired() bool {
	if c.stopped.Load() {
		return true
	}
	if c.opts.Deadline.IsZero() || c.opts.Now().Before(c.opts.Deadline) {
		return false
	}
	if !c.stopped.Swap(true) {
		c.log.Warn("Deadline reached; starting no more deletions", "deadline", c.opts.Deadline.UTC().Format(time.RFC3339))
	}
	return true
}

func (c *collector) stoppedError(phase string) error {
	return fmt.Errorf("%w while deleting %s at %s: the deletions counted were done, no other started; run garbage-collect again to finish",
		ErrDeadline, phase, c.opts.Deadline.UTC().Format(time.RFC3339))
}

// isYoung reports whether content modified at t is within the grace period.
func (c *collector) isYoung(t time.Time) bool {
	return !c.youngAfter.IsZero() && t.After(c.youngAfter)
}

// isMarked reports whether d is kept by the mark phase, live or young.
// Only called once marking is done.
func (c *collector) isMarked(d digest.Digest) bool {
	_, ok := c.marked[d]
	return ok
}

// isLive reports whether d is live through tags (not only young).
func (c *collector) isLive(d digest.Digest) bool { return c.marked[d] }

// fail records a failed deletion.
func (c *collector) fail(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sum.ErrorCount++
	if len(c.sum.Errors) < maxErrorMessages {
		c.sum.Errors = append(c.sum.Errors, err.Error())
	}
	c.log.Error("Deletion failed", "error", err)
}

// parallel runs fn for every item with at most n at a time.
func parallel[T any](ctx context.Context, n int, items []T, fn func(context.Context, T)) {
	ch := make(chan T)
	var wg sync.WaitGroup
	for range min(n, max(len(items), 1)) {
		wg.Go(func() {
			for it := range ch {
				fn(ctx, it)
			}
		})
	}
	for _, it := range items {
		if ctx.Err() != nil {
			break
		}
		ch <- it
	}
	close(ch)
	wg.Wait()
}

// errStopped is what deleteDir returns once the deadline is reached; the
// caller counts nothing and records no failure.
var errStopped = errors.New("not started: deadline reached")

// deleteDir deletes p; a path already gone is not an error (a re-run, or a
// dry run's view). Past the deadline it deletes nothing and returns
// errStopped, in a dry run too, so that a dry run reports what a real run
// under the same deadline would delete.
func (c *collector) deleteDir(ctx context.Context, p string) error {
	if c.expired() {
		return errStopped
	}
	return c.deleteNow(ctx, p)
}

// deleteNow is deleteDir without the deadline: for the deletions of a unit
// already started (sweepManifests).
func (c *collector) deleteNow(ctx context.Context, p string) error {
	if c.opts.DryRun {
		return nil
	}
	if err := c.drv.Delete(ctx, p); err != nil && !errors.Is(err, driver.ErrNotFound) {
		return err
	}
	return nil
}

// byRepository lists counts, most tags first, then by name.
func byRepository(counts map[string]int) []RepositoryTags {
	out := make([]RepositoryTags, 0, len(counts))
	for repo, n := range counts {
		out = append(out, RepositoryTags{Repository: repo, TagsDeleted: n})
	}
	slices.SortFunc(out, func(a, b RepositoryTags) int {
		return cmp.Or(cmp.Compare(b.TagsDeleted, a.TagsDeleted), strings.Compare(a.Repository, b.Repository))
	})
	return out
}
