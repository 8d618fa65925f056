package gc

import (
	"context"
	"fmt"
)

// pruneReferrersIndexes drops, in every repository that has a referrers
// index (storage's _berth/referrers, which registryd keeps and
// Distribution ignores), the entries of manifests that are no longer
// revisions: those this run swept and those deleted through the API
// since. A repository without an index is not touched, so a store
// Distribution wrote stays byte for byte what Distribution's collector
// would leave. A dry run prunes nothing.
func (c *collector) pruneReferrersIndexes(ctx context.Context) {
	if c.opts.DryRun {
		return
	}
	parallel(ctx, c.opts.Workers, c.repos, func(ctx context.Context, name string) {
		n, err := c.store.PruneReferrersIndex(ctx, name)
		if err != nil {
			c.fail(fmt.Errorf("referrers index of %s: %w", name, err))
			return
		}
		if n > 0 {
			c.log.Debug("Pruned referrers index", "repository", name, "entries", n)
		}
	})
}
