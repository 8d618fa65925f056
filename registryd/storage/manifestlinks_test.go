package storage

import (
	"slices"
	"testing"

	"github.com/opencontainers/go-digest"
)

func TestParseManifestLinks(t *testing.T) {
	a, b, c := digest.FromString("a"), digest.FromString("b"), digest.FromString("c")
	tests := map[string]struct {
		content string
		want    ManifestLinks
		err     bool
	}{
		"oci manifest with subject": {
			content: `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"digest":"` + a.String() + `","size":1},"layers":[{"digest":"` + b.String() + `"}],"subject":{"digest":"` + c.String() + `"}}`,
			want:    ManifestLinks{Blobs: []digest.Digest{a, b}, Subject: c},
		},
		"index": {
			content: `{"schemaVersion":2,"manifests":[{"digest":"` + a.String() + `"},{"digest":"` + b.String() + `"}]}`,
			want:    ManifestLinks{Children: []digest.Digest{a, b}},
		},
		"docker manifest list": {
			content: `{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.list.v2+json","manifests":[{"digest":"` + c.String() + `","platform":{"os":"linux"}}]}`,
			want:    ManifestLinks{Children: []digest.Digest{c}},
		},
		"schema 1": {
			content: `{"schemaVersion":1,"name":"x","fsLayers":[{"blobSum":"` + a.String() + `"},{"blobSum":"` + b.String() + `"}],"signatures":[{}]}`,
			want:    ManifestLinks{Blobs: []digest.Digest{a, b}},
		},
		"invalid digests left out": {
			content: `{"config":{"digest":"sha256:nothex"},"layers":[{"digest":""},{"digest":"` + b.String() + `"}],"subject":{"digest":"md5:x"}}`,
			want:    ManifestLinks{Blobs: []digest.Digest{b}},
		},
		"fields it does not read are not checked": {
			content: `{"schemaVersion":"two","config":{"digest":"` + a.String() + `","size":"big"},"annotations":{"n":1}}`,
			want:    ManifestLinks{Blobs: []digest.Digest{a}},
		},
		"not json":        {content: `{"config":`, err: true},
		"not an object":   {content: `[1,2]`, err: true},
		"layers mistyped": {content: `{"layers":{"digest":"` + a.String() + `"}}`, err: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := ParseManifestLinks([]byte(tc.content))
			if (err != nil) != tc.err {
				t.Fatalf("error = %v, want error %v", err, tc.err)
			}
			if !slices.Equal(got.Blobs, tc.want.Blobs) || !slices.Equal(got.Children, tc.want.Children) || got.Subject != tc.want.Subject {
				t.Errorf("links = %+v, want %+v", got, tc.want)
			}
		})
	}
}
