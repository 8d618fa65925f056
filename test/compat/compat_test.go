// Package compat checks that registryd and the CNCF Distribution registry
// share one storage layout: a directory written through one is served by
// the other, byte for byte. Both are run as real processes with the same
// config.yml (filesystem storage, delete enabled) on loopback.
//
// What transfers: repositories, tags, image manifests, OCI indexes, Docker
// manifest lists, artifacts with a subject (and the referrers fallback tag
// go-containerregistry writes), blobs, and upload sessions in both
// directions.
//
// Upload sessions transfer both ways. Distribution keeps a session's name,
// id and offset in an HMAC-signed _state query parameter of the Location
// URL and refuses a PATCH or PUT whose _state it cannot verify (404
// BLOB_UPLOAD_INVALID); registryd keeps the session in storage
// (_uploads/<id>) and ignores _state, but signs one into its own Locations
// with http.secret, so Distribution continues registryd's uploads when the
// two share the secret (TestUploadStartedOnRegistrydFinishedOnDistribution)
// and refuses them when not (TestUploadStateNeedsTheSharedSecret).
//
// Referrers: Distribution v3.1.2 has no referrers API (404), so clients
// pushing a subject to it write the sha256-<hex> fallback tag, which
// registryd then serves like any tag, and registryd's own referrers API
// lists the artifact, building its referrers index from the stored
// manifests on first use. The index registryd keeps (under
// repositories/<name>/_berth/) is invisible to Distribution. The other way round,
// clients pushing to registryd see OCI-Subject and write no fallback tag,
// so after a move to Distribution the artifact is still stored and
// pullable by digest or tag, but not discoverable from its subject.
package compat

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/opencontainers/go-digest"

	"github.com/berth-dev/berth/internal/testutil"
	"github.com/berth-dev/berth/internal/testutil/storagetest"
)

// binaries are the two registries, by name.
func binaries(t *testing.T) (distribution, registryd string) {
	t.Helper()
	return testutil.DistributionRegistry(t), testutil.Registryd(t)
}

func TestDistributionToRegistryd(t *testing.T) {
	dist, regd := binaries(t)
	roundTrip(t, "distribution", dist, "registryd", regd)
}

func TestRegistrydToDistribution(t *testing.T) {
	dist, regd := binaries(t)
	roundTrip(t, "registryd", regd, "distribution", dist)
}

// roundTrip pushes content through the first registry, stops it, serves
// the same directory with the second and checks that it serves everything
// the first did, byte for byte, and exactly what was pushed.
func roundTrip(t *testing.T, fromName, fromBin, toName, toBin string) {
	roundTripOn(t, filesystemSection(t.TempDir()), fromName, fromBin, toName, toBin)
}

// roundTripOn is roundTrip on the storage section given.
func roundTripOn(t *testing.T, section, fromName, fromBin, toName, toBin string) {
	from := startOn(t, fromName, fromBin, section)
	pushed := push(t, from)
	before := take(t, from)
	pushed.check(t, before)
	from.stop(t)
	if fromName == "registryd" {
		// registryd answered referrers from its index: Distribution must
		// serve the directory as if the index were not there.
		index := "/docker/registry/v2/repositories/compat/artifact/_berth/referrers/indexed"
		if _, err := storagetest.FromSection(t, section).Stat(t.Context(), index); err != nil {
			t.Fatalf("registryd wrote no referrers index: %v", err)
		}
	}

	to := startOn(t, toName, toBin, section)
	after := take(t, to)
	if d := before.diff(after); d != "" {
		t.Fatalf("%s serves %s's directory differently:\n%s", toName, fromName, d)
	}
	pushed.check(t, after)
	if toName == "registryd" {
		checkReferrers(t, to, pushed)
	}
	t.Logf("%s -> %s: %d repositories, %d tags, %d manifests, %d blobs identical",
		fromName, toName, len(after.Repos), len(after.TagDigest), len(after.Manifests), len(after.Blobs))
}

// pushed is what push wrote: manifests by repository@digest and tags.
type pushed struct {
	manifests map[string][]byte // repository@digest -> raw manifest
	tags      map[string]string // repository:tag -> digest
	subject   string            // digest of compat/artifact's subject
	artifact  string            // digest of the artifact referring to it
}

