// Package objstore runs the registryd binary on the object-store drivers —
// azure, s3 and gcs, against Azurite, versitygw and fake-gcs-server on
// loopback — with go-containerregistry as the client, and checks what a
// user of each relies on: push, pull byte for byte, delete, garbage
// collection (`registryd garbage-collect --delete-untagged`), pull again;
// redirects to signed URLs, redirect.disable and the redirect storage
// middleware; an upload whose requests land on two registryd processes on
// one bucket; and registryd on the configuration reference's own azure
// example.
package objstore

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/berth-dev/berth/internal/testutil"
	"github.com/berth-dev/berth/registryd/gc"
)

func TestMain(m *testing.M) { testutil.Main(m) }

// start runs registryd on the storage section (plus storageExtra, more
// keys under storage:, and extra, top-level keys).
func start(t *testing.T, section, storageExtra, extra string) *testutil.Registry {
	t.Helper()
	return testutil.StartRegistry(t, "registryd", testutil.Registryd(t), func(addr string) string {
		return testutil.RegistryConfig(section+storageExtra, addr, extra)
	})
}

// recorder is an http.RoundTripper that remembers every request's host
// and the status it got, so a test can tell a redirect was followed.
type recorder struct {
	mu    sync.Mutex
	seen  []string // "STATUS host"
	inner http.RoundTripper
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := r.inner.RoundTrip(req)
	if err == nil {
		r.mu.Lock()
		r.seen = append(r.seen, fmt.Sprintf("%d %s", resp.StatusCode, req.URL.Host))
		r.mu.Unlock()
	}
	return resp, err
}

func (r *recorder) count(prefix string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, s := range r.seen {
		if strings.HasPrefix(s, prefix) {
			n++
		}
	}
	return n
}

func newRecorder() *recorder {
	return &recorder{inner: http.DefaultTransport.(*http.Transport).Clone()}
}

