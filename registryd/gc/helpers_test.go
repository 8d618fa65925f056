package gc_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/berth-dev/berth/registryd/handlers"
	"github.com/berth-dev/berth/registryd/storage/driver"
	"github.com/berth-dev/berth/registryd/storage/driver/filesystem"
)

// client speaks just enough of the distribution API to build stores on
// registryd and on the Distribution registry alike. Manifests are PUT raw
// (no referrers tag fallback), so both registries store the same files.
type client struct {
	t    testing.TB
	base string
}

func (c *client) do(method, url, contentType string, body []byte, want ...int) *http.Response {
	c.t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		c.t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	req.Header.Set("Accept", strings.Join([]string{mtOCIManifest, mtOCIIndex, mtDockerManifest, mtDockerList}, ","))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	if len(want) > 0 && !slices.Contains(want, resp.StatusCode) {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		c.t.Fatalf("%s %s: status %d, want %v: %s", method, url, resp.StatusCode, want, b)
	}
	return resp
}

func (c *client) putBlob(repo string, content []byte) digest.Digest {
	c.t.Helper()
	d := digest.FromBytes(content)
	resp := c.do(http.MethodPost, c.base+"/v2/"+repo+"/blobs/uploads/", "", nil, http.StatusAccepted)
	resp.Body.Close()
	loc := resp.Header.Get("Location")
	if !strings.HasPrefix(loc, "http") {
		loc = c.base + loc
	}
	sep := "?"
	if strings.Contains(loc, "?") {
		sep = "&"
	}
	resp = c.do(http.MethodPut, loc+sep+"digest="+d.String(), "application/octet-stream", content, http.StatusCreated)
	resp.Body.Close()
	return d
}

func (c *client) putManifest(repo, ref, mediaType string, content []byte) {
	c.t.Helper()
	resp := c.do(http.MethodPut, c.base+"/v2/"+repo+"/manifests/"+ref, mediaType, content, http.StatusCreated)
	resp.Body.Close()
}

func (c *client) deleteManifest(repo, ref string) {
	c.t.Helper()
	resp := c.do(http.MethodDelete, c.base+"/v2/"+repo+"/manifests/"+ref, "", nil, http.StatusAccepted)
	resp.Body.Close()
}

func (c *client) get(kind, repo, ref string) ([]byte, int) {
	c.t.Helper()
	resp := c.do(http.MethodGet, c.base+"/v2/"+repo+"/"+kind+"/"+ref, "", nil)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatal(err)
	}
	return b, resp.StatusCode
}

const (
	mtOCIManifest    = "application/vnd.oci.image.manifest.v1+json"
	mtOCIIndex       = "application/vnd.oci.image.index.v1+json"
	mtDockerManifest = "application/vnd.docker.distribution.manifest.v2+json"
	mtDockerList     = "application/vnd.docker.distribution.manifest.list.v2+json"
)

type desc struct {
	MediaType    string            `json:"mediaType"`
	Digest       digest.Digest     `json:"digest"`
	Size         int64             `json:"size"`
	ArtifactType string            `json:"artifactType,omitempty"`
	Platform     map[string]string `json:"platform,omitempty"`
}

type manifestJSON struct {
	SchemaVersion int    `json:"schemaVersion"`
	MediaType     string `json:"mediaType"`
	ArtifactType  string `json:"artifactType,omitempty"`
	Config        *desc  `json:"config,omitempty"`
	Layers        []desc `json:"layers,omitempty"`
	Manifests     []desc `json:"manifests,omitempty"`
	Subject       *desc  `json:"subject,omitempty"`
}

// manifestRec is what the model knows of one pushed manifest.
type manifestRec struct {
	digest    digest.Digest
	mediaType string
	content   []byte
	blobs     []digest.Digest // config and layers
	children  []digest.Digest
	subject   digest.Digest
}

type repoModel struct {
	name      string
	manifests map[digest.Digest]*manifestRec
	order     []digest.Digest // push order, for deterministic picks
	tags      map[string]digest.Digest
	blobs     map[digest.Digest][]byte
}

// model is a registry built by random operations, with what the test
// expects to survive a collection computed independently of package gc.
type model struct {
	r     *rand.Rand
	c     *client
	repos []*repoModel
	// sharedLayers lets images of different repositories share layers.
	sharedLayers [][]byte
	// allowShared enables cross-repository layer sharing.
	allowShared bool
}