// check fails unless s serves every pushed manifest with the pushed bytes
// under the pushed tags.
func (p *pushed) check(t *testing.T, s *snapshot) {
	t.Helper()
	for k, raw := range p.manifests {
		got, ok := s.Manifests[k]
		if !ok {
			t.Errorf("manifest %s not reachable from any tag", k)
			continue
		}
		if !bytes.Equal(got.Body, raw) {
			t.Errorf("manifest %s: served bytes differ from pushed", k)
		}
	}
	for k, d := range p.tags {
		if s.TagDigest[k] != d {
			t.Errorf("tag %s = %q, pushed %s", k, s.TagDigest[k], d)
		}
	}
	if len(s.Blobs) < 20 {
		t.Errorf("only %d blobs reachable; the fixture pushes more", len(s.Blobs))
	}
}

// push writes the fixture through r with go-containerregistry: Docker and
// OCI images (one manifest under two tags), a multi-arch OCI index, a
// Docker manifest list, and an artifact whose subject is an image.
func push(t *testing.T, r *registry) *pushed {
	t.Helper()
	p := &pushed{manifests: map[string][]byte{}, tags: map[string]string{}}
	ref := func(s string) name.Reference {
		t.Helper()
		n, err := name.ParseReference(r.addr+"/"+s, name.Insecure)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	record := func(repo, tag string, m interface {
		RawManifest() ([]byte, error)
		Digest() (v1.Hash, error)
	}) {
		t.Helper()
		raw, err := m.RawManifest()
		if err != nil {
			t.Fatal(err)
		}
		d, err := m.Digest()
		if err != nil {
			t.Fatal(err)
		}
		p.manifests[repo+"@"+d.String()] = raw
		if tag != "" {
			p.tags[repo+":"+tag] = d.String()
		}
	}
	writeImage := func(repo, tag string, img v1.Image) {
		t.Helper()
		if err := remote.Write(ref(repo+":"+tag), img); err != nil {
			t.Fatalf("push %s:%s to %s: %v", repo, tag, r.name, err)
		}
		record(repo, tag, img)
	}
	writeIndex := func(repo, tag string, idx v1.ImageIndex) {
		t.Helper()
		if err := remote.WriteIndex(ref(repo+":"+tag), idx); err != nil {
			t.Fatalf("push %s:%s to %s: %v", repo, tag, r.name, err)
		}
		record(repo, tag, idx)
		im, err := idx.IndexManifest()
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range im.Manifests {
			child, err := idx.Image(c.Digest)
			if err != nil {
				t.Fatal(err)
			}
			record(repo, "", child)
		}
	}

	for _, tag := range []string{"a", "b", "c"} {
		writeImage("compat/docker", tag, dockerImage(t, 2, 1024))
	}
	big := ociImage(t, 3, 512<<10) // a few larger layers
	writeImage("compat/oci", "latest", big)
	writeImage("compat/oci", "stable", big)

	writeIndex("compat/multiarch", "latest", index(t, types.OCIImageIndex,
		ociImage(t, 1, 1024), ociImage(t, 2, 1024)))
	writeIndex("compat/manifestlist", "latest", index(t, types.DockerManifestList,
		dockerImage(t, 1, 1024), dockerImage(t, 2, 1024)))

	subject := ociImage(t, 1, 1024)
	writeImage("compat/artifact", "app", subject)
	sd, err := partialDescriptor(subject)
	if err != nil {
		t.Fatal(err)
	}
	art := mutate.ConfigMediaType(ociImage(t, 1, 256), "application/vnd.berth.test.sbom.v1+json")
	art = mutate.Subject(art, sd).(v1.Image)
	ad, err := art.Digest()
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref("compat/artifact@"+ad.String()), art); err != nil {
		t.Fatalf("push artifact to %s: %v", r.name, err)
	}
	// The artifact has no tag of its own: it is reached through its
	// subject's referrers (the API, or the sha256-<hex> fallback tag
	// go-containerregistry writes when a registry does not announce
	// OCI-Subject). Either way it must be in the snapshot.
	refs, err := remote.Referrers(ref("compat/artifact@" + sd.Digest.String()).Context().Digest(sd.Digest.String()))
	if err != nil {
		t.Fatalf("referrers on %s: %v", r.name, err)
	}
	if im, _ := refs.IndexManifest(); im == nil || len(im.Manifests) != 1 || im.Manifests[0].Digest != ad {
		t.Fatalf("referrers of the subject on %s: %+v", r.name, im)
	}
	if err := remote.Tag(ref("compat/artifact:sbom").(name.Tag), art); err != nil {
		t.Fatalf("tag artifact on %s: %v", r.name, err)
	}
	record("compat/artifact", "sbom", art)
	p.subject, p.artifact = sd.Digest.String(), ad.String()
	return p
}

