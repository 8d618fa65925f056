package s3_test

import (
	"bytes"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/testutil"
	"github.com/berth-dev/berth/internal/testutil/storagetest"
	"github.com/berth-dev/berth/registryd/storage/driver"
	"github.com/berth-dev/berth/registryd/storage/driver/s3"
)

func TestMain(m *testing.M) { testutil.Main(m) }

// params are the driver's parameters for a root in a new bucket of the
// package's versitygw: listings of 3 keys a page and walks that list flat
// at most 7 keys, so that every listing path runs over many pages.
func params(t *testing.T, prefix string) storagetest.Params[s3.Parameters] {
	srv := testutil.S3(t)
	bucket := testutil.UniqueName(prefix)
	srv.CreateBucket(t, bucket)
	return func(_ *testing.T, root string) s3.Parameters {
		return s3.Parameters{
			AccessKey: srv.AccessKey, SecretKey: srv.SecretKey, Region: srv.Region,
			RegionEndpoint: srv.Endpoint(), ForcePathStyle: true, Bucket: bucket,
			Secure: false, V4Auth: true, RootDirectory: root,
			ChunkSize: s3.MinChunkSize, PageSize: 3, WalkBudget: 7,
		}
	}
}

func TestS3(t *testing.T) {
	storagetest.Suite(t, s3.New, params(t, "suite"))
}

func TestS3SharedByReplicas(t *testing.T) {
	storagetest.Shared(t, s3.New, params(t, "shared"))
}

func TestS3RefusesWhatItCannotHonour(t *testing.T) {
	base := s3.Parameters{Region: "us-east-1", Bucket: "b", V4Auth: true, AccessKey: "a", SecretKey: "s"}
	tests := map[string]struct {
		mod  func(p *s3.Parameters)
		want string
	}{
		"v4auth false":      {func(p *s3.Parameters) { p.V4Auth = false }, "v4auth: false"},
		"small chunks":      {func(p *s3.Parameters) { p.ChunkSize = 1 << 20 }, "chunksize: must be between"},
		"copy chunk":        {func(p *s3.Parameters) { p.MultipartCopyChunkSize = 1 }, "multipartcopychunksize"},
		"copy threshold":    {func(p *s3.Parameters) { p.MultipartCopyThresholdSize = 6 << 30 }, "multipartcopythresholdsize"},
		"storage class":     {func(p *s3.Parameters) { p.StorageClass = "COLD" }, `storageclass: "COLD"`},
		"acl":               {func(p *s3.Parameters) { p.ObjectACL = "everyone" }, `objectacl: "everyone"`},
		"keyid without sse": {func(p *s3.Parameters) { p.KeyID = "k" }, "keyid"},
		"half a key pair":   {func(p *s3.Parameters) { p.SecretKey = "" }, "accesskey and secretkey"},
		"log level":         {func(p *s3.Parameters) { p.LogLevel = "loud" }, `loglevel: "loud"`},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			p := base
			tt.mod(&p)
			_, err := s3.New(t.Context(), p)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("New = %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

// TestS3MultipartCopy moves an object above multipartcopythresholdsize:
// the copy runs in parts, several at a time, and the content arrives whole.
func TestS3MultipartCopy(t *testing.T) {
	p := params(t, "copy")(t, storagetest.NewRoot())
	p.MultipartCopyThresholdSize = s3.MinChunkSize
	p.MultipartCopyChunkSize = s3.MinChunkSize
	p.MultipartCopyMaxConcurrency = 2
	d := storagetest.Open(t, s3.New, p)
	content := make([]byte, 3*s3.MinChunkSize+12345)
	for i := range content {
		content[i] = byte(i * 7 / 3)
	}
	ctx := t.Context()
	if err := d.PutContent(ctx, "/up/data", content); err != nil {
		t.Fatal(err)
	}
	if err := d.Move(ctx, "/up/data", "/blobs/data"); err != nil {
		t.Fatal(err)
	}
	got, err := d.GetContent(ctx, "/blobs/data")
	if err != nil || !bytes.Equal(got, content) {
		t.Fatalf("moved content: %d bytes, equal %v, err %v", len(got), bytes.Equal(got, content), err)
	}
	if _, err := d.Stat(ctx, "/up/data"); !errors.Is(err, driver.ErrNotFound) {
		t.Fatalf("source after Move: %v", err)
	}
}

// TestS3RedirectURL fetches what RedirectURL presigns, over plain http as
// a client sent there by a 307 would.
func TestS3RedirectURL(t *testing.T) {
	d := storagetest.Open(t, s3.New, params(t, "redirect")(t, storagetest.NewRoot()))
	storagetest.RedirectURLServes(t, d, "/blobs/x/data", []byte("redirected bytes"))
	if u, err := d.RedirectURL(t.Context(), http.MethodPut, "/blobs/x/data"); u != "" || err != nil {
		t.Fatalf("RedirectURL(PUT) = %q, %v; want no redirect", u, err)
	}
}

// TestS3StatRootReachesTheService: Stat of the root, what the storagedriver
// health check runs, asks the service, so it fails once the service is gone.
func TestS3StatRootReachesTheService(t *testing.T) {
	srv, err := testutil.StartS3Server(testutil.HackTool(t, "VERSITYGW", "install-versitygw.sh"), "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()
	srv.CreateBucket(t, "health")
	d := storagetest.Open(t, s3.New, s3.Parameters{
		AccessKey: srv.AccessKey, SecretKey: srv.SecretKey, Region: srv.Region, RegionEndpoint: srv.Endpoint(),
		ForcePathStyle: true, Bucket: "health", V4Auth: true,
	})
	if _, err := d.Stat(t.Context(), "/"); err != nil {
		t.Fatalf("Stat(/) of a reachable, empty bucket: %v", err)
	}
	srv.Stop()
	if _, err := d.Stat(t.Context(), "/"); err == nil {
		t.Fatal("Stat(/) succeeded with the service stopped")
	}
}
