package storage

import (
	"context"
	"errors"
	"path"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/berth-dev/berth/registryd/storage/driver/inmemory"
)

// FuzzParseManifest checks the manifest decoder on any body and declared
// Content-Type: it refuses, or it returns one of the four media types
// registryd stores, agreeing with a declared manifest type, with the shape
// that type requires and only valid digests and sizes.
func FuzzParseManifest(f *testing.F) {
	const d = "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
	for _, s := range []struct{ body, ct string }{
		{`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"` + d + `","size":5},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"` + d + `","size":5}]}`, MediaTypeOCIManifest},
		{`{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"` + d + `","size":5}]}`, ""},
		{`{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json","config":{"digest":"` + d + `","size":1},"layers":[]}`, MediaTypeDockerManifest},
		{`{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.list.v2+json","manifests":[]}`, MediaTypeDockerList},
		{`{"schemaVersion":2,"config":{"digest":"` + d + `","size":1},"subject":{"digest":"` + d + `","size":1},"artifactType":"application/x"}`, "application/json"},
		{`{"schemaVersion":1,"name":"x"}`, "application/vnd.docker.distribution.manifest.v1+prettyjws"},
	} {
		f.Add([]byte(s.body), s.ct)
	}
	f.Fuzz(func(t *testing.T, body []byte, contentType string) {
		m, mt, err := ParseManifest(body, contentType)
		if err != nil {
			var me *ManifestError
			if !errors.As(err, &me) {
				t.Fatalf("error %v is not a ManifestError", err)
			}
			return
		}
		switch mt {
		case MediaTypeOCIManifest, MediaTypeDockerManifest:
			if m.Config == nil {
				t.Fatalf("%s without a config accepted", mt)
			}
		case MediaTypeOCIIndex, MediaTypeDockerList:
			if m.Config != nil || len(m.Layers) > 0 {
				t.Fatalf("%s with config or layers accepted", mt)
			}
		default:
			t.Fatalf("accepted media type %q", mt)
		}
		if declared := strings.TrimSpace(strings.Split(contentType, ";")[0]); declared != "" && declared != "application/json" && declared != "application/octet-stream" && declared != mt {
			t.Fatalf("declared %q, parsed as %q", declared, mt)
		}
		for _, r := range m.References() {
			if r.Digest.Validate() != nil || r.Size < 0 {
				t.Fatalf("reference %+v accepted", r)
			}
		}
		if m.Subject != nil && m.Subject.Digest.Validate() != nil {
			t.Fatalf("subject %q accepted", m.Subject.Digest)
		}
	})
}

// FuzzReadLink checks the link reader on any content of a link file: a
// valid digest that is the file's text, or an error, never a panic.
func FuzzReadLink(f *testing.F) {
	f.Add([]byte("sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"))
	f.Add([]byte("sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824\n"))
	f.Add([]byte("sha256:../../../etc/passwd"))
	f.Fuzz(func(t *testing.T, content []byte) {
		ctx := context.Background()
		drv := inmemory.New()
		s := New(drv)
		p := TagCurrentLinkPath("lib/app", "v1")
		if err := drv.PutContent(ctx, p, content); err != nil {
			t.Fatal(err)
		}
		errMissing := errors.New("missing")
		d, err := s.readLink(ctx, p, errMissing)
		if err != nil {
			if errors.Is(err, errMissing) {
				t.Fatalf("an existing link read as missing")
			}
			return
		}
		if d.Validate() != nil || d.String() != strings.TrimSpace(string(content)) {
			t.Fatalf("link %q read as %q", content, d)
		}
	})
}

// FuzzWalkPaths puts a file at any path under blobs/ and under
// repositories/ and checks the walkers that read Distribution's on-disk
// layout from paths alone: whatever they report is a valid digest (and
// repository name) whose canonical path is the file's, so a stray or
// crafted path is skipped, never misread.
func FuzzWalkPaths(f *testing.F) {
	const hex = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
	f.Add("sha256/2c/" + hex + "/data")
	f.Add("lib/app/_layers/sha256/" + hex + "/link")
	f.Add("sha256/2d/" + hex + "/data")
	f.Add("lib/app/_manifests/revisions/sha256/" + hex + "/link")
	f.Add("../x/_layers/sha256/" + hex + "/link")
	f.Add("sha256/2c/" + hex + "/data/extra")
	f.Fuzz(func(t *testing.T, rel string) {
		ctx := context.Background()
		drv := inmemory.New()
		s := New(drv)
		blob := blobsRoot() + "/" + rel
		link := repositoriesRoot() + "/" + rel
		if path.Clean(blob) != blob || !strings.HasPrefix(blob, blobsRoot()+"/") {
			return // not a path a driver stores
		}
		if drv.PutContent(ctx, blob, []byte("x")) != nil || drv.PutContent(ctx, link, []byte("x")) != nil {
			return
		}
		err := s.WalkBlobs(ctx, func(b BlobInfo) error {
			if b.Digest.Validate() != nil || BlobDataPath(b.Digest) != blob {
				t.Fatalf("WalkBlobs read %q as %q", blob, b.Digest)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		err = s.WalkLayerLinks(ctx, func(name string, d digest.Digest, _ time.Time) error {
			if d.Validate() != nil || !ValidName(name) || LayerLinkPath(name, d) != link {
				t.Fatalf("WalkLayerLinks read %q as %q, %q", link, name, d)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	})
}