// checkReferrers fails unless r's referrers API lists the artifact for its
// subject. registryd computes referrers from the stored manifests, so this
// holds for a directory Distribution wrote, which has no referrers API
// (v3.1.2 answers 404).
func checkReferrers(t *testing.T, r *registry, p *pushed) {
	t.Helper()
	var idx struct {
		Manifests []struct {
			Digest       string `json:"digest"`
			ArtifactType string `json:"artifactType"`
		} `json:"manifests"`
	}
	getJSON(t, r.url("/v2/compat/artifact/referrers/"+p.subject), &idx)
	if len(idx.Manifests) != 1 || idx.Manifests[0].Digest != p.artifact ||
		idx.Manifests[0].ArtifactType != "application/vnd.berth.test.sbom.v1+json" {
		t.Errorf("%s: referrers of %s = %+v, want the artifact %s", r.name, p.subject, idx.Manifests, p.artifact)
	}
}

func partialDescriptor(img v1.Image) (v1.Descriptor, error) {
	d, err := img.Digest()
	if err != nil {
		return v1.Descriptor{}, err
	}
	mt, err := img.MediaType()
	if err != nil {
		return v1.Descriptor{}, err
	}
	size, err := img.Size()
	if err != nil {
		return v1.Descriptor{}, err
	}
	return v1.Descriptor{MediaType: mt, Digest: d, Size: size}, nil
}

// dockerImage is a Docker schema2 image of random gzip layers.
func dockerImage(t *testing.T, layers, size int64) v1.Image {
	t.Helper()
	img, err := random.Image(size, layers)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// ociImage is an OCI image of random OCI layers.
func ociImage(t *testing.T, layers, size int64) v1.Image {
	t.Helper()
	img := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	for range layers {
		l, err := random.Layer(size, types.OCILayer)
		if err != nil {
			t.Fatal(err)
		}
		if img, err = mutate.AppendLayers(img, l); err != nil {
			t.Fatal(err)
		}
	}
	return img
}

// index is an index of mt over imgs, one platform each.
func index(t *testing.T, mt types.MediaType, imgs ...v1.Image) v1.ImageIndex {
	t.Helper()
	arches := []string{"amd64", "arm64", "s390x"}
	idx := mutate.IndexMediaType(empty.Index, mt)
	for i, img := range imgs {
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{
			Add: img,
			Descriptor: v1.Descriptor{
				Platform: &v1.Platform{OS: "linux", Architecture: arches[i%len(arches)]},
			},
		})
	}
	return idx
}

// TestUploadStartedOnDistributionFinishedOnRegistryd sends half a blob to
// Distribution, switches the directory to registryd and sends the rest to
// the Location Distribution gave (its _state parameter is ignored).
func TestUploadStartedOnDistributionFinishedOnRegistryd(t *testing.T) {
	dist, regd := binaries(t)
	root := t.TempDir()
	blob := randomBytes(t, 256<<10)
	half := len(blob) / 2

	d := startRegistry(t, "distribution", dist, root)
	loc := startUpload(t, d, "compat/chunked")
	loc = patchChunk(t, d, loc, blob[:half], 0, http.StatusAccepted)
	d.stop(t)

	r := startRegistry(t, "registryd", regd, root)
	if got := uploadOffset(t, r, loc); got != half {
		t.Fatalf("registryd reports %d bytes of Distribution's upload, want %d", got, half)
	}
	loc = patchChunk(t, r, loc, blob[half:], half, http.StatusAccepted)
	finishUpload(t, r, loc, blob, http.StatusCreated)
	got, _ := get(t, r.url("/v2/compat/chunked/blobs/"+digest.FromBytes(blob).String()), "")
	if !bytes.Equal(got, blob) {
		t.Fatalf("blob finished on registryd differs from the bytes sent")
	}
}

// TestUploadStartedOnRegistrydFinishedOnDistribution sends half a blob to
// registryd, switches the directory to Distribution (same http.secret) and
// sends the rest to the Location registryd gave: its _state parameter,
// signed with the shared secret, is what Distribution needs to continue.
func TestUploadStartedOnRegistrydFinishedOnDistribution(t *testing.T) {
	dist, regd := binaries(t)
	root := t.TempDir()
	blob := randomBytes(t, 256<<10)
	half := len(blob) / 2

	r := startRegistry(t, "registryd", regd, root)
	loc := startUpload(t, r, "compat/chunked")
	loc = patchChunk(t, r, loc, blob[:half], 0, http.StatusAccepted)
	r.stop(t)

	d := startRegistry(t, "distribution", dist, root)
	if got := uploadOffset(t, d, loc); got != half {
		t.Fatalf("Distribution reports %d bytes of registryd's upload, want %d", got, half)
	}
	loc = patchChunk(t, d, loc, blob[half:], half, http.StatusAccepted)
	finishUpload(t, d, loc, blob, http.StatusCreated)
	got, _ := get(t, d.url("/v2/compat/chunked/blobs/"+digest.FromBytes(blob).String()), "")
	if !bytes.Equal(got, blob) {
		t.Fatalf("blob finished on Distribution differs from the bytes sent")
	}
}

