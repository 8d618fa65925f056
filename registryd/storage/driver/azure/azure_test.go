package azure_test

import (
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/testutil"
	"github.com/berth-dev/berth/internal/testutil/storagetest"
	"github.com/berth-dev/berth/registryd/storage/driver/azure"
)

func TestMain(m *testing.M) { testutil.Main(m) }

// params are the driver's parameters for a root in container of the
// package's Azurite: listings of 3 blobs a page and walks that list flat
// at most 7 blobs, so that every listing path runs over many pages.
func params(container string) storagetest.Params[azure.Parameters] {
	return func(t *testing.T, root string) azure.Parameters {
		az := testutil.AzureEmulator(t)
		return azure.Parameters{
			AccountName: az.AccountName, AccountKey: az.AccountKey, Container: container,
			ServiceURL: az.ServiceURL(), RootDirectory: root, PageSize: 3, WalkBudget: 7,
		}
	}
}

func TestAzure(t *testing.T) {
	storagetest.Suite(t, azure.New, params(testutil.UniqueName("suite")))
}

func TestAzureSharedByReplicas(t *testing.T) {
	storagetest.Shared(t, azure.New, params(testutil.UniqueName("shared")))
}

// TestAzureCreatesContainer starts the driver on a container that does
// not exist: it is created, and the log says so once.
func TestAzureCreatesContainer(t *testing.T) {
	var log testutil.LockedBuffer
	p := params(testutil.UniqueName("new"))(t, "")
	p.Logger = slog.New(slog.NewTextHandler(&log, nil))
	d := storagetest.Open(t, azure.New, p)
	if err := d.PutContent(t.Context(), "/a", []byte("x")); err != nil {
		t.Fatalf("PutContent in the created container: %v", err)
	}
	if !strings.Contains(log.String(), "Created Azure container") || !strings.Contains(log.String(), p.Container) {
		t.Fatalf("log = %q, want the container's creation", log.String())
	}
	log.Reset()
	storagetest.Open(t, azure.New, p) // exists now
	if log.Len() != 0 {
		t.Fatalf("second start logged %q", log.String())
	}
}

// TestAzureRedirectURL fetches what RedirectURL signs, over plain http as
// a client sent there by a 307 would (Azurite serves http only).
func TestAzureRedirectURL(t *testing.T) {
	d := storagetest.Open(t, azure.New, params(testutil.UniqueName("redirect"))(t, storagetest.NewRoot()))
	content := []byte("redirected bytes")
	u := storagetest.RedirectURLServes(t, d, "/blobs/x/data", content)
	// The signature covers the blob: another blob's URL with it fails.
	other := strings.NewReplacer("/blobs/x/data", "/blobs/y/data", "%2Fblobs%2Fx%2Fdata", "%2Fblobs%2Fy%2Fdata").Replace(u)
	if other == u {
		t.Fatalf("cannot find the blob name in %s", u)
	}
	if err := d.PutContent(t.Context(), "/blobs/y/data", content); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(other)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden && resp.StatusCode != http.StatusNotFound {
		t.Fatalf("a SAS used for another blob: %s, want 403: %s %q", resp.Status, u, b)
	}
}

func TestAzureRefusesWhatItCannotHonour(t *testing.T) {
	base := azure.Parameters{AccountName: "a", AccountKey: "a2V5", Container: "c", ServiceURL: "http://127.0.0.1:1/a"}
	minus2 := -2
	tests := map[string]struct {
		mod  func(p *azure.Parameters)
		want string
	}{
		"no key": {func(p *azure.Parameters) { p.AccountKey = "" }, "accountkey: required"},
		"key beside secret": {func(p *azure.Parameters) {
			p.CredentialsType = azure.CredentialsClientSecret
			p.ClientID, p.TenantID, p.ClientSecret = "i", "t", "s"
		}, "accountkey: set only with credentials.type shared_key"},
		"half a secret": {func(p *azure.Parameters) {
			p.AccountKey = ""
			p.CredentialsType = azure.CredentialsClientSecret
			p.ClientID = "i"
		}, "clientid, tenantid and secret"},
		"unknown type": {func(p *azure.Parameters) { p.CredentialsType = "password" }, `credentials.type: "password"`},
		"poll retries": {func(p *azure.Parameters) { p.CopyStatusPollMaxRetry = &minus2 }, "copy_status_poll_max_retry"},
		"no container": {func(p *azure.Parameters) { p.Container = "" }, "container: required"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			p := base
			tt.mod(&p)
			_, err := azure.New(t.Context(), p)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("New = %v, want an error containing %q", err, tt.want)
			}
		})
	}
}
