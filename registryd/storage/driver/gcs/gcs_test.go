package gcs_test

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/berth-dev/berth/internal/testutil"
	"github.com/berth-dev/berth/registryd/storage/driver"
	"github.com/berth-dev/berth/registryd/storage/driver/gcs"
	"github.com/berth-dev/berth/registryd/storage/driver/testsuites"
)

func TestMain(m *testing.M) { testutil.Main(m) }

// params are the driver's parameters for a fresh root in bucket of the
// package's fake-gcs-server: listings of 3 objects a page and walks that
// list flat at most 7 objects, so that every listing path runs over many
// pages; uploads in chunks of 1 MiB.
func params(t *testing.T, bucket, root string) gcs.Parameters {
	testutil.GCS(t)
	return gcs.Parameters{Bucket: bucket, RootDirectory: root, ChunkSize: 4 * gcs.ChunkMultiple, PageSize: 3, WalkBudget: 7}
}

var roots atomic.Int64

func newRoot() string { return fmt.Sprintf("/suite/%d", roots.Add(1)) }

func newDriver(t *testing.T, p gcs.Parameters) driver.StorageDriver {
	t.Helper()
	d, err := gcs.New(t.Context(), p)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func newBucket(t *testing.T, prefix string) string {
	name := testutil.UniqueName(prefix)
	testutil.GCS(t).CreateBucket(t, name)
	return name
}

// TestGCS runs the suite with a bucket per subtest: the emulator reads a
// whole bucket to answer each listing page, so small buckets keep it fast.
func TestGCS(t *testing.T) {
	testsuites.Run(t, func(t *testing.T) driver.StorageDriver {
		return newDriver(t, params(t, newBucket(t, "suite"), newRoot()))
	}, testsuites.WithManyEntries(100))
}

func TestGCSSharedByReplicas(t *testing.T) {
	bucket := newBucket(t, "shared")
	testsuites.RunShared(t, func(t *testing.T) (driver.StorageDriver, driver.StorageDriver) {
		p := params(t, bucket, newRoot())
		return newDriver(t, p), newDriver(t, p)
	})
}

// serviceAccountKey is a service account key file with a fresh RSA key,
// as the Google Cloud console hands out (the emulator checks no
// signature, but the driver signs with the key).
func serviceAccountKey(t *testing.T) []byte {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(map[string]string{
		"type":           "service_account",
		"project_id":     "berth",
		"private_key_id": "1",
		"private_key":    string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})),
		"client_email":   "registry@berth.iam.gserviceaccount.com",
		"client_id":      "1",
		"token_uri":      "http://127.0.0.1:1/token",
	})
	return b
}

// TestGCSRedirectURL fetches what RedirectURL signs, over plain http as a
// client sent there by a 307 would.
func TestGCSRedirectURL(t *testing.T) {
	p := params(t, newBucket(t, "redirect"), newRoot())
	p.Credentials = serviceAccountKey(t)
	d := newDriver(t, p)
	content := []byte("redirected bytes")
	if err := d.PutContent(t.Context(), "/blobs/x/data", content); err != nil {
		t.Fatal(err)
	}
	for _, method := range []string{http.MethodGet, http.MethodHead} {
		u, err := d.RedirectURL(t.Context(), method, "/blobs/x/data")
		if err != nil || !strings.HasPrefix(u, "http://") || !strings.Contains(u, "X-Goog-Signature=") {
			t.Fatalf("RedirectURL(%s) = %q, %v", method, u, err)
		}
		req, _ := http.NewRequestWithContext(t.Context(), method, u, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s %s: %s: %s", method, u, resp.Status, body)
		}
		if method == http.MethodGet && !bytes.Equal(body, content) {
			t.Fatalf("GET %s = %q", u, body)
		}
	}
}

func TestGCSRefusesWhatItCannotHonour(t *testing.T) {
	tests := map[string]struct {
		p    gcs.Parameters
		want string
	}{
		"no bucket":        {gcs.Parameters{}, "bucket: required"},
		"chunk size":       {gcs.Parameters{Bucket: "b", ChunkSize: 1000}, "chunksize: must be a positive multiple of 262144"},
		"two keys":         {gcs.Parameters{Bucket: "b", KeyFile: "/k.json", Credentials: []byte("{}")}, "keyfile and credentials"},
		"missing key file": {gcs.Parameters{Bucket: "b", KeyFile: "/nonexistent/key.json"}, "keyfile:"},
		"not a key":        {gcs.Parameters{Bucket: "b", Credentials: []byte("not json")}, "credentials: not a service account key"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := gcs.New(t.Context(), tt.p)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("New = %v, want an error containing %q", err, tt.want)
			}
		})
	}
}
