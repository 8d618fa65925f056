package storage

import (
	"context"
	"encoding/json"
	"fmt"
	"path"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-dev/berth/registryd/storage/driver"
	"github.com/berth-dev/berth/registryd/storage/driver/inmemory"
)

// countingDriver counts the reads of manifest content (blobs/) and every
// write, over a real driver.
type countingDriver struct {
	driver.StorageDriver
	mu          sync.Mutex
	blobReads   int
	writes      []string
	indexWrites int
}

func (c *countingDriver) GetContent(ctx context.Context, p string) ([]byte, error) {
	c.mu.Lock()
	if strings.Contains(p, "/blobs/") {
		c.blobReads++
	}
	c.mu.Unlock()
	return c.StorageDriver.GetContent(ctx, p)
}

func (c *countingDriver) PutContent(ctx context.Context, p string, b []byte) error {
	c.mu.Lock()
	c.writes = append(c.writes, p)
	if strings.Contains(p, "/_berth/") {
		c.indexWrites++
	}
	c.mu.Unlock()
	return c.StorageDriver.PutContent(ctx, p, b)
}

// take returns and resets the counts.
func (c *countingDriver) take() (blobReads, indexWrites int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	blobReads, indexWrites = c.blobReads, c.indexWrites
	c.blobReads, c.indexWrites, c.writes = 0, 0, nil
	return blobReads, indexWrites
}

