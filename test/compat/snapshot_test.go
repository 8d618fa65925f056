package compat

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
)

// manifestAccept is every manifest media type a client of either registry
// asks for.
var manifestAccept = strings.Join([]string{
	"application/vnd.oci.image.manifest.v1+json",
	"application/vnd.oci.image.index.v1+json",
	"application/vnd.docker.distribution.manifest.v2+json",
	"application/vnd.docker.distribution.manifest.list.v2+json",
}, ", ")

// object is one manifest as served.
type object struct {
	ContentType string
	Body        []byte
}

// snapshot is everything a registry serves, reached from its catalog:
// repositories, tags, and every manifest and blob reachable from a tag (by
// index children, config, layers and subject), fetched by digest.
type snapshot struct {
	Repos     []string
	Tags      map[string][]string // repository -> tags
	TagDigest map[string]string   // repository:tag -> digest
	Manifests map[string]object   // repository@digest -> manifest
	Blobs     map[string][]byte   // repository@digest -> blob
}

// take walks r from its catalog. Every body is checked against its digest.
func take(t *testing.T, r *registry) *snapshot {
	t.Helper()
	s := &snapshot{
		Tags:      map[string][]string{},
		TagDigest: map[string]string{},
		Manifests: map[string]object{},
		Blobs:     map[string][]byte{},
	}
	var catalog struct {
		Repositories []string `json:"repositories"`
	}
	getJSON(t, r.url("/v2/_catalog?n=1000"), &catalog)
	s.Repos = catalog.Repositories
	for _, repo := range s.Repos {
		var tags struct {
			Name string   `json:"name"`
			Tags []string `json:"tags"`
		}
		getJSON(t, r.url("/v2/"+repo+"/tags/list?n=1000"), &tags)
		if tags.Name != repo {
			t.Errorf("%s: tags list of %s names %q", r.name, repo, tags.Name)
		}
		s.Tags[repo] = tags.Tags
		for _, tag := range tags.Tags {
			s.TagDigest[repo+":"+tag] = s.walkManifest(t, r, repo, tag)
		}
	}
	return s
}

// walkManifest fetches a manifest by reference and, by digest, everything
// it names. It returns the manifest's digest.
func (s *snapshot) walkManifest(t *testing.T, r *registry, repo, ref string) string {
	t.Helper()
	body, hdr := get(t, r.url("/v2/"+repo+"/manifests/"+ref), manifestAccept)
	d := digest.FromBytes(body)
	if got := hdr.Get("Docker-Content-Digest"); got != d.String() {
		t.Errorf("%s: %s:%s Docker-Content-Digest = %q, body digest %s", r.name, repo, ref, got, d)
	}
	if strings.HasPrefix(ref, "sha256:") && ref != d.String() {
		t.Errorf("%s: %s@%s served a body with digest %s", r.name, repo, ref, d)
	}
	key := repo + "@" + d.String()
	if _, seen := s.Manifests[key]; seen {
		return d.String()
	}
	s.Manifests[key] = object{ContentType: hdr.Get("Content-Type"), Body: body}

	type descriptor struct {
		Digest string   `json:"digest"`
		URLs   []string `json:"urls"`
	}
	var m struct {
		Config    *descriptor  `json:"config"`
		Layers    []descriptor `json:"layers"`
		Manifests []descriptor `json:"manifests"`
		Subject   *descriptor  `json:"subject"`
	}
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatalf("%s: %s is no JSON manifest: %v", r.name, key, err)
	}
	for _, c := range m.Manifests {
		s.walkManifest(t, r, repo, c.Digest)
	}
	if m.Subject != nil {
		s.walkManifest(t, r, repo, m.Subject.Digest)
	}
	blobs := m.Layers
	if m.Config != nil {
		blobs = append(blobs, *m.Config)
	}
	for _, b := range blobs {
		if len(b.URLs) > 0 { // non-distributable: not in the registry
			continue
		}
		bkey := repo + "@" + b.Digest
		if _, seen := s.Blobs[bkey]; seen {
			continue
		}
		blob, _ := get(t, r.url("/v2/"+repo+"/blobs/"+b.Digest), "")
		if got := digest.FromBytes(blob).String(); got != b.Digest {
			t.Errorf("%s: blob %s has digest %s", r.name, bkey, got)
		}
		s.Blobs[bkey] = blob
	}
	return d.String()
}

// diff describes how got differs from want, or returns "".
func (want *snapshot) diff(got *snapshot) string {
	var b strings.Builder
	if !slices.Equal(want.Repos, got.Repos) {
		fmt.Fprintf(&b, "catalog: want %v, got %v\n", want.Repos, got.Repos)
	}
	for _, repo := range want.Repos {
		if !slices.Equal(want.Tags[repo], got.Tags[repo]) {
			fmt.Fprintf(&b, "tags of %s: want %v, got %v\n", repo, want.Tags[repo], got.Tags[repo])
		}
	}
	for _, k := range sortedKeys(want.TagDigest) {
		if want.TagDigest[k] != got.TagDigest[k] {
			fmt.Fprintf(&b, "tag %s: want %s, got %q\n", k, want.TagDigest[k], got.TagDigest[k])
		}
	}
	for _, k := range sortedKeys(want.Manifests) {
		w, g := want.Manifests[k], got.Manifests[k]
		if !bytes.Equal(w.Body, g.Body) {
			fmt.Fprintf(&b, "manifest %s: bytes differ (%d vs %d)\n", k, len(w.Body), len(g.Body))
		}
		if w.ContentType != g.ContentType {
			fmt.Fprintf(&b, "manifest %s: Content-Type %q vs %q\n", k, w.ContentType, g.ContentType)
		}
	}
	for _, k := range sortedKeys(want.Blobs) {
		if !bytes.Equal(want.Blobs[k], got.Blobs[k]) {
			fmt.Fprintf(&b, "blob %s: bytes differ (%d vs %d)\n", k, len(want.Blobs[k]), len(got.Blobs[k]))
		}
	}
	if len(want.Manifests) != len(got.Manifests) || len(want.Blobs) != len(got.Blobs) {
		fmt.Fprintf(&b, "counts: want %d manifests and %d blobs, got %d and %d\n",
			len(want.Manifests), len(want.Blobs), len(got.Manifests), len(got.Blobs))
	}
	return b.String()
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// get fetches url, failing the test unless it answers 200.
func get(t *testing.T, url, accept string) ([]byte, http.Header) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s = %d: %s", url, resp.StatusCode, body)
	}
	return body, resp.Header
}

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	body, _ := get(t, url, "")
	if err := json.Unmarshal(body, v); err != nil {
		t.Fatalf("GET %s: %v: %s", url, err, body)
	}
}
