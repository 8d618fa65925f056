package cache_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/redis/go-redis/v9"

	"github.com/berth-dev/berth/internal/testutil"
	"github.com/berth-dev/berth/registryd/configuration"
	"github.com/berth-dev/berth/registryd/storage"
	"github.com/berth-dev/berth/registryd/storage/cache"
)

var ctx = context.Background()

// shared is the package's plain redis-server (TestMain starts and stops it).
var shared *testutil.RedisServer

func TestMain(m *testing.M) {
	r, err := testutil.StartRedis(testutil.RedisOptions{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	shared = r
	code := m.Run()
	if err := r.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, err)
	}
	os.Exit(code)
}

// redisCache connects a cache to redis as the redis section c says.
func redisCache(t *testing.T, c *configuration.Redis) *cache.Redis {
	t.Helper()
	opts, err := cache.RedisOptions(c)
	if err != nil {
		t.Fatal(err)
	}
	client := redis.NewUniversalClient(opts)
	t.Cleanup(func() { client.Close() })
	return cache.NewRedis(client, nil)
}

// TestCacheContract runs the same steps on both kinds of cache.
func TestCacheContract(t *testing.T) {
	kinds := map[string]func(t *testing.T) storage.BlobDescriptorCache{
		"inmemory": func(*testing.T) storage.BlobDescriptorCache { return cache.NewInMemory(100) },
		"redis": func(t *testing.T) storage.BlobDescriptorCache {
			// A database of its own, so parallel runs do not share keys.
			return redisCache(t, &configuration.Redis{Addrs: []string{shared.Addr}, DB: 1})
		},
	}
	for name, newCache := range kinds {
		t.Run(name, func(t *testing.T) {
			c := newCache(t)
			a, b := digest.FromString("a "+t.Name()), digest.FromString("b "+t.Name())
			if _, ok, err := c.Blob(ctx, a); ok || err != nil {
				t.Fatalf("empty cache: Blob = %v, %v", ok, err)
			}
			if err := c.SetBlob(ctx, storage.Descriptor{Digest: a, Size: 1 << 40}); err != nil {
				t.Fatal(err)
			}
			if desc, ok, err := c.Blob(ctx, a); !ok || err != nil || desc != (storage.Descriptor{Digest: a, Size: 1 << 40}) {
				t.Fatalf("Blob = %+v, %v, %v", desc, ok, err)
			}
			if err := c.SetLink(ctx, "lib/app", b, a); err != nil {
				t.Fatal(err)
			}
			if target, ok, err := c.Link(ctx, "lib/app", b); !ok || err != nil || target != a {
				t.Fatalf("Link = %s, %v, %v", target, ok, err)
			}
			if _, ok, _ := c.Link(ctx, "lib/other", b); ok {
				t.Fatal("a link is per repository")
			}
			if err := c.EvictLink(ctx, "lib/app", b); err != nil {
				t.Fatal(err)
			}
			if _, ok, _ := c.Link(ctx, "lib/app", b); ok {
				t.Fatal("link still cached after EvictLink")
			}
			if err := c.EvictBlob(ctx, a); err != nil {
				t.Fatal(err)
			}
			if _, ok, _ := c.Blob(ctx, a); ok {
				t.Fatal("blob still cached after EvictBlob")
			}
		})
	}
}

