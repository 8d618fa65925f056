// Package cache checks registryd's blob descriptor cache against the
// Distribution registry's most reported garbage collection bug (its issues
// 1803, 2094, 2945, 3743, 4269, 4569): after an image is deleted and
// garbage-collected, pushing it again said "layer already exists" because
// the cache still named the swept blobs, and the image then failed to pull.
//
// Real processes only: registryd serve (the binary built from this tree)
// on loopback with filesystem storage, registryd garbage-collect run as
// the operator's Job runs it, a redis-server (Debian's, started once for
// the package) for the redis cache, and go-containerregistry as the client.
package cache

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/opencontainers/go-digest"
	"github.com/redis/go-redis/v9"

	"github.com/berth-dev/berth/internal/testutil"
)

// redisServer is the package's redis-server.
var redisServer *testutil.RedisServer

func TestMain(m *testing.M) {
	r, err := testutil.StartRedis(testutil.RedisOptions{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	redisServer = r
	code := m.Run()
	if err := r.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, err)
	}
	os.Exit(code)
}

// config is a config.yml for filesystem storage under root with the given
// cache section and read-only mode.
func config(root, addr, cacheSection string, readOnly bool) string {
	return fmt.Sprintf(`version: 0.1
log:
  level: info
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: %s
  delete:
    enabled: true
  maintenance:
    readonly:
      enabled: %v
%shttp:
  addr: %s
`, root, readOnly, cacheSection, addr)
}

// writeAtomically replaces path's content in one rename, as a Kubernetes
// ConfigMap update does, so the watcher never reads a half-written file.
func writeAtomically(t *testing.T, path, content string) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// waitReadOnly polls the registry until the effective read-only state its
// Berth-Read-Only response header reports is want (at most 15s). (The
// status endpoint is on the debug server, which this registry does not
// run.)
func waitReadOnly(t *testing.T, reg *testutil.Registry, want bool) {
	t.Helper()
	err := testutil.Poll(func() error {
		resp, err := http.Get(reg.URL("/v2/"))
		if err != nil {
			return err
		}
		resp.Body.Close()
		if got := resp.Header.Get("Berth-Read-Only"); got != strconv.FormatBool(want) {
			return fmt.Errorf("Berth-Read-Only: %q", got)
		}
		return nil
	}, testutil.Every(20*time.Millisecond))
	if err != nil {
		t.Fatalf("registry did not become readOnly=%v: %v\n%s", want, err, reg.Log())
	}
}

// uploadCounter counts the blob uploads a client completes (the PUT that
// commits an upload session).
type uploadCounter struct {
	mu      sync.Mutex
	commits map[string]bool // digest -> committed
}

func (u *uploadCounter) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := http.DefaultTransport.RoundTrip(r)
	if err == nil && r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/blobs/uploads/") && resp.StatusCode == http.StatusCreated {
		u.mu.Lock()
		u.commits[r.URL.Query().Get("digest")] = true
		u.mu.Unlock()
	}
	return resp, err
}

// pull fetches ref and every blob of it, and returns the manifest bytes
// and the blobs by digest.
func pull(ref name.Reference) ([]byte, map[string][]byte, error) {
	img, err := remote.Image(ref)
	if err != nil {
		return nil, nil, err
	}
	m, err := img.RawManifest()
	if err != nil {
		return nil, nil, err
	}
	blobs, err := testutil.ReadImageBlobs(img)
	if err != nil {
		return nil, nil, err
	}
	return m, blobs, nil
}