func newModel(c *client, seed uint64, repos int, allowShared bool) *model {
	m := &model{r: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), c: c, allowShared: allowShared}
	for i := range repos {
		name := fmt.Sprintf("repo%d", i)
		if i%2 == 1 {
			name = fmt.Sprintf("team/app%d", i)
		}
		m.repos = append(m.repos, &repoModel{name: name, manifests: map[digest.Digest]*manifestRec{}, tags: map[string]digest.Digest{}, blobs: map[digest.Digest][]byte{}})
	}
	return m
}

func (m *model) randomBytes(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(m.r.UintN(256))
	}
	return b
}

func (m *model) blob(repo *repoModel, content []byte) desc {
	d := m.c.putBlob(repo.name, content)
	repo.blobs[d] = content
	return desc{Digest: d, Size: int64(len(content))}
}

func (m *model) putManifest(repo *repoModel, mj manifestJSON, tag string) *manifestRec {
	content, err := json.Marshal(mj)
	if err != nil {
		m.c.t.Fatal(err)
	}
	rec := &manifestRec{digest: digest.FromBytes(content), mediaType: mj.MediaType, content: content}
	if mj.Config != nil {
		rec.blobs = append(rec.blobs, mj.Config.Digest)
	}
	for _, l := range mj.Layers {
		rec.blobs = append(rec.blobs, l.Digest)
	}
	for _, ch := range mj.Manifests {
		rec.children = append(rec.children, ch.Digest)
	}
	if mj.Subject != nil {
		rec.subject = mj.Subject.Digest
	}
	ref := rec.digest.String()
	if tag != "" {
		ref = tag
	}
	m.c.putManifest(repo.name, ref, mj.MediaType, content)
	if repo.manifests[rec.digest] == nil {
		repo.order = append(repo.order, rec.digest)
	}
	repo.manifests[rec.digest] = rec
	if tag != "" {
		repo.tags[tag] = rec.digest
	}
	return rec
}

func (m *model) maybeTag(p float64) string {
	if m.r.Float64() < p {
		return fmt.Sprintf("t%d", m.r.IntN(6))
	}
	return ""
}

func (m *model) pushImage(repo *repoModel, tag string) *manifestRec {
	docker := m.r.IntN(3) == 0
	mt, cmt, lmt := mtOCIManifest, "application/vnd.oci.image.config.v1+json", "application/vnd.oci.image.layer.v1.tar"
	if docker {
		mt, cmt, lmt = mtDockerManifest, "application/vnd.docker.container.image.v1+json", "application/vnd.docker.image.rootfs.diff.tar.gzip"
	}
	cfg := m.blob(repo, fmt.Appendf(nil, `{"architecture":"amd64","os":"linux","nonce":%d}`, m.r.Uint64()))
	cfg.MediaType = cmt
	mj := manifestJSON{SchemaVersion: 2, MediaType: mt, Config: &cfg}
	for range 1 + m.r.IntN(3) {
		var content []byte
		if m.allowShared && len(m.sharedLayers) > 0 && m.r.IntN(4) == 0 {
			content = m.sharedLayers[m.r.IntN(len(m.sharedLayers))]
		} else {
			content = m.randomBytes(16 + m.r.IntN(200))
			m.sharedLayers = append(m.sharedLayers, content)
		}
		l := m.blob(repo, content)
		l.MediaType = lmt
		mj.Layers = append(mj.Layers, l)
	}
	return m.putManifest(repo, mj, tag)
}

func (m *model) pick(repo *repoModel, ok func(*manifestRec) bool) *manifestRec {
	var cands []*manifestRec
	for _, d := range repo.order {
		if rec := repo.manifests[d]; rec != nil && ok(rec) {
			cands = append(cands, rec)
		}
	}
	if len(cands) == 0 {
		return nil
	}
	return cands[m.r.IntN(len(cands))]
}

func (m *model) pushIndex(repo *repoModel, tag string) {
	docker := m.r.IntN(3) == 0
	mj := manifestJSON{SchemaVersion: 2, MediaType: mtOCIIndex}
	if docker {
		mj.MediaType = mtDockerList
	}
	seen := map[digest.Digest]bool{}
	for range 1 + m.r.IntN(3) {
		ch := m.pick(repo, func(r *manifestRec) bool {
			if docker {
				// A Docker manifest list holds Docker manifests only.
				return r.mediaType == mtDockerManifest
			}
			return r.subject == ""
		})
		if ch == nil || seen[ch.digest] {
			continue
		}
		seen[ch.digest] = true
		mj.Manifests = append(mj.Manifests, desc{MediaType: ch.mediaType, Digest: ch.digest, Size: int64(len(ch.content)),
			Platform: map[string]string{"os": "linux", "architecture": fmt.Sprintf("arch%d", len(mj.Manifests))}})
	}
	if len(mj.Manifests) == 0 {
		return
	}
	m.putManifest(repo, mj, tag)
}