// manifestWith is an OCI image manifest with an optional subject, made
// unique by seed.
func manifestWith(t *testing.T, seed string, subject digest.Digest, artifactType string) []byte {
	t.Helper()
	m := map[string]any{
		"schemaVersion": 2,
		"mediaType":     v1.MediaTypeImageManifest,
		"config":        v1.Descriptor{MediaType: "application/vnd.oci.image.config.v1+json", Digest: digest.FromString(seed), Size: 1},
		"layers":        []v1.Descriptor{},
		"annotations":   map[string]string{"seed": seed},
	}
	if subject != "" {
		m["subject"] = v1.Descriptor{MediaType: v1.MediaTypeImageManifest, Digest: subject, Size: 1}
		m["artifactType"] = artifactType
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func put(t *testing.T, s *Store, name string, content []byte) digest.Digest {
	t.Helper()
	d := digest.FromBytes(content)
	if err := s.PutManifest(context.Background(), name, d, content); err != nil {
		t.Fatal(err)
	}
	return d
}

func referrerDigests(t *testing.T, s *Store, name string, subject digest.Digest, artifactType string) []digest.Digest {
	t.Helper()
	descs, err := s.Referrers(context.Background(), name, subject, artifactType)
	if err != nil {
		t.Fatal(err)
	}
	out := []digest.Digest{}
	for _, d := range descs {
		out = append(out, d.Digest)
	}
	return out
}

func sorted(ds ...digest.Digest) []digest.Digest {
	out := slices.Clone(ds)
	slices.Sort(out)
	return out
}

func TestReferrersIndex(t *testing.T) {
	ctx := context.Background()
	const repo = "lib/app"
	drv := &countingDriver{StorageDriver: inmemory.New()}
	readOnly := false
	// Without the manifest cache, so that every manifest read is a
	// storage read the driver counts.
	s := New(drv, WithManifestCache(0), WithWriteAdmission(func() (func(), bool) { return func() {}, !readOnly }))

	subject := put(t, s, repo, manifestWith(t, "subject", "", ""))
	sbom := put(t, s, repo, manifestWith(t, "sbom", subject, "application/sbom"))
	sig := put(t, s, repo, manifestWith(t, "sig", subject, "application/sig"))
	other := put(t, s, repo, manifestWith(t, "other-subject", digest.FromString("elsewhere"), "application/sbom"))
	for i := range 200 {
		put(t, s, repo, manifestWith(t, fmt.Sprint("image", i), "", ""))
	}
	drv.take()

	type step struct {
		name         string
		act          func(t *testing.T)
		artifactType string
		want         func() []digest.Digest
		blobReads    int // manifests read to answer
		indexWrites  int // -1: any
	}
	var again, foreign digest.Digest
	steps := []step{
		{name: "first request builds the index from every revision",
			want: func() []digest.Digest { return sorted(sbom, sig) }, blobReads: 204, indexWrites: 4}, // 3 entries and indexed
		{name: "then answers without reading any manifest",
			want: func() []digest.Digest { return sorted(sbom, sig) }, blobReads: 0, indexWrites: 0},
		{name: "artifactType filter", artifactType: "application/sig",
			want: func() []digest.Digest { return []digest.Digest{sig} }, blobReads: 0, indexWrites: 0},
		{name: "a pushed referrer is read, alone",
			act: func(t *testing.T) {
				again = put(t, s, repo, manifestWith(t, "again", subject, "application/sbom"))
				drv.take()
			},
			want: func() []digest.Digest { return sorted(sbom, sig, again) }, blobReads: 1, indexWrites: 2},
		{name: "a deleted referrer is gone at once",
			act: func(t *testing.T) {
				if _, err := s.DeleteManifest(ctx, repo, sig); err != nil {
					t.Fatal(err)
				}
				drv.take()
			},
			want: func() []digest.Digest { return sorted(sbom, again) }, blobReads: 0, indexWrites: 1}, // indexed shrinks
		{name: "a referrer written by another registry (no index update) is found",
			act: func(t *testing.T) {
				content := manifestWith(t, "foreign", subject, "application/sbom")
				foreign = digest.FromBytes(content)
				if err := drv.StorageDriver.PutContent(ctx, BlobDataPath(foreign), content); err != nil {
					t.Fatal(err)
				}
				if err := drv.StorageDriver.PutContent(ctx, RevisionLinkPath(repo, foreign), []byte(foreign)); err != nil {
					t.Fatal(err)
				}
				drv.take()
			},
			want: func() []digest.Digest { return sorted(sbom, again, foreign) }, blobReads: 1, indexWrites: 2},
		{name: "while read-only the answer is computed, nothing written",
			act: func(t *testing.T) {
				readOnly = true
				if err := s.driver.Delete(ctx, referrersIndexedPath(repo)); err != nil {
					t.Fatal(err)
				}
				drv.take()
			},
			want: func() []digest.Digest { return sorted(sbom, again, foreign) }, blobReads: 205, indexWrites: 0},
		{name: "writable again, the index is rebuilt",
			act:  func(t *testing.T) { readOnly = false; drv.take() },
			want: func() []digest.Digest { return sorted(sbom, again, foreign) }, blobReads: 205, indexWrites: -1},
		{name: "a corrupt indexed file is rebuilt",
			act: func(t *testing.T) {
				if err := s.driver.PutContent(ctx, referrersIndexedPath(repo), []byte("not a digest\n")); err != nil {
					t.Fatal(err)
				}
				drv.take()
			},
			want: func() []digest.Digest { return sorted(sbom, again, foreign) }, blobReads: 205, indexWrites: -1},
	}
	for _, st := range steps {
		if st.act != nil {
			st.act(t)
		}
		got := referrerDigests(t, s, repo, subject, st.artifactType)
		if want := st.want(); !slices.Equal(got, want) {
			t.Fatalf("%s: referrers %v, want %v", st.name, got, want)
		}
		reads, writes := drv.take()
		if reads != st.blobReads || (st.indexWrites >= 0 && writes != st.indexWrites) {
			t.Errorf("%s: %d manifest reads and %d index writes, want %d and %d", st.name, reads, writes, st.blobReads, st.indexWrites)
		}
	}
	if got := referrerDigests(t, s, repo, digest.FromString("elsewhere"), ""); !slices.Equal(got, []digest.Digest{other}) {
		t.Errorf("referrers of another subject: %v", got)
	}
	if got := referrerDigests(t, s, "no/such/repo", subject, ""); len(got) != 0 {
		t.Errorf("referrers in a repository that does not exist: %v", got)
	}
}

func TestPruneReferrersIndex(t *testing.T) {
	ctx := context.Background()
	const repo = "lib/app"
	drv := inmemory.New()
	s := New(drv)

	// Without an index, pruning writes nothing.
	subject := put(t, s, repo, manifestWith(t, "subject", "", ""))
	content := manifestWith(t, "sbom", subject, "application/sbom")
	sbom := put(t, s, repo, content)
	if n, err := s.PruneReferrersIndex(ctx, repo); err != nil || n != 0 {
		t.Fatalf("prune without an index: %d, %v", n, err)
	}
	if _, err := drv.Stat(ctx, referrersIndexRoot(repo)); err == nil {
		t.Fatal("pruning created an index")
	}

	// With one, the entries of manifests gone are removed, and those
	// still there kept.
	sig := put(t, s, repo, manifestWith(t, "sig", subject, "application/sig"))
	if got := referrerDigests(t, s, repo, subject, ""); !slices.Equal(got, sorted(sbom, sig)) {
		t.Fatalf("referrers %v", got)
	}
	if err := drv.Delete(ctx, path.Dir(RevisionLinkPath(repo, sbom))); err != nil { // as a sweep does
		t.Fatal(err)
	}
	if n, err := s.PruneReferrersIndex(ctx, repo); err != nil || n != 1 {
		t.Fatalf("prune: %d, %v; want 1 entry removed", n, err)
	}
	if _, err := drv.Stat(ctx, referrerEntryPath(repo, subject, sbom)); err == nil {
		t.Error("the swept referrer's entry is still there")
	}
	if _, err := drv.Stat(ctx, referrerEntryPath(repo, subject, sig)); err != nil {
		t.Errorf("the live referrer's entry: %v", err)
	}
	indexed, err := s.readIndexed(ctx, repo)
	if err != nil || slices.Contains(indexed, sbom) || !slices.Contains(indexed, sig) {
		t.Errorf("indexed after prune: %v, %v", indexed, err)
	}

	// Pushed again, the swept referrer is read again.
	put(t, s, repo, content)
	if got := referrerDigests(t, s, repo, subject, ""); !slices.Equal(got, sorted(sbom, sig)) {
		t.Errorf("after pushing it again: %v", got)
	}

	// A subject left without referrers loses its directory.
	for _, d := range []digest.Digest{sbom, sig} {
		if err := drv.Delete(ctx, path.Dir(RevisionLinkPath(repo, d))); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := s.PruneReferrersIndex(ctx, repo); err != nil || n != 2 {
		t.Fatalf("prune: %d, %v; want 2", n, err)
	}
	if _, err := drv.Stat(ctx, referrersSubjectPath(repo, subject)); err == nil {
		t.Error("the subject's directory is still there")
	}
}
