package server

import (
	"context"
	"log/slog"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/berth-dev/berth/registryd/configuration"
	"github.com/berth-dev/berth/registryd/storage"
	"github.com/berth-dev/berth/registryd/storage/cache"
)

// The blob descriptor cache (storage.cache.blobdescriptor; see
// registryd/storage's cache.go). inmemory holds blobdescriptorsize entries
// (10000 when unset, unbounded when 0) and is dropped on every switch from
// read-only to read-write (Server.OnWritable, run before writes are admitted again), since a garbage
// collection that ran meanwhile may have swept what it names. redis is
// shared with the other replicas and with `registryd garbage-collect`,
// which evicts what it sweeps; a redis that does not answer at start is
// logged and the server starts anyway (lookups then read storage, and
// blob deletions fail until redis answers, so that nothing stale is left
// behind).

// redisPingTimeout bounds the start-up check of redis.
const redisPingTimeout = 5 * time.Second

// newBlobDescriptorCache returns the configured cache (nil without one) and
// the background work that closes it when the server stops.
func newBlobDescriptorCache(cfg *configuration.Configuration, onWritable func(func()), log *slog.Logger) (storage.BlobDescriptorCache, func(context.Context), error) {
	switch cfg.Storage.Cache.Kind() {
	case configuration.CacheInMemory:
		size := cache.DefaultInMemorySize
		if n := cfg.Storage.Cache.BlobDescriptorSize; n != nil {
			size = *n
		}
		c := cache.NewInMemory(size)
		onWritable(func() {
			n := c.Len()
			c.Clear()
			log.Info("Dropped the in-memory blob descriptor cache on leaving read-only mode", "entries", n)
		})
		log.Info("Blob descriptor cache", "kind", configuration.CacheInMemory, "size", size)
		return c, nil, nil
	case configuration.CacheRedis:
		c, err := NewRedisCache(cfg.Redis, log)
		if err != nil {
			return nil, nil, err
		}
		ctx, cancel := context.WithTimeout(context.Background(), redisPingTimeout)
		defer cancel()
		if err := c.Ping(ctx); err != nil {
			log.Warn("Redis does not answer; blob lookups read storage until it does", "addrs", cfg.Redis.Addrs, "error", err)
		} else {
			log.Info("Blob descriptor cache", "kind", configuration.CacheRedis, "addrs", cfg.Redis.Addrs, "db", cfg.Redis.DB)
		}
		return c, func(ctx context.Context) {
			<-ctx.Done()
			_ = c.Close()
		}, nil
	}
	return nil, nil, nil
}

// NewRedisCache connects the redis blob descriptor cache the redis section
// describes (registryd garbage-collect uses it too).
func NewRedisCache(r *configuration.Redis, log *slog.Logger) (*cache.Redis, error) {
	opts, err := cache.RedisOptions(r)
	if err != nil {
		return nil, err
	}
	return cache.NewRedis(redis.NewUniversalClient(opts), log.With("component", "cache")), nil
}
