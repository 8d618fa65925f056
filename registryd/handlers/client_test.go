package handlers

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/berth-dev/berth/registryd/storage/driver/inmemory"
)

// liveRegistry serves a handler over an inmemory driver on loopback and
// records the requests it saw.
type liveRegistry struct {
	host string
	mu   sync.Mutex
	seen []string // "METHOD path?query"
}

func newLiveRegistry(t *testing.T, opts ...Option) *liveRegistry {
	t.Helper()
	lr := &liveRegistry{}
	h := New(inmemory.New(), opts...)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		lr.mu.Lock()
		lr.seen = append(lr.seen, r.Method+" "+r.URL.RequestURI())
		lr.mu.Unlock()
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	u, err := url.Parse(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	lr.host = u.Host
	return lr
}

func (lr *liveRegistry) saw(substr string) bool {
	lr.mu.Lock()
	defer lr.mu.Unlock()
	return slices.ContainsFunc(lr.seen, func(s string) bool { return strings.Contains(s, substr) })
}

func (lr *liveRegistry) ref(t *testing.T, s string) name.Reference {
	t.Helper()
	r, err := name.ParseReference(lr.host+"/"+s, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// sameImage compares two images byte for byte: manifest, config, layers.
func sameImage(t *testing.T, want, got v1.Image) {
	t.Helper()
	wm, err := want.RawManifest()
	if err != nil {
		t.Fatal(err)
	}
	gm, err := got.RawManifest()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(wm, gm) {
		t.Fatalf("manifest differs")
	}
	wc, _ := want.RawConfigFile()
	gc, err := got.RawConfigFile()
	if err != nil || !bytes.Equal(wc, gc) {
		t.Fatalf("config differs: %v", err)
	}
	wl, _ := want.Layers()
	gl, err := got.Layers()
	if err != nil || len(wl) != len(gl) {
		t.Fatalf("layers: %d vs %d (%v)", len(wl), len(gl), err)
	}
	for i := range wl {
		wr, _ := wl[i].Compressed()
		gr, err := gl[i].Compressed()
		if err != nil {
			t.Fatal(err)
		}
		wb, _ := io.ReadAll(wr)
		gb, err := io.ReadAll(gr)
		if err != nil || !bytes.Equal(wb, gb) {
			t.Fatalf("layer %d differs (%v)", i, err)
		}
	}
}

func TestClientImageRoundTrip(t *testing.T) {
	lr := newLiveRegistry(t)
	img, err := random.Image(3<<20, 3) // large enough for real streaming
	if err != nil {
		t.Fatal(err)
	}
	tag := lr.ref(t, "team/app:v1")
	if err := remote.Write(tag, img); err != nil {
		t.Fatalf("push: %v", err)
	}
	got, err := remote.Image(tag)
	if err != nil {
		t.Fatalf("pull: %v", err)
	}
	sameImage(t, img, got)

	d, _ := img.Digest()
	byDigest, err := remote.Image(lr.ref(t, "team/app@"+d.String()))
	if err != nil {
		t.Fatalf("pull by digest: %v", err)
	}
	sameImage(t, img, byDigest)

	// Pushing again to another repository of the same registry mounts the
	// layers from where the pulled image came from.
	if err := remote.Write(lr.ref(t, "other/copy:v1"), got); err != nil {
		t.Fatalf("push copy: %v", err)
	}
	if !lr.saw("from=team%2Fapp") && !lr.saw("from=team/app") {
		t.Errorf("no cross-repository mount was attempted")
	}
	copied, err := remote.Image(lr.ref(t, "other/copy:v1"))
	if err != nil {
		t.Fatal(err)
	}
	sameImage(t, img, copied)

	tags, err := remote.List(lr.ref(t, "team/app").Context())
	if err != nil || !slices.Equal(tags, []string{"v1"}) {
		t.Fatalf("tags %v %v", tags, err)
	}
	reg, _ := name.NewRegistry(lr.host, name.Insecure)
	repos, err := remote.Catalog(t.Context(), reg)
	if err != nil || !slices.Equal(repos, []string{"other/copy", "team/app"}) {
		t.Fatalf("catalog %v %v", repos, err)
	}
}

func TestClientIndexRoundTrip(t *testing.T) {
	lr := newLiveRegistry(t)
	idx, err := random.Index(1024, 2, 3)
	if err != nil {
		t.Fatal(err)
	}
	tag := lr.ref(t, "multi:latest")
	if err := remote.WriteIndex(tag, idx); err != nil {
		t.Fatalf("push index: %v", err)
	}
	got, err := remote.Index(tag)
	if err != nil {
		t.Fatalf("pull index: %v", err)
	}
	wm, _ := idx.RawManifest()
	gm, err := got.RawManifest()
	if err != nil || !bytes.Equal(wm, gm) {
		t.Fatalf("index manifest differs: %v", err)
	}
	im, _ := idx.IndexManifest()
	for _, m := range im.Manifests {
		want, _ := idx.Image(m.Digest)
		child, err := got.Image(m.Digest)
		if err != nil {
			t.Fatal(err)
		}
		sameImage(t, want, child)
	}
}

func TestClientDockerManifestList(t *testing.T) {
	lr := newLiveRegistry(t)
	img, err := random.Image(512, 1)
	if err != nil {
		t.Fatal(err)
	}
	img = mutate.MediaType(img, types.DockerManifestSchema2)
	img = mutate.ConfigMediaType(img, types.DockerConfigJSON)
	idx := mutate.IndexMediaType(mutate.AppendManifests(empty.Index, mutate.IndexAddendum{
		Add:        img,
		Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}},
	}), types.DockerManifestList)
	tag := lr.ref(t, "docker:list")
	if err := remote.WriteIndex(tag, idx); err != nil {
		t.Fatalf("push: %v", err)
	}
	desc, err := remote.Get(tag)
	if err != nil {
		t.Fatal(err)
	}
	if desc.MediaType != types.DockerManifestList {
		t.Fatalf("media type %s", desc.MediaType)
	}
	got, err := desc.ImageIndex()
	if err != nil {
		t.Fatal(err)
	}
	wm, _ := idx.RawManifest()
	gm, _ := got.RawManifest()
	if !bytes.Equal(wm, gm) {
		t.Fatal("manifest list differs")
	}
	pulled, err := remote.Image(tag) // resolves the platform image
	if err != nil {
		t.Fatal(err)
	}
	sameImage(t, img, pulled)
}

func TestClientReferrers(t *testing.T) {
	lr := newLiveRegistry(t, WithDeleteEnabled(true))
	img, err := random.Image(256, 1)
	if err != nil {
		t.Fatal(err)
	}
	repo := "app"
	if err := remote.Write(lr.ref(t, repo+":v1"), img); err != nil {
		t.Fatal(err)
	}
	subjectDigest, _ := img.Digest()
	subjectSize, _ := img.Size()
	subject := v1.Descriptor{MediaType: types.OCIManifestSchema1, Digest: subjectDigest, Size: subjectSize}

	artifact := func(artifactType, payload string) v1.Image {
		a := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
		a = mutate.ConfigMediaType(a, types.MediaType(artifactType))
		a, err := mutate.Append(a, mutate.Addendum{Layer: static.NewLayer([]byte(payload), "application/vnd.example.payload")})
		if err != nil {
			t.Fatal(err)
		}
		return mutate.Subject(a, subject).(v1.Image)
	}
	sig := artifact("application/vnd.example.sig", "signature")
	sbom := artifact("application/vnd.example.sbom", "sbom")
	for _, a := range []v1.Image{sig, sbom} {
		d, _ := a.Digest()
		if err := remote.Write(lr.ref(t, repo+"@"+d.String()), a); err != nil {
			t.Fatalf("push referrer: %v", err)
		}
	}
	if lr.saw("_manifests") || lr.saw("sha256-") {
		t.Errorf("client fell back to the tag schema: the registry did not advertise referrers support")
	}
	refs, err := remote.Referrers(lr.ref(t, repo+"@"+subjectDigest.String()).(name.Digest))
	if err != nil {
		t.Fatal(err)
	}
	im, err := refs.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, m := range im.Manifests {
		got[m.Digest.String()] = m.ArtifactType
	}
	sigD, _ := sig.Digest()
	sbomD, _ := sbom.Digest()
	want := map[string]string{sigD.String(): "application/vnd.example.sig", sbomD.String(): "application/vnd.example.sbom"}
	if len(got) != 2 || got[sigD.String()] != want[sigD.String()] || got[sbomD.String()] != want[sbomD.String()] {
		t.Fatalf("referrers %v, want %v", got, want)
	}
	filtered, err := remote.Referrers(lr.ref(t, repo+"@"+subjectDigest.String()).(name.Digest), remote.WithFilter("artifactType", "application/vnd.example.sbom"))
	if err != nil {
		t.Fatal(err)
	}
	fm, _ := filtered.IndexManifest()
	if len(fm.Manifests) != 1 || fm.Manifests[0].Digest != sbomD {
		t.Fatalf("filtered referrers %v", fm.Manifests)
	}
	// Delete the signature; it leaves the referrers list.
	if err := remote.Delete(lr.ref(t, repo+"@"+sigD.String())); err != nil {
		t.Fatal(err)
	}
	refs, err = remote.Referrers(lr.ref(t, repo+"@"+subjectDigest.String()).(name.Digest))
	if err != nil {
		t.Fatal(err)
	}
	im, _ = refs.IndexManifest()
	if len(im.Manifests) != 1 || im.Manifests[0].Digest != sbomD {
		t.Fatalf("after delete: %v", im.Manifests)
	}
}