// TestUploadStateNeedsTheSharedSecret: with another http.secret,
// Distribution cannot verify the _state registryd signed and refuses to
// continue the upload (what happens when the replicas do not share it).
func TestUploadStateNeedsTheSharedSecret(t *testing.T) {
	dist, regd := binaries(t)
	root := t.TempDir()
	blob := randomBytes(t, 64<<10)
	half := len(blob) / 2

	r := startRegistry(t, "registryd", regd, root)
	loc := startUpload(t, r, "compat/chunked")
	loc = patchChunk(t, r, loc, blob[:half], 0, http.StatusAccepted)
	r.stop(t)

	d := testutil.StartRegistry(t, "distribution", dist, func(addr string) string {
		return strings.Replace(testutil.FilesystemConfig(root, addr), "secret: berth-test-secret", "secret: another-secret", 1)
	})
	dr := &registry{Registry: d, name: d.Name, addr: d.Addr}
	body := patchChunkBody(t, dr, loc, blob[half:], half, http.StatusNotFound)
	if !strings.Contains(body, "BLOB_UPLOAD_INVALID") {
		t.Fatalf("Distribution answered %s, want BLOB_UPLOAD_INVALID", body)
	}
}

func randomBytes(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// requestURI is loc's path and query: a Location from one process is sent
// to whichever is serving now.
func requestURI(t *testing.T, loc string) string {
	t.Helper()
	u, err := url.Parse(loc)
	if err != nil {
		t.Fatal(err)
	}
	return u.RequestURI()
}

func do(t *testing.T, method, url string, body []byte, hdr map[string]string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

func startUpload(t *testing.T, r *registry, repo string) string {
	t.Helper()
	resp, body := do(t, http.MethodPost, r.url("/v2/"+repo+"/blobs/uploads/"), nil, nil)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("%s: POST upload = %d: %s", r.name, resp.StatusCode, body)
	}
	return requestURI(t, resp.Header.Get("Location"))
}

func patchChunkBody(t *testing.T, r *registry, loc string, chunk []byte, offset, want int) string {
	t.Helper()
	resp, body := do(t, http.MethodPatch, r.url(loc), chunk, map[string]string{
		"Content-Type":  "application/octet-stream",
		"Content-Range": fmt.Sprintf("%d-%d", offset, offset+len(chunk)-1),
	})
	if resp.StatusCode != want {
		t.Fatalf("%s: PATCH chunk at %d = %d, want %d: %s", r.name, offset, resp.StatusCode, want, body)
	}
	if want == http.StatusAccepted {
		return requestURI(t, resp.Header.Get("Location"))
	}
	return string(body)
}

func patchChunk(t *testing.T, r *registry, loc string, chunk []byte, offset, want int) string {
	t.Helper()
	return patchChunkBody(t, r, loc, chunk, offset, want)
}

// uploadOffset asks for the upload's status and returns the number of
// bytes received, from the Range header 0-<last>.
func uploadOffset(t *testing.T, r *registry, loc string) int {
	t.Helper()
	resp, body := do(t, http.MethodGet, r.url(loc), nil, nil)
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("%s: GET upload status = %d: %s", r.name, resp.StatusCode, body)
	}
	var last int
	if _, err := fmt.Sscanf(resp.Header.Get("Range"), "0-%d", &last); err != nil {
		t.Fatalf("%s: upload Range %q: %v", r.name, resp.Header.Get("Range"), err)
	}
	return last + 1
}

func finishUpload(t *testing.T, r *registry, loc string, blob []byte, want int) {
	t.Helper()
	sep := "?"
	if strings.Contains(loc, "?") {
		sep = "&"
	}
	resp, body := do(t, http.MethodPut, r.url(loc+sep+"digest="+digest.FromBytes(blob).String()), nil, nil)
	if resp.StatusCode != want {
		t.Fatalf("%s: PUT upload = %d, want %d: %s", r.name, resp.StatusCode, want, body)
	}
}
