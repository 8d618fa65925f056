// Package proxy checks registryd as a pull-through cache with real
// processes: an upstream registryd holding an image, a second registryd
// configured with proxy.remoteurl pointing at it, and go-containerregistry
// as the client. (registryd/proxy has the detailed tests: credentials,
// tokens, ttl, streaming, read-only.)
package proxy

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/berth-dev/berth/internal/testutil"
)

// contents reads an image's manifest (as "manifest"), config and layers
// (by digest).
func contents(t *testing.T, img v1.Image) map[string][]byte {
	t.Helper()
	out := testutil.ImageBlobs(t, img)
	m, err := img.RawManifest()
	if err != nil {
		t.Fatal(err)
	}
	out["manifest"] = m
	return out
}

// TestPullThroughCache pulls through a registryd pull-through cache an
// image only the upstream registryd has, byte for byte, then stops the
// upstream and pulls it again, by tag and by digest, from what the cache
// stored.
func TestPullThroughCache(t *testing.T) {
	bin := testutil.Registryd(t)
	upstream := testutil.StartRegistry(t, "upstream", bin, func(addr string) string {
		return testutil.FilesystemConfig(t.TempDir(), addr)
	})
	img, err := random.Image(64<<10, 3)
	if err != nil {
		t.Fatal(err)
	}
	up, err := name.ParseReference(upstream.Addr+"/team/app:v1", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(up, img); err != nil {
		t.Fatal(err)
	}
	want := contents(t, img)
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}

	root := t.TempDir()
	cache := testutil.StartRegistry(t, "pull-through cache", bin, func(addr string) string {
		return "version: 0.1\nlog: {level: info, accesslog: {disabled: true}}\n" +
			"storage: {filesystem: {rootdirectory: " + root + "}}\n" +
			"http: {addr: \"" + addr + "\"}\n" +
			"proxy: {remoteurl: \"http://" + upstream.Addr + "\", ttl: 24h}\n"
	})
	check := func(what, r string) {
		t.Helper()
		ref, err := name.ParseReference(cache.Addr+"/team/app"+r, name.Insecure)
		if err != nil {
			t.Fatal(err)
		}
		got, err := remote.Image(ref)
		if err != nil {
			t.Fatalf("%s: pull %s: %v\n%s", what, r, err, cache.Log())
		}
		for k, b := range contents(t, got) {
			if !bytes.Equal(b, want[k]) {
				t.Errorf("%s: %s %s differs from upstream's", what, r, k)
			}
		}
	}
	check("through the cache", ":v1")
	// A blob is committed to storage once its last byte has gone to the
	// client, which may have finished reading before: wait for it.
	for k := range want {
		if k == "manifest" {
			continue
		}
		alg, hex := k[:6], k[7:]
		testutil.EventuallyNoError(t, "the cache stores "+k, func() error {
			_, err := os.Stat(filepath.Join(root, "docker/registry/v2/blobs", alg, hex[:2], hex, "data"))
			return err
		})
	}

	upstream.Stop(t)
	check("upstream stopped", ":v1")
	check("upstream stopped", "@"+d.String())
}
