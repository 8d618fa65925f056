package handlers

import (
	"bytes"
	"crypto/sha256"
	"crypto/sha512"
	"encoding"
	"encoding/hex"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/berth-dev/berth/registryd/storage/driver/filesystem"
)

// fsEnv is a handler over a filesystem driver in a temporary directory.
func fsEnv(t *testing.T, opts ...Option) (*env, string) {
	t.Helper()
	root := t.TempDir()
	drv, err := filesystem.New(filesystem.Parameters{RootDirectory: root})
	if err != nil {
		t.Fatal(err)
	}
	return &env{t: t, drv: drv, h: New(drv, opts...)}, root
}

// files returns every regular file below root/docker/registry/v2 with its
// content, keyed by slash path relative to that directory.
func files(t *testing.T, root string) map[string]string {
	t.Helper()
	base := filepath.Join(root, "docker", "registry", "v2")
	out := map[string]string{}
	err := filepath.WalkDir(base, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(base, p)
		out[filepath.ToSlash(rel)] = string(b)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func blobFile(d digest.Digest) string {
	return "blobs/" + string(d.Algorithm()) + "/" + d.Encoded()[:2] + "/" + d.Encoded() + "/data"
}

func link(repo, kind string, d digest.Digest) string {
	return "repositories/" + repo + "/" + kind + "/" + string(d.Algorithm()) + "/" + d.Encoded() + "/link"
}

func assertFiles(t *testing.T, got, want map[string]string) {
	t.Helper()
	for k, v := range want {
		if g, ok := got[k]; !ok {
			t.Errorf("missing file %s", k)
		} else if g != v {
			t.Errorf("%s = %q, want %q", k, g, v)
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("unexpected file %s", k)
		}
	}
}

// TestLayoutOnDisk pushes through the API onto the filesystem driver and
// checks every file Distribution would have written, byte for byte.
func TestLayoutOnDisk(t *testing.T) {
	e, root := fsEnv(t, WithDeleteEnabled(true))
	repo := "team/app"

	// An upload in progress: data, startedat and the SHA-256 state after
	// the bytes received, in crypto/sha256's binary form (Distribution's),
	// nothing else.
	session := e.startSession(repo)
	id := session[strings.LastIndex(session, "/")+1:]
	layer := []byte("layer bytes")
	if rec := e.do(req{method: "PATCH", path: session, body: layer[:5], headers: map[string]string{"Content-Range": "0-4"}}); rec.Code != 202 {
		t.Fatalf("patch: %d", rec.Code)
	}
	during := files(t, root)
	started, ok := during["repositories/"+repo+"/_uploads/"+id+"/startedat"]
	if !ok {
		t.Fatalf("no startedat: %v", during)
	}
	if ts, err := time.Parse(time.RFC3339, started); err != nil || ts.Location() != time.UTC || strings.Contains(started, ".") || !strings.HasSuffix(started, "Z") {
		t.Fatalf("startedat %q is not RFC 3339 UTC: %v", started, err)
	}
	h := sha256.New()
	h.Write([]byte("layer"))
	state, err := h.(encoding.BinaryMarshaler).MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	assertFiles(t, during, map[string]string{
		"repositories/" + repo + "/_uploads/" + id + "/data":                "layer",
		"repositories/" + repo + "/_uploads/" + id + "/startedat":           started,
		"repositories/" + repo + "/_uploads/" + id + "/hashstates/sha256/5": string(state),
	})
	layerD := digest.FromBytes(layer)
	if rec := e.do(req{method: "PUT", path: session + "?digest=" + layerD.String(), body: layer[5:]}); rec.Code != 201 {
		t.Fatalf("commit: %d %s", rec.Code, rec.Body)
	}

	cfg := []byte(`{"os":"linux"}`)
	cfgD := e.pushBlob(repo, cfg)
	m := mustJSON(t, map[string]any{"schemaVersion": 2, "mediaType": ociManifest,
		"config": descOf("application/vnd.oci.image.config.v1+json", cfg),
		"layers": []desc{descOf("application/vnd.oci.image.layer.v1.tar", layer)}})
	mD := e.pushManifest(repo, "v1", ociManifest, m)
	sum := sha512.Sum512(layer)
	layer512 := digest.Digest("sha512:" + hex.EncodeToString(sum[:]))
	if rec := e.do(req{method: "POST", path: "/v2/" + repo + "/blobs/uploads/?digest=" + layer512.String(), body: layer}); rec.Code != 201 {
		t.Fatalf("sha512 push: %d", rec.Code)
	}

	want := map[string]string{
		blobFile(layerD):                       string(layer),
		blobFile(layer512):                     string(layer),
		blobFile(cfgD):                         string(cfg),
		blobFile(mD):                           string(m),
		link(repo, "_layers", layerD):          layerD.String(),
		link(repo, "_layers", layer512):        layer512.String(),
		link(repo, "_layers", cfgD):            cfgD.String(),
		link(repo, "_manifests/revisions", mD): mD.String(),
		"repositories/" + repo + "/_manifests/tags/v1/current/link":                           mD.String(),
		"repositories/" + repo + "/_manifests/tags/v1/index/sha256/" + mD.Encoded() + "/link": mD.String(),
	}
	assertFiles(t, files(t, root), want)
	if _, err := os.Stat(filepath.Join(root, "docker/registry/v2/repositories", repo, "_uploads", id)); !os.IsNotExist(err) {
		t.Errorf("upload directory left after commit: %v", err)
	}

	// Retagging keeps the old digest in the tag's index.
	m2 := mustJSON(t, map[string]any{"schemaVersion": 2, "mediaType": ociManifest,
		"config": descOf("application/vnd.oci.image.config.v1+json", cfg), "layers": []desc{}})
	m2D := e.pushManifest(repo, "v1", ociManifest, m2)
	want[blobFile(m2D)] = string(m2)
	want[link(repo, "_manifests/revisions", m2D)] = m2D.String()
	want["repositories/"+repo+"/_manifests/tags/v1/current/link"] = m2D.String()
	want["repositories/"+repo+"/_manifests/tags/v1/index/sha256/"+m2D.Encoded()+"/link"] = m2D.String()
	assertFiles(t, files(t, root), want)

	// Deleting the tag removes the whole tag directory, history included;
	// deleting a manifest removes its revision link; blobs stay for GC.
	if rec := e.do(req{method: "DELETE", path: "/v2/" + repo + "/manifests/v1"}); rec.Code != 202 {
		t.Fatalf("untag: %d", rec.Code)
	}
	for k := range want {
		if strings.Contains(k, "/tags/v1/") {
			delete(want, k)
		}
	}
	if rec := e.do(req{method: "DELETE", path: "/v2/" + repo + "/manifests/" + mD.String()}); rec.Code != 202 {
		t.Fatalf("delete manifest: %d", rec.Code)
	}
	delete(want, link(repo, "_manifests/revisions", mD))
	if rec := e.do(req{method: "DELETE", path: "/v2/" + repo + "/blobs/" + cfgD.String()}); rec.Code != 202 {
		t.Fatalf("delete blob: %d", rec.Code)
	}
	delete(want, link(repo, "_layers", cfgD))
	assertFiles(t, files(t, root), want)
	if _, err := os.Stat(filepath.Join(root, "docker/registry/v2/repositories", repo, "_manifests/tags/v1")); !os.IsNotExist(err) {
		t.Errorf("tag directory left after untag: %v", err)
	}
}

// TestServesDistributionTree writes a tree the way Distribution does —
// including a sha512 layer link whose target is the sha256 canonical blob,
// and an upload with hash states — and serves it.
func TestServesDistributionTree(t *testing.T) {
	e, root := fsEnv(t, WithDeleteEnabled(true))
	base := filepath.Join(root, "docker", "registry", "v2")
	write := func(rel, content string) {
		t.Helper()
		p := filepath.Join(base, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o777); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o666); err != nil {
			t.Fatal(err)
		}
	}
	repo := "library/busybox"
	layer := "a layer Distribution wrote"
	layerD := digest.FromString(layer)
	sum := sha512.Sum512([]byte(layer))
	layer512 := digest.Digest("sha512:" + hex.EncodeToString(sum[:]))
	cfg := `{"architecture":"amd64","os":"linux"}`
	cfgD := digest.FromString(cfg)
	m := string(mustJSON(t, map[string]any{"schemaVersion": 2, "mediaType": dockerV2,
		"config": desc{MediaType: "application/vnd.docker.container.image.v1+json", Digest: cfgD, Size: int64(len(cfg))},
		"layers": []desc{{MediaType: "application/vnd.docker.image.rootfs.diff.tar.gzip", Digest: layerD, Size: int64(len(layer))}}}))
	mD := digest.FromString(m)
	write(blobFile(layerD), layer)
	write(blobFile(cfgD), cfg)
	write(blobFile(mD), m)
	write(link(repo, "_layers", layerD), layerD.String())
	write(link(repo, "_layers", layer512), layerD.String()) // Distribution's alias link
	write(link(repo, "_layers", cfgD), cfgD.String())
	write(link(repo, "_manifests/revisions", mD), mD.String())
	write("repositories/"+repo+"/_manifests/tags/1.36/current/link", mD.String())
	write("repositories/"+repo+"/_manifests/tags/1.36/index/sha256/"+mD.Encoded()+"/link", mD.String())
	uploadID := "5f0c1c7e-7b1a-4c8e-9a7e-0d2c3b4a5f60"
	write("repositories/"+repo+"/_uploads/"+uploadID+"/data", "partial ")
	write("repositories/"+repo+"/_uploads/"+uploadID+"/startedat", "2024-05-01T10:00:00Z")
	write("repositories/"+repo+"/_uploads/"+uploadID+"/hashstates/sha256/8", "opaque hash state")

	get := func(p string, h map[string]string) *bytes.Buffer {
		t.Helper()
		rec := e.do(req{method: "GET", path: p, headers: h})
		if rec.Code != http.StatusOK {
			t.Fatalf("GET %s: %d %s", p, rec.Code, rec.Body)
		}
		return rec.Body
	}
	if got := get("/v2/"+repo+"/manifests/1.36", map[string]string{"Accept": dockerV2}).String(); got != m {
		t.Fatalf("manifest %q", got)
	}
	if got := get("/v2/"+repo+"/blobs/"+layerD.String(), nil).String(); got != layer {
		t.Fatalf("layer %q", got)
	}
	if got := get("/v2/"+repo+"/blobs/"+layer512.String(), nil).String(); got != layer {
		t.Fatalf("layer by sha512 alias %q", got)
	}
	if got := get("/v2/"+repo+"/tags/list", nil).String(); got != `{"name":"library/busybox","tags":["1.36"]}` {
		t.Fatalf("tags %s", got)
	}
	if got := get("/v2/_catalog", nil).String(); got != `{"repositories":["library/busybox"]}` {
		t.Fatalf("catalog %s", got)
	}
	// Resume Distribution's upload: its hash state does not decode, so
	// registryd re-hashes the data.
	session := "/v2/" + repo + "/blobs/uploads/" + uploadID
	if rec := e.do(req{method: "GET", path: session}); rec.Code != 204 || rec.Header().Get("Range") != "0-7" {
		t.Fatalf("status of Distribution's upload: %d %v", rec.Code, rec.Header())
	}
	full := "partial and finished"
	fullD := digest.FromString(full)
	if rec := e.do(req{method: "PUT", path: session + "?digest=" + fullD.String(), body: []byte("and finished"), headers: map[string]string{"Content-Range": "8-19"}}); rec.Code != 201 {
		t.Fatalf("finish Distribution's upload: %d %s", rec.Code, rec.Body)
	}
	if got := get("/v2/"+repo+"/blobs/"+fullD.String(), nil).String(); got != full {
		t.Fatalf("resumed blob %q", got)
	}
	if _, err := os.Stat(filepath.Join(base, "repositories", repo, "_uploads", uploadID)); !os.IsNotExist(err) {
		t.Fatalf("upload (with its hash states) not removed: %v", err)
	}
	keys := slices.Sorted(func(yield func(string) bool) {
		for k := range files(t, root) {
			if !yield(k) {
				return
			}
		}
	})
	if !slices.Contains(keys, blobFile(fullD)) || !slices.Contains(keys, link(repo, "_layers", fullD)) {
		t.Fatalf("resumed blob not laid out: %v", keys)
	}
}