// TestRepushAfterGarbageCollection is the stale-cache test, for both kinds
// of cache: push an image, pull it (the cache now names its blobs), delete
// it, garbage-collect in read-only mode, leave read-only mode, push the
// same image again: every blob is really uploaded and stored, and the
// image pulls byte for byte.
func TestRepushAfterGarbageCollection(t *testing.T) {
	kinds := map[string]string{
		"inmemory": "  cache:\n    blobdescriptor: inmemory\n    blobdescriptorsize: 100\n",
		"redis":    "  cache:\n    blobdescriptor: redis\n",
	}
	bin := testutil.Registryd(t)
	for kind, cacheSection := range kinds {
		t.Run(kind, func(t *testing.T) {
			root := t.TempDir()
			section := cacheSection
			redisSection := ""
			if kind == "redis" {
				// A database of its own, empty.
				redisSection = fmt.Sprintf("redis:\n  addrs: [%s]\n  db: 2\n", redisServer.Addr)
				flushDB(t, redisServer.Addr, 2)
			}
			var addr string
			reg := testutil.StartRegistry(t, "registryd", bin, func(a string) string {
				addr = a
				return config(root, a, section, false) + redisSection
			})
			setReadOnly := func(on bool) {
				writeAtomically(t, reg.ConfigPath, config(root, addr, section, on)+redisSection)
				waitReadOnly(t, reg, on)
			}

			img, err := random.Image(2048, 3)
			if err != nil {
				t.Fatal(err)
			}
			want := testutil.ImageBlobs(t, img)
			wantManifest, err := img.RawManifest()
			if err != nil {
				t.Fatal(err)
			}
			ref, err := name.ParseReference(reg.Addr+"/lib/app:v1", name.Insecure)
			if err != nil {
				t.Fatal(err)
			}
			if err := remote.Write(ref, img); err != nil {
				t.Fatal(err)
			}
			// Pull: HEADs and GETs fill the cache.
			if _, _, err := pull(ref); err != nil {
				t.Fatal(err)
			}
			manifestDigest, err := img.Digest()
			if err != nil {
				t.Fatal(err)
			}
			if err := remote.Delete(ref.Context().Digest(manifestDigest.String())); err != nil {
				t.Fatal(err)
			}

			setReadOnly(true)
			// Make everything older than any grace period the collector
			// may apply, so this run sweeps the image.
			backdate(t, root, 48*time.Hour)
			var out, stderr bytes.Buffer
			gc := exec.Command(bin, "garbage-collect", "--json", reg.ConfigPath)
			gc.Stdout, gc.Stderr = &out, &stderr
			if err := gc.Run(); err != nil {
				t.Fatalf("garbage-collect: %v\n%s\n%s", err, out.String(), stderr.String())
			}
			var sum struct {
				BlobsDeleted int `json:"blobsDeleted"`
			}
			if err := json.Unmarshal(out.Bytes(), &sum); err != nil {
				t.Fatalf("summary %q: %v", out.String(), err)
			}
			if sum.BlobsDeleted < len(want) {
				t.Fatalf("garbage-collect deleted %d blobs, want the image's %d and its manifest\n%s", sum.BlobsDeleted, len(want), stderr.String())
			}
			for d := range want {
				if _, err := os.Stat(blobData(root, d)); !os.IsNotExist(err) {
					t.Fatalf("blob %s survived the collection: %v", d, err)
				}
			}
			setReadOnly(false)

			// Push the same image again: the registry must ask for every blob.
			counter := &uploadCounter{commits: map[string]bool{}}
			if err := remote.Write(ref, img, remote.WithTransport(counter)); err != nil {
				t.Fatal(err)
			}
			for d := range want {
				if !counter.commits[d] {
					t.Errorf("blob %s was not uploaded again: the registry said it already had it", d)
				}
				if _, err := os.Stat(blobData(root, d)); err != nil {
					t.Errorf("blob %s is not stored after the push: %v", d, err)
				}
			}
			gotManifest, got, err := pull(ref)
			if err != nil {
				t.Fatalf("pull after the push: %v", err)
			}
			if !bytes.Equal(gotManifest, wantManifest) {
				t.Error("the manifest pulled differs from the one pushed")
			}
			for d, b := range want {
				if !bytes.Equal(got[d], b) {
					t.Errorf("blob %s pulled differs from the one pushed", d)
				}
			}
		})
	}
}

// blobData is where the filesystem driver stores blob d's content.
func blobData(root, d string) string {
	dg := digest.Digest(d)
	return filepath.Join(root, "docker/registry/v2/blobs", dg.Algorithm().String(), dg.Encoded()[:2], dg.Encoded(), "data")
}

// backdate sets the modification time of everything under root to age ago.
func backdate(t *testing.T, root string, age time.Duration) {
	t.Helper()
	then := time.Now().Add(-age)
	err := filepath.WalkDir(root, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Chtimes(p, then, then)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// flushDB empties database db of the redis at addr.
func flushDB(t *testing.T, addr string, db int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c := redis.NewClient(&redis.Options{Addr: addr, DB: db})
	defer c.Close()
	if err := c.FlushDB(ctx).Err(); err != nil {
		t.Fatal(err)
	}
}
