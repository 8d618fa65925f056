package gcs_test

import (
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/testutil"
	"github.com/berth-dev/berth/internal/testutil/storagetest"
	"github.com/berth-dev/berth/registryd/storage/driver/gcs"
	"github.com/berth-dev/berth/registryd/storage/driver/testsuites"
)

func TestMain(m *testing.M) { testutil.Main(m) }

// params are the driver's parameters for a root in a new bucket of the
// package's fake-gcs-server: listings of 3 objects a page and walks that
// list flat at most 7 objects, so that every listing path runs over many
// pages; uploads in chunks of 1 MiB. The emulator reads a whole bucket to
// answer each listing page, so a bucket each keeps it fast.
func params(t *testing.T, root string) gcs.Parameters {
	bucket := testutil.UniqueName("suite")
	testutil.GCS(t).CreateBucket(t, bucket)
	return gcs.Parameters{Bucket: bucket, RootDirectory: root, ChunkSize: 4 * gcs.ChunkMultiple, PageSize: 3, WalkBudget: 7}
}

func TestGCS(t *testing.T) {
	storagetest.Suite(t, gcs.New, params, testsuites.WithManyEntries(100))
}

func TestGCSSharedByReplicas(t *testing.T) {
	storagetest.Shared(t, gcs.New, params)
}

// TestGCSRedirectURL fetches what RedirectURL signs, over plain http as a
// client sent there by a 307 would.
func TestGCSRedirectURL(t *testing.T) {
	p := params(t, storagetest.NewRoot())
	p.Credentials = testutil.GCSKey(t)
	d := storagetest.Open(t, gcs.New, p)
	if u := storagetest.RedirectURLServes(t, d, "/blobs/x/data", []byte("redirected bytes")); !strings.Contains(u, "X-Goog-Signature=") {
		t.Fatalf("RedirectURL(GET) = %q, not signed", u)
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