func (m *model) pushReferrer(repo *repoModel, tag string) *manifestRec {
	subject := m.pick(repo, func(r *manifestRec) bool { return r.mediaType != mtDockerManifest && r.mediaType != mtDockerList })
	if subject == nil {
		return nil
	}
	return m.pushReferrerOf(repo, subject, tag)
}

func (m *model) pushReferrerOf(repo *repoModel, subject *manifestRec, tag string) *manifestRec {
	cfg := m.blob(repo, fmt.Appendf(nil, `{"nonce":%d}`, m.r.Uint64()))
	cfg.MediaType = "application/vnd.example.config+json"
	l := m.blob(repo, m.randomBytes(8+m.r.IntN(64)))
	l.MediaType = "application/vnd.example.signature"
	return m.putManifest(repo, manifestJSON{
		SchemaVersion: 2, MediaType: mtOCIManifest, ArtifactType: "application/vnd.example.signature",
		Config: &cfg, Layers: []desc{l},
		Subject: &desc{MediaType: subject.mediaType, Digest: subject.digest, Size: int64(len(subject.content))},
	}, tag)
}

func (m *model) deleteTag(repo *repoModel) {
	tags := sortedKeys(repo.tags)
	if len(tags) == 0 {
		return
	}
	tag := tags[m.r.IntN(len(tags))]
	m.c.deleteManifest(repo.name, tag)
	delete(repo.tags, tag)
}

func (m *model) deleteManifest(repo *repoModel) {
	rec := m.pick(repo, func(*manifestRec) bool { return true })
	if rec == nil {
		return
	}
	m.c.deleteManifest(repo.name, rec.digest.String())
	delete(repo.manifests, rec.digest)
	for t, d := range repo.tags {
		if d == rec.digest {
			delete(repo.tags, t)
		}
	}
}

// build runs ops random operations per repository. Each repository starts
// with a tagged image, so every repository has a tags directory, and the
// first ends with a tagged image carrying a signature that is itself
// signed, so every store has referrers of a live subject.
func (m *model) build(ops int) {
	for _, repo := range m.repos {
		m.pushImage(repo, "latest")
	}
	defer func() {
		repo := m.repos[0]
		img := m.pushImage(repo, "signed")
		for img.mediaType != mtOCIManifest {
			img = m.pushImage(repo, "signed")
		}
		m.pushReferrerOf(repo, m.pushReferrerOf(repo, img, ""), "")
	}()
	for range ops * len(m.repos) {
		repo := m.repos[m.r.IntN(len(m.repos))]
		switch x := m.r.IntN(100); {
		case x < 30:
			m.pushImage(repo, m.maybeTag(0.5))
		case x < 45:
			m.pushIndex(repo, m.maybeTag(0.5))
		case x < 68:
			m.pushReferrer(repo, m.maybeTag(0.1))
		case x < 78:
			m.deleteTag(repo)
		case x < 88:
			m.deleteManifest(repo)
		default:
			m.blob(repo, m.randomBytes(32)) // uploaded, never referenced
		}
	}
}

// live returns, per repository, the manifests a collection keeps, and the
// digests it keeps in the blob store. With referrers false the subject
// relation keeps nothing (Distribution's rules).
func (m *model) live(deleteUntagged, referrers bool) (map[string]map[digest.Digest]bool, map[digest.Digest]bool) {
	return m.liveAfterRetention(deleteUntagged, referrers, nil)
}