func ref(t *testing.T, reg *testutil.Registry, s string) name.Reference {
	t.Helper()
	r, err := name.ParseReference(reg.Addr+"/"+s, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// image is a random image with a layer of more than 10 MiB (the s3
// driver's part size, so the upload is multipart) and two small ones.
func image(t *testing.T) v1.Image {
	t.Helper()
	img, err := random.Image(11<<20, 1)
	if err != nil {
		t.Fatal(err)
	}
	small, err := random.Image(2048, 2)
	if err != nil {
		t.Fatal(err)
	}
	layers, _ := small.Layers()
	for _, l := range layers {
		if img, err = mutate.AppendLayers(img, l); err != nil {
			t.Fatal(err)
		}
	}
	return img
}

// pullAndCompare pulls r and checks manifest and every blob byte for byte
// against img.
func pullAndCompare(t *testing.T, r name.Reference, img v1.Image, opts ...remote.Option) {
	t.Helper()
	got, err := remote.Image(r, opts...)
	if err != nil {
		t.Fatalf("pull %s: %v", r, err)
	}
	wantRaw, _ := img.RawManifest()
	gotRaw, err := got.RawManifest()
	if err != nil || !bytes.Equal(gotRaw, wantRaw) {
		t.Fatalf("pull %s: manifest differs (%v)", r, err)
	}
	wantCfg, _ := img.RawConfigFile()
	gotCfg, err := got.RawConfigFile()
	if err != nil || !bytes.Equal(gotCfg, wantCfg) {
		t.Fatalf("pull %s: config differs (%v)", r, err)
	}
	layers, _ := got.Layers()
	for _, l := range layers {
		d, _ := l.Digest()
		rc, err := l.Compressed()
		if err != nil {
			t.Fatalf("pull %s: layer %s: %v", r, d, err)
		}
		h := sha256.New()
		n, err := io.Copy(h, rc)
		rc.Close()
		if err != nil || "sha256:"+hex.EncodeToString(h.Sum(nil)) != d.String() {
			t.Fatalf("pull %s: layer %s: %d bytes, digest matches %v, err %v", r, d, n, "sha256:"+hex.EncodeToString(h.Sum(nil)) == d.String(), err)
		}
	}
}

func blobStatus(t *testing.T, reg *testutil.Registry, repo string, d v1.Hash) int {
	t.Helper()
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Head(reg.URL("/v2/" + repo + "/blobs/" + d.String()))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func blobs(t *testing.T, img v1.Image) []v1.Hash {
	t.Helper()
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	out := []v1.Hash{m.Config.Digest}
	for _, l := range m.Layers {
		out = append(out, l.Digest)
	}
	return out
}

// gcArgs are the garbage-collect flags of the tests. The registryd under
// test serves nothing while it runs (it is stopped first), hence
// --allow-writable; --grace-period 0 makes the content just pushed
// collectable (the default keeps anything younger than an hour).
var gcArgs = []string{"garbage-collect", "--delete-untagged", "--grace-period", "0", "--allow-writable", "--json"}

// collect runs `registryd garbage-collect` on the storage section.
func collect(t *testing.T, section string) gc.Summary {
	t.Helper()
	cfg := filepath.Join(t.TempDir(), "config.yml")
	if err := os.WriteFile(cfg, []byte(testutil.RegistryConfig(section, "127.0.0.1:0", "")), 0o600); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(testutil.Registryd(t), append(gcArgs, cfg)...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("garbage-collect: %v\n%s", err, stderr.String())
	}
	var sum gc.Summary
	if err := json.Unmarshal(stdout.Bytes(), &sum); err != nil {
		t.Fatalf("garbage-collect printed %q: %v", stdout.String(), err)
	}
	return sum
}

// TestPushPullDeleteCollectPull pushes three images (one tagged, one
// tagged then deleted by digest, one pushed by digest only), collects with
// --delete-untagged, and checks that exactly the tagged image's content is
// left and still pulls byte for byte.
func TestPushPullDeleteCollectPull(t *testing.T) {
	for _, store := range testutil.ObjectStorages() {
		t.Run(store.Name, func(t *testing.T) {
			section := store.Section(t)
			reg := start(t, section, "", "")
			keep, drop, untagged := image(t), image(t), image(t)
			for tag, img := range map[string]v1.Image{"keep": keep, "drop": drop} {
				if err := remote.Write(ref(t, reg, "app:"+tag), img); err != nil {
					t.Fatalf("push %s: %v", tag, err)
				}
			}
			ud, _ := untagged.Digest()
			if err := remote.Write(ref(t, reg, "app@"+ud.String()), untagged); err != nil {
				t.Fatalf("push by digest: %v", err)
			}
			for tag, img := range map[string]v1.Image{"keep": keep, "drop": drop} {
				pullAndCompare(t, ref(t, reg, "app:"+tag), img)
			}
			pullAndCompare(t, ref(t, reg, "app@"+ud.String()), untagged)
			dd, _ := drop.Digest()
			if err := remote.Delete(ref(t, reg, "app@"+dd.String())); err != nil {
				t.Fatalf("delete: %v", err)
			}
			reg.Stop(t)

			sum := collect(t, section)
			// Marked: the tagged manifest and its blobs. Deleted: the
			// untagged manifest, and the blobs (manifest included) of it
			// and of the deleted one.
			perImage := 1 + len(blobs(t, keep))
			if sum.ManifestsMarked != 1 || sum.ManifestsDeleted != 1 || sum.BlobsMarked != perImage || sum.BlobsDeleted != 2*perImage {
				t.Errorf("summary: %d manifests marked, %d deleted; %d blobs marked, %d deleted; want 1, 1; %d, %d",
					sum.ManifestsMarked, sum.ManifestsDeleted, sum.BlobsMarked, sum.BlobsDeleted, perImage, 2*perImage)
			}

			reg = start(t, section, "", "")
			pullAndCompare(t, ref(t, reg, "app:keep"), keep)
			for _, img := range []v1.Image{drop, untagged} {
				for _, d := range blobs(t, img) {
					if got := blobStatus(t, reg, "app", d); got != http.StatusNotFound {
						t.Errorf("blob %s of a collected image: HEAD %d, want 404", d, got)
					}
				}
			}
			if _, err := remote.Image(ref(t, reg, "app@"+ud.String())); err == nil {
				t.Error("the untagged image still pulls after --delete-untagged")
			}
			if sum := collect(t, section); sum.ManifestsDeleted+sum.BlobsDeleted+sum.LayerLinksDeleted != 0 {
				t.Errorf("a second collection deleted more: %+v", sum)
			}
		})
	}
}

// noFollow is a client that shows redirects instead of following them.
var noFollow = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// pushBlob pushes content to repo in one POST and PUT and returns its digest.
func pushBlob(t *testing.T, reg *testutil.Registry, repo string, content []byte) string {
	t.Helper()
	d := fmt.Sprintf("sha256:%x", sha256.Sum256(content))
	resp, err := http.Post(reg.URL("/v2/"+repo+"/blobs/uploads/"), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, err := resp.Location()
	if err != nil {
		t.Fatalf("POST upload: %s, no Location: %v", resp.Status, err)
	}
	q := loc.Query()
	q.Set("digest", d)
	loc.RawQuery = q.Encode()
	req, _ := http.NewRequest(http.MethodPut, loc.String(), bytes.NewReader(content))
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("PUT upload: %s", resp.Status)
	}
	return d
}

func get(t *testing.T, client *http.Client, method, url string, hdr ...string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest(method, url, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

// TestRedirects checks what a blob GET and HEAD answer on each object
// store: by default a 307 to a signed URL of the emulator, over plain
// http, that serves the blob; with storage.redirect.disable the bytes
// themselves; with the redirect storage middleware a 307 to its baseurl.
func TestRedirects(t *testing.T) {
	content := bytes.Repeat([]byte("redirect me "), 1000)
	for _, store := range testutil.ObjectStorages() {
		t.Run(store.Name, func(t *testing.T) {
			section := store.Section(t)

			reg := start(t, section, "", "")
			d := pushBlob(t, reg, "lib/app", content)
			blobURL := reg.URL("/v2/lib/app/blobs/" + d)
			for _, method := range []string{http.MethodGet, http.MethodHead} {
				resp, _ := get(t, noFollow, method, blobURL)
				loc := resp.Header.Get("Location")
				if resp.StatusCode != http.StatusTemporaryRedirect || !strings.HasPrefix(loc, "http://127.0.0.1:") || strings.Contains(loc, reg.Addr) {
					t.Fatalf("%s blob: %s Location %q, want 307 to the emulator", method, resp.Status, loc)
				}
				resp, body := get(t, http.DefaultClient, method, loc)
				if resp.StatusCode != http.StatusOK || resp.ContentLength != int64(len(content)) {
					t.Fatalf("%s %s: %s, length %d", method, loc, resp.Status, resp.ContentLength)
				}
				if method == http.MethodGet && !bytes.Equal(body, content) {
					t.Fatalf("the signed URL serves %d other bytes", len(body))
				}
			}
			// A range with a start goes to the store too; a suffix range
			// is registryd's (see handlers.redirectable).
			if resp, _ := get(t, noFollow, http.MethodGet, blobURL, "Range", "bytes=10-19"); resp.StatusCode != http.StatusTemporaryRedirect {
				t.Errorf("GET with Range bytes=10-19: %s, want 307", resp.Status)
			}
			resp, body := get(t, noFollow, http.MethodGet, blobURL, "Range", "bytes=-12")
			if resp.StatusCode != http.StatusPartialContent || !bytes.Equal(body, content[len(content)-12:]) {
				t.Errorf("GET with Range bytes=-12: %s %q, want 206 and the last 12 bytes from registryd", resp.Status, body)
			}
			reg.Stop(t)

			reg = start(t, section, "  redirect:\n    disable: true\n", "")
			resp, body = get(t, noFollow, http.MethodGet, reg.URL("/v2/lib/app/blobs/"+d))
			if resp.StatusCode != http.StatusOK || !bytes.Equal(body, content) {
				t.Fatalf("redirect.disable: GET blob: %s, %d bytes; want 200 and the blob", resp.Status, len(body))
			}
			reg.Stop(t)

			reg = start(t, section, "", "middleware:\n  storage:\n  - name: redirect\n    options:\n      baseurl: https://cdn.example.com/registry\n")
			resp, _ = get(t, noFollow, http.MethodGet, reg.URL("/v2/lib/app/blobs/"+d))
			want := "https://cdn.example.com/registry/docker/registry/v2/blobs/sha256/" + d[7:9] + "/" + d[7:] + "/data"
			if resp.StatusCode != http.StatusTemporaryRedirect || resp.Header.Get("Location") != want {
				t.Fatalf("redirect middleware: %s Location %q, want 307 to %s", resp.Status, resp.Header.Get("Location"), want)
			}
		})
	}
}

// TestUploadAcrossReplicas runs two registryd processes on one bucket and
// sends an upload's requests to both in turn: POST on one, PATCHes on
// alternating ones, the closing PUT on the other. The blob is then pulled
// from both, byte for byte.
func TestUploadAcrossReplicas(t *testing.T) {
	chunks := [][]byte{
		bytes.Repeat([]byte{1}, 6<<20+7), // past S3's smallest part
		bytes.Repeat([]byte{2}, 1234),
		bytes.Repeat([]byte{3}, 3<<20),
	}
	blob := bytes.Join(chunks, nil)
	d := fmt.Sprintf("sha256:%x", sha256.Sum256(blob))
	for _, store := range testutil.ObjectStorages() {
		t.Run(store.Name, func(t *testing.T) {
			section := store.Section(t)
			replicas := []*testutil.Registry{start(t, section, "", ""), start(t, section, "", "")}
			resp, err := http.Post(replicas[0].URL("/v2/shared/blobs/uploads/"), "", nil)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			path := resp.Header.Get("Location")
			if i := strings.Index(path, "/v2/"); i >= 0 {
				path = path[i:] // the path only: the next request goes elsewhere
			}
			offset := 0
			for i, c := range chunks {
				r := replicas[(i+1)%2]
				req, _ := http.NewRequest(http.MethodPatch, r.URL(path), bytes.NewReader(c))
				req.Header.Set("Content-Type", "application/octet-stream")
				req.Header.Set("Content-Range", fmt.Sprintf("%d-%d", offset, offset+len(c)-1))
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				offset += len(c)
				if resp.StatusCode != http.StatusAccepted || resp.Header.Get("Range") != fmt.Sprintf("0-%d", offset-1) {
					t.Fatalf("PATCH %d on replica %d: %s Range %q, want 202 0-%d", i, (i+1)%2, resp.Status, resp.Header.Get("Range"), offset-1)
				}
				if loc := resp.Header.Get("Location"); loc != "" {
					if j := strings.Index(loc, "/v2/"); j >= 0 {
						path = loc[j:]
					}
				}
			}
			// Each replica reports the whole upload before it is closed.
			for i, r := range replicas {
				resp, _ := get(t, noFollow, http.MethodGet, r.URL(path))
				if resp.StatusCode != http.StatusNoContent || resp.Header.Get("Range") != fmt.Sprintf("0-%d", len(blob)-1) {
					t.Fatalf("upload status on replica %d: %s Range %q", i, resp.Status, resp.Header.Get("Range"))
				}
			}
			sep := "?"
			if strings.Contains(path, "?") {
				sep = "&"
			}
			req, _ := http.NewRequest(http.MethodPut, replicas[0].URL(path+sep+"digest="+d), nil)
			resp, err = http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusCreated {
				t.Fatalf("PUT on replica 0: %s", resp.Status)
			}
			for i, r := range replicas {
				_, body := get(t, http.DefaultClient, http.MethodGet, r.URL("/v2/shared/blobs/"+d))
				if !bytes.Equal(body, blob) {
					t.Fatalf("replica %d serves %d bytes, want the %d pushed", i, len(body), len(blob))
				}
			}
		})
	}
}

// TestAzureReferenceExample starts registryd with the configuration
// reference's azure example — top-level accountname and accountkey, no
// credentials section, a container that does not exist yet, redirects on
// — pointed at Azurite with serviceurl, and pushes and pulls an image with
// go-containerregistry, whose blob downloads follow the SAS redirects.
func TestAzureReferenceExample(t *testing.T) {
	az := testutil.AzureEmulator(t)
	container := testutil.UniqueName("reference")
	section := fmt.Sprintf("  azure:\n    accountname: %s\n    accountkey: %s\n    container: %s\n    serviceurl: %s\n",
		az.AccountName, az.AccountKey, container, az.ServiceURL())
	t.Setenv("REGISTRY_LOG_LEVEL", "info") // for the container's creation line
	reg := start(t, section, "  redirect:\n    disable: false\n", "")
	if !strings.Contains(reg.Log(), "Created Azure container") || !strings.Contains(reg.Log(), container) {
		t.Fatalf("registryd did not say it created the container:\n%s", reg.Log())
	}
	img := image(t)
	if err := remote.Write(ref(t, reg, "reference/example:v1"), img); err != nil {
		t.Fatalf("push: %v", err)
	}
	rec := newRecorder()
	pullAndCompare(t, ref(t, reg, "reference/example:v1"), img, remote.WithTransport(rec))
	if n := rec.count("307 " + reg.Addr); n < len(blobs(t, img)) {
		t.Errorf("the pull got %d redirects from registryd, want one per blob (%d): %v", n, len(blobs(t, img)), rec.seen)
	}
	if n := rec.count("200 " + az.Addr); n < len(blobs(t, img)) {
		t.Errorf("the pull fetched %d blobs from Azurite, want %d: %v", n, len(blobs(t, img)), rec.seen)
	}
}

// TestGCSInlineCredentials configures the service account key inline
// (storage.gcs.credentials, as the reference shows it) instead of a key
// file: registryd signs its redirect URLs as that account.
func TestGCSInlineCredentials(t *testing.T) {
	g := testutil.GCS(t)
	bucket := testutil.UniqueName("inline")
	g.CreateBucket(t, bucket)
	raw, err := os.ReadFile(testutil.GCSKeyFile(t))
	if err != nil {
		t.Fatal(err)
	}
	var key map[string]string
	if err := json.Unmarshal(raw, &key); err != nil {
		t.Fatal(err)
	}
	key["client_email"] = "inline@berth.iam.gserviceaccount.com"
	var b strings.Builder
	fmt.Fprintf(&b, "  gcs:\n    bucket: %s\n    credentials:\n", bucket)
	for _, k := range []string{"type", "project_id", "private_key_id", "private_key", "client_email", "client_id", "token_uri"} {
		v, _ := json.Marshal(key[k]) // a JSON string is a YAML string
		fmt.Fprintf(&b, "      %s: %s\n", k, v)
	}
	reg := start(t, b.String(), "", "")
	d := pushBlob(t, reg, "inline", []byte("signed by the inline key"))
	resp, _ := get(t, noFollow, http.MethodGet, reg.URL("/v2/inline/blobs/"+d))
	loc := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusTemporaryRedirect || !strings.Contains(loc, "X-Goog-Signature=") || !strings.Contains(loc, "inline%40berth.iam.gserviceaccount.com") {
		t.Fatalf("GET blob: %s Location %q, want 307 to a URL signed by the inline account", resp.Status, loc)
	}
	if resp, body := get(t, http.DefaultClient, http.MethodGet, loc); resp.StatusCode != http.StatusOK || string(body) != "signed by the inline key" {
		t.Fatalf("GET %s: %s %q", loc, resp.Status, body)
	}
}
