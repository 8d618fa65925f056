package gc_test

import (
	"encoding/json"
	"maps"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/berth-dev/berth/registryd/gc"
)

// TestCollectPrunesTheReferrersIndex builds the referrers index of a
// repository (by asking for referrers), then collects with
// --delete-untagged: the referrer of a swept subject is swept and its
// index entry goes with it, the referrer of a live subject keeps its
// entry and is still served; a dry run changes nothing in the index.
func TestCollectPrunesTheReferrersIndex(t *testing.T) {
	c, drv, root := newRegistryd(t)
	m := newModel(c, 7, 1, false)
	repo := m.repos[0]
	live := m.pushImage(repo, "live")
	kept := m.pushReferrerOf(repo, live, "")
	dead := m.pushImage(repo, "")
	swept := m.pushReferrerOf(repo, dead, "")
	referrers := func(subject digest.Digest) []digest.Digest {
		t.Helper()
		b, status := c.get("referrers", repo.name, subject.String())
		if status != http.StatusOK {
			t.Fatalf("referrers of %s: %d %s", subject, status, b)
		}
		var idx struct {
			Manifests []struct{ Digest digest.Digest }
		}
		if err := json.Unmarshal(b, &idx); err != nil {
			t.Fatal(err)
		}
		var out []digest.Digest
		for _, d := range idx.Manifests {
			out = append(out, d.Digest)
		}
		return out
	}
	if got := referrers(dead.digest); !slices.Equal(got, []digest.Digest{swept.digest}) {
		t.Fatalf("referrers of the untagged image before GC: %v", got)
	}
	// index is every file of the referrers index, by path.
	index := func() map[string]string {
		out := map[string]string{}
		for p, content := range files(t, root) {
			if strings.Contains(p, "/_berth/referrers/") {
				out[p] = content
			}
		}
		return out
	}
	entryOf := func(d digest.Digest) string { return "/" + d.Algorithm().String() + "/" + d.Encoded() }
	hasEntry := func(idx map[string]string, d digest.Digest) bool {
		for p := range idx {
			if strings.HasSuffix(p, entryOf(d)) {
				return true
			}
		}
		return false
	}
	before := index()
	if !hasEntry(before, swept.digest) || !hasEntry(before, kept.digest) {
		t.Fatalf("index before GC lacks an entry: %v", slices.Sorted(maps.Keys(before)))
	}

	if _, err := gc.Run(ctx, drv, gc.Options{DeleteUntagged: true, DryRun: true}); err != nil {
		t.Fatal(err)
	}
	if !maps.Equal(index(), before) {
		t.Fatal("a dry run changed the referrers index")
	}

	sum, err := gc.Run(ctx, drv, gc.Options{DeleteUntagged: true})
	if err != nil {
		t.Fatalf("Run: %v (%+v)", err, sum)
	}
	after := index()
	if hasEntry(after, swept.digest) {
		t.Error("the swept referrer's index entry survived")
	}
	if !hasEntry(after, kept.digest) {
		t.Error("the live referrer's index entry was removed")
	}
	for p, content := range after {
		if strings.HasSuffix(p, "/indexed") && (strings.Contains(content, swept.digest.String()) || strings.Contains(content, dead.digest.String())) {
			t.Errorf("indexed still lists swept manifests:\n%s", content)
		}
	}
	if got := referrers(live.digest); !slices.Equal(got, []digest.Digest{kept.digest}) {
		t.Errorf("referrers of the live image after GC: %v, want %v", got, kept.digest)
	}
}