// liveAfterRetention is live once retention deleted tags: orphaned names,
// per repository, the manifests only deleted tags pointed at. Without
// deleteUntagged every other manifest is a root, except untagged referrers
// of a manifest of the repository, which live only through their subject.
func (m *model) liveAfterRetention(deleteUntagged, referrers bool, orphaned map[string]map[digest.Digest]bool) (map[string]map[digest.Digest]bool, map[digest.Digest]bool) {
	perRepo := map[string]map[digest.Digest]bool{}
	blobs := map[digest.Digest]bool{}
	for _, repo := range m.repos {
		live := map[digest.Digest]bool{}
		var stack []digest.Digest
		if deleteUntagged {
			for _, d := range repo.tags {
				stack = append(stack, d)
			}
		} else if len(orphaned[repo.name]) > 0 {
			tagged := map[digest.Digest]bool{}
			for _, d := range repo.tags {
				tagged[d] = true
			}
			for d, rec := range repo.manifests {
				if orphaned[repo.name][d] || (!tagged[d] && rec.subject != "" && repo.manifests[rec.subject] != nil) {
					continue
				}
				stack = append(stack, d)
			}
		} else {
			stack = slices.Collect(func(yield func(digest.Digest) bool) {
				for d := range repo.manifests {
					if !yield(d) {
						return
					}
				}
			})
		}
		for len(stack) > 0 {
			d := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			rec := repo.manifests[d]
			if live[d] || rec == nil {
				continue
			}
			live[d] = true
			blobs[d] = true
			for _, b := range rec.blobs {
				blobs[b] = true
			}
			for _, ch := range rec.children {
				blobs[ch] = true
				stack = append(stack, ch)
			}
			if referrers {
				for _, other := range repo.manifests {
					if other.subject == d {
						stack = append(stack, other.digest)
					}
				}
			}
		}
		perRepo[repo.name] = live
	}
	return perRepo, blobs
}

func sortedKeys[K ~string, V any](m map[K]V) []K {
	keys := make([]K, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// newRegistryd serves a filesystem store under a temporary directory with
// registryd's handler, and returns its root directory.
func newRegistryd(t testing.TB) (*client, driver.StorageDriver, string) {
	t.Helper()
	root := tempDir(t)
	drv, err := filesystem.New(filesystem.Parameters{RootDirectory: root})
	if err != nil {
		t.Fatal(err)
	}
	return serve(t, drv), drv, root
}

// tempDir is a temporary directory for a store, on /dev/shm when there is
// one: the filesystem driver fsyncs every write, which tmpfs makes free.
func tempDir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("/dev/shm", "berth-gc-test-")
	if err != nil {
		return t.TempDir()
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// serve serves drv with registryd's handler.
func serve(t testing.TB, drv driver.StorageDriver) *client {
	t.Helper()
	srv := httptest.NewServer(handlers.New(drv, handlers.WithDeleteEnabled(true)))
	t.Cleanup(srv.Close)
	return &client{t: t, base: srv.URL}
}

// copyStore copies the store below root to a new directory and opens a
// filesystem driver on the copy.
func copyStore(t testing.TB, root string) (driver.StorageDriver, string) {
	t.Helper()
	dst := tempDir(t)
	copyTree(t, root, dst)
	drv, err := filesystem.New(filesystem.Parameters{RootDirectory: dst})
	if err != nil {
		t.Fatal(err)
	}
	return drv, dst
}

// files returns every regular file below root with its content.
func files(t testing.TB, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		out[filepath.ToSlash(rel)] = string(b)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// copyTree copies the regular files below src to dst.
func copyTree(t testing.TB, src, dst string) {
	t.Helper()
	for rel, content := range files(t, src) {
		p := filepath.Join(dst, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// layoutDigest extracts the digest a layout file is named after, and its
// kind: "blob", "revision", "layer", "tagindex", "tagcurrent" or "other".
func layoutDigest(rel string) (string, string, digest.Digest) {
	parts := strings.Split(rel, "/")
	join := func(alg, hex string) digest.Digest { return digest.Digest(alg + ":" + hex) }
	n := len(parts)
	switch {
	case n >= 4 && parts[n-1] == "data" && slices.Contains(parts, "blobs"):
		return "", "blob", join(parts[n-4], parts[n-2])
	case n >= 4 && parts[n-1] == "link" && parts[n-4] == "revisions":
		return repoOf(parts, "_manifests"), "revision", join(parts[n-3], parts[n-2])
	case n >= 4 && parts[n-1] == "link" && parts[n-4] == "_layers":
		return repoOf(parts, "_layers"), "layer", join(parts[n-3], parts[n-2])
	case n >= 4 && parts[n-1] == "link" && parts[n-4] == "index":
		return repoOf(parts, "_manifests"), "tagindex", join(parts[n-3], parts[n-2])
	case n >= 2 && parts[n-1] == "link" && parts[n-2] == "current":
		return repoOf(parts, "_manifests"), "tagcurrent", ""
	}
	return "", "other", ""
}

func repoOf(parts []string, marker string) string {
	i := slices.Index(parts, "repositories")
	j := slices.Index(parts, marker)
	if i < 0 || j < i {
		return ""
	}
	return strings.Join(parts[i+1:j], "/")
}

var ctx = context.Background()