// TestInMemoryBound checks blobdescriptorsize: the least recently used
// entry goes first, and 0 means no bound.
func TestInMemoryBound(t *testing.T) {
	c := cache.NewInMemory(2)
	d := func(s string) digest.Digest { return digest.FromString(s) }
	for _, s := range []string{"a", "b"} {
		_ = c.SetBlob(ctx, storage.Descriptor{Digest: d(s), Size: 1})
	}
	_, _, _ = c.Blob(ctx, d("a")) // a is now more recent than b
	_ = c.SetLink(ctx, "app", d("c"), d("c"))
	if _, ok, _ := c.Blob(ctx, d("b")); ok {
		t.Error("b, the least recently used, was kept")
	}
	if _, ok, _ := c.Blob(ctx, d("a")); !ok {
		t.Error("a was evicted")
	}
	if _, ok, _ := c.Link(ctx, "app", d("c")); !ok {
		t.Error("the newest entry was evicted")
	}

	unbounded := cache.NewInMemory(0)
	const n = 2 * cache.DefaultInMemorySize
	for i := range n {
		_ = unbounded.SetBlob(ctx, storage.Descriptor{Digest: d(fmt.Sprint(i)), Size: int64(i)})
	}
	if unbounded.Len() != n {
		t.Errorf("size 0 holds %d of %d entries", unbounded.Len(), n)
	}
	unbounded.Clear()
	if unbounded.Len() != 0 {
		t.Errorf("Clear left %d entries", unbounded.Len())
	}
}

// TestRedisPasswordAndDB checks redis.password and redis.db against a
// redis-server that requires a password.
func TestRedisPasswordAndDB(t *testing.T) {
	r := testutil.Redis(t, testutil.RedisOptions{Password: "s3cret"})
	d := digest.FromString("x")

	wrong := redisCache(t, &configuration.Redis{Addrs: []string{r.Addr}, Password: "wrong"})
	if err := wrong.SetBlob(ctx, storage.Descriptor{Digest: d, Size: 3}); err == nil {
		t.Fatal("a wrong password was accepted")
	}

	c := redisCache(t, &configuration.Redis{Addrs: []string{r.Addr}, Password: "s3cret", DB: 5})
	if err := c.SetBlob(ctx, storage.Descriptor{Digest: d, Size: 3}); err != nil {
		t.Fatal(err)
	}
	for db, want := range map[int]int64{5: 1, 0: 0} {
		raw := redis.NewClient(&redis.Options{Addr: r.Addr, Password: "s3cret", DB: db})
		n, err := raw.Exists(ctx, "berth:blob:"+d.String()).Result()
		raw.Close()
		if err != nil || n != want {
			t.Errorf("db %d holds the key %d times (%v), want %d", db, n, err, want)
		}
	}
}

// TestRedisTLS checks redis.tls: a redis-server that serves TLS only and
// requires client certificates signed by its CA.
func TestRedisTLS(t *testing.T) {
	dir := t.TempDir()
	ca := testutil.NewCA(t, "redis test CA")
	caFile := ca.WriteCert(t, filepath.Join(dir, "ca.pem"))
	serverCert, serverKey := ca.IssueFiles(t, dir, "server")
	clientCert, clientKey := ca.IssueFiles(t, dir, "client")
	other := testutil.NewCA(t, "another CA")
	otherFile := other.WriteCert(t, filepath.Join(dir, "other.pem"))
	r := testutil.Redis(t, testutil.RedisOptions{TLSCert: serverCert, TLSKey: serverKey, TLSClientCA: caFile})

	d := digest.FromString("tls")
	tests := map[string]struct {
		tls     configuration.RedisTLS
		wantErr string
	}{
		"client certificate and CA":          {tls: configuration.RedisTLS{Certificate: clientCert, Key: clientKey, ClientCAs: []string{caFile}}},
		"enabled with certificate and CA":    {tls: configuration.RedisTLS{Enabled: true, Certificate: clientCert, Key: clientKey, ClientCAs: []string{caFile}}},
		"no client certificate":              {tls: configuration.RedisTLS{Enabled: true, ClientCAs: []string{caFile}}, wantErr: "certificate"},
		"server not signed by the CA listed": {tls: configuration.RedisTLS{Certificate: clientCert, Key: clientKey, ClientCAs: []string{otherFile}}, wantErr: "certificate"},
		"no TLS at all":                      {wantErr: ""}, // any error: the server speaks TLS only
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			c := redisCache(t, &configuration.Redis{Addrs: []string{r.TLSAddr}, TLS: tc.tls, DialTimeout: 2 * time.Second, ReadTimeout: 2 * time.Second, MaxRetries: -1})
			err := c.SetBlob(ctx, storage.Descriptor{Digest: d, Size: 1})
			ok := tc.tls.Certificate != "" && tc.wantErr == "" && !strings.Contains(name, "no TLS")
			if ok {
				if err != nil {
					t.Fatalf("SetBlob over TLS: %v", err)
				}
				if _, hit, err := c.Blob(ctx, d); !hit || err != nil {
					t.Fatalf("Blob over TLS = %v, %v", hit, err)
				}
				return
			}
			if err == nil {
				t.Fatal("SetBlob succeeded")
			}
			if !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("error %q does not mention %q", err, tc.wantErr)
			}
		})
	}

	if _, err := cache.RedisOptions(&configuration.Redis{Addrs: []string{r.TLSAddr}, TLS: configuration.RedisTLS{ClientCAs: []string{filepath.Join(dir, "missing.pem")}}}); err == nil ||
		!strings.Contains(err.Error(), "redis.tls.clientcas[0]") {
		t.Errorf("a missing CA file: %v", err)
	}
}

