package cache

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/redis/go-redis/v9"

	"github.com/berth-dev/berth/registryd/configuration"
	"github.com/berth-dev/berth/registryd/storage"
)

// Redis keys. Values carry no expiry, as in Distribution: configure redis
// with an eviction policy (allkeys-lru), as the reference advises.
const (
	blobKeyPrefix = "berth:blob:" // + digest -> size in bytes
	linkKeyPrefix = "berth:link:" // + repository "@" digest -> target digest
)

func blobKey(d digest.Digest) string              { return blobKeyPrefix + d.String() }
func linkKey(name string, d digest.Digest) string { return linkKeyPrefix + name + "@" + d.String() }

// Redis is a blob descriptor cache in redis, shared by every replica that
// uses the same redis, and by `registryd garbage-collect`, which evicts
// what it sweeps.
type Redis struct {
	client redis.UniversalClient
	log    *slog.Logger
	// lastWarn is when a failure was last logged (unix nanoseconds): a
	// redis that is down fails every lookup, and one line per
	// warnInterval says so.
	lastWarn atomic.Int64
}

// warnInterval spaces the log lines about failures.
const warnInterval = 10 * time.Second

var _ storage.BlobDescriptorCache = (*Redis)(nil)

// NewRedis returns a cache over client. Failures are logged to log (and
// returned); the store treats them as misses.
func NewRedis(client redis.UniversalClient, log *slog.Logger) *Redis {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Redis{client: client, log: log}
}

// Ping checks that redis answers.
func (r *Redis) Ping(ctx context.Context) error { return r.client.Ping(ctx).Err() }

// Close closes the client's connections.
func (r *Redis) Close() error { return r.client.Close() }

func (r *Redis) failed(op string, err error) error {
	now := time.Now().UnixNano()
	if last := r.lastWarn.Load(); now-last >= int64(warnInterval) && r.lastWarn.CompareAndSwap(last, now) {
		r.log.Warn("Blob descriptor cache (redis) failed; lookups read storage meanwhile", "op", op, "error", err)
	}
	return err
}

func (r *Redis) Blob(ctx context.Context, d digest.Digest) (storage.Descriptor, bool, error) {
	v, err := r.client.Get(ctx, blobKey(d)).Result()
	if errors.Is(err, redis.Nil) {
		return storage.Descriptor{}, false, nil
	}
	if err != nil {
		return storage.Descriptor{}, false, r.failed("get blob", err)
	}
	size, err := strconv.ParseInt(v, 10, 64)
	if err != nil || size < 0 {
		return storage.Descriptor{}, false, r.failed("get blob", fmt.Errorf("%s holds %q, not a size", blobKey(d), v))
	}
	return storage.Descriptor{Digest: d, Size: size}, true, nil
}

func (r *Redis) SetBlob(ctx context.Context, desc storage.Descriptor) error {
	if err := r.client.Set(ctx, blobKey(desc.Digest), strconv.FormatInt(desc.Size, 10), 0).Err(); err != nil {
		return r.failed("set blob", err)
	}
	return nil
}

func (r *Redis) EvictBlob(ctx context.Context, d digest.Digest) error {
	if err := r.client.Del(ctx, blobKey(d)).Err(); err != nil {
		return r.failed("evict blob", err)
	}
	return nil
}

func (r *Redis) Link(ctx context.Context, name string, d digest.Digest) (digest.Digest, bool, error) {
	v, err := r.client.Get(ctx, linkKey(name, d)).Result()
	if errors.Is(err, redis.Nil) {
		return "", false, nil
	}
	if err != nil {
		return "", false, r.failed("get link", err)
	}
	target, err := digest.Parse(v)
	if err != nil {
		return "", false, r.failed("get link", fmt.Errorf("%s holds %q, not a digest", linkKey(name, d), v))
	}
	return target, true, nil
}

func (r *Redis) SetLink(ctx context.Context, name string, d, target digest.Digest) error {
	if err := r.client.Set(ctx, linkKey(name, d), target.String(), 0).Err(); err != nil {
		return r.failed("set link", err)
	}
	return nil
}

func (r *Redis) EvictLink(ctx context.Context, name string, d digest.Digest) error {
	if err := r.client.Del(ctx, linkKey(name, d)).Err(); err != nil {
		return r.failed("evict link", err)
	}
	return nil
}

// RedisOptions maps the redis section to go-redis's UniversalOptions, key
// for key (the section's keys are UniversalOptions' field names, lower
// case), and loads the TLS files: TLS is on when redis.tls.enabled is true
// or a certificate or CA is configured; certificate and key are the client
// certificate, clientcas the CAs that verify the server (the system's when
// empty). go-redis picks the client kind from the options: a sentinel
// failover client when mastername is set, a cluster client for more than
// one address, a single-node client otherwise.
func RedisOptions(c *configuration.Redis) (*redis.UniversalOptions, error) {
	o := &redis.UniversalOptions{
		Addrs:            c.Addrs,
		ClientName:       c.ClientName,
		Protocol:         c.Protocol,
		Username:         c.Username,
		Password:         c.Password,
		SentinelUsername: c.SentinelUsername,
		SentinelPassword: c.SentinelPassword,
		MasterName:       c.MasterName,
		DB:               c.DB,
		MaxRetries:       c.MaxRetries,
		MinRetryBackoff:  c.MinRetryBackoff,
		MaxRetryBackoff:  c.MaxRetryBackoff,
		DialTimeout:      c.DialTimeout,
		ReadTimeout:      c.ReadTimeout,
		WriteTimeout:     c.WriteTimeout,
		PoolFIFO:         c.PoolFIFO,
		PoolSize:         c.PoolSize,
		PoolTimeout:      c.PoolTimeout,
		MinIdleConns:     c.MinIdleConns,
		MaxIdleConns:     c.MaxIdleConns,
		MaxActiveConns:   c.MaxActiveConns,
		ConnMaxIdleTime:  c.ConnMaxIdleTime,
		ConnMaxLifetime:  c.ConnMaxLifetime,
		MaxRedirects:     c.MaxRedirects,
		ReadOnly:         c.ReadOnly,
		RouteByLatency:   c.RouteByLatency,
		RouteRandomly:    c.RouteRandomly,
	}
	t := c.TLS
	if !t.Enabled && t.Certificate == "" && len(t.ClientCAs) == 0 {
		return o, nil
	}
	conf := &tls.Config{MinVersion: tls.VersionTLS12}
	if t.Certificate != "" {
		pair, err := tls.LoadX509KeyPair(t.Certificate, t.Key)
		if err != nil {
			return nil, fmt.Errorf("redis.tls.certificate: %w", err)
		}
		conf.Certificates = []tls.Certificate{pair}
	}
	if len(t.ClientCAs) > 0 {
		pool := x509.NewCertPool()
		for i, p := range t.ClientCAs {
			pem, err := os.ReadFile(p)
			if err != nil {
				return nil, fmt.Errorf("redis.tls.clientcas[%d]: %w", i, err)
			}
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("redis.tls.clientcas[%d]: no PEM certificates in %s", i, p)
			}
		}
		conf.RootCAs = pool
	}
	o.TLSConfig = conf
	return o, nil
}