// TestRedisOptionsMapsEveryKey sets every key of the redis section and
// checks that it reaches the go-redis option of the same name, so no key
// is accepted and ignored; and that go-redis picks the client the keys
// describe.
func TestRedisOptionsMapsEveryKey(t *testing.T) {
	var c configuration.Redis
	cv := reflect.ValueOf(&c).Elem()
	for i := range cv.NumField() {
		f := cv.Field(i)
		switch f.Kind() {
		case reflect.String:
			f.SetString("v" + fmt.Sprint(i))
		case reflect.Bool:
			f.SetBool(true)
		case reflect.Int, reflect.Int64:
			f.SetInt(int64(i + 1))
		case reflect.Slice:
			f.Set(reflect.ValueOf([]string{"a:1", "b:2"}))
		}
	}
	c.TLS = configuration.RedisTLS{}
	opts, err := cache.RedisOptions(&c)
	if err != nil {
		t.Fatal(err)
	}
	ov := reflect.ValueOf(opts).Elem()
	for i := range cv.NumField() {
		name := cv.Type().Field(i).Name
		if name == "TLS" {
			continue
		}
		of := ov.FieldByName(name)
		if !of.IsValid() {
			t.Errorf("redis.%s has no go-redis option %s", strings.ToLower(name), name)
			continue
		}
		if !reflect.DeepEqual(of.Interface(), cv.Field(i).Interface()) {
			t.Errorf("redis.%s = %v reaches go-redis as %v", strings.ToLower(name), cv.Field(i), of)
		}
	}
	if opts.TLSConfig != nil {
		t.Error("TLS is on without redis.tls")
	}

	kinds := map[string]struct {
		c    configuration.Redis
		want string // the client's kind
	}{
		"one address":          {configuration.Redis{Addrs: []string{"127.0.0.1:1"}}, "single"},
		"several addresses":    {configuration.Redis{Addrs: []string{"127.0.0.1:1", "127.0.0.1:2"}}, "cluster"},
		"mastername: sentinel": {configuration.Redis{Addrs: []string{"127.0.0.1:1"}, MasterName: "main"}, "failover"},
	}
	for name, k := range kinds {
		o, err := cache.RedisOptions(&k.c)
		if err != nil {
			t.Fatal(err)
		}
		var got string
		switch client := redis.NewUniversalClient(o).(type) {
		case *redis.ClusterClient:
			got = "cluster"
			client.Close()
		case *redis.Client:
			got = "single"
			if client.Options().Addr == "FailoverClient" {
				got = "failover"
			}
			client.Close()
		}
		if got != k.want {
			t.Errorf("%s: a %s client, want %s", name, got, k.want)
		}
	}
}
