package azure_test

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/berth-dev/berth/internal/testutil"
	"github.com/berth-dev/berth/registryd/storage/driver"
	"github.com/berth-dev/berth/registryd/storage/driver/azure"
	"github.com/berth-dev/berth/registryd/storage/driver/testsuites"
)

func TestMain(m *testing.M) { testutil.Main(m) }

// params are the driver's parameters for a fresh root in container of
// the package's Azurite: listings of 3 blobs a page and walks that list
// flat at most 7 blobs, so that every listing path runs over many pages.
func params(t *testing.T, container, root string) azure.Parameters {
	az := testutil.AzureEmulator(t)
	return azure.Parameters{
		AccountName: az.AccountName, AccountKey: az.AccountKey, Container: container,
		ServiceURL: az.ServiceURL(), RootDirectory: root, PageSize: 3, WalkBudget: 7,
	}
}

var roots atomic.Int64

func newRoot() string { return fmt.Sprintf("/suite/%d", roots.Add(1)) }

func newDriver(t *testing.T, p azure.Parameters) driver.StorageDriver {
	t.Helper()
	d, err := azure.New(t.Context(), p)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestAzure(t *testing.T) {
	container := testutil.UniqueName("suite")
	testsuites.Run(t, func(t *testing.T) driver.StorageDriver {
		return newDriver(t, params(t, container, newRoot()))
	})
}

func TestAzureSharedByReplicas(t *testing.T) {
	container := testutil.UniqueName("shared")
	testsuites.RunShared(t, func(t *testing.T) (driver.StorageDriver, driver.StorageDriver) {
		p := params(t, container, newRoot())
		return newDriver(t, p), newDriver(t, p)
	})
}

// TestAzureCreatesContainer starts the driver on a container that does
// not exist: it is created, and the log says so once.
func TestAzureCreatesContainer(t *testing.T) {
	var log bytes.Buffer
	p := params(t, testutil.UniqueName("new"), "")
	p.Logger = slog.New(slog.NewTextHandler(&log, nil))
	d := newDriver(t, p)
	if err := d.PutContent(t.Context(), "/a", []byte("x")); err != nil {
		t.Fatalf("PutContent in the created container: %v", err)
	}
	if !strings.Contains(log.String(), "Created Azure container") || !strings.Contains(log.String(), p.Container) {
		t.Fatalf("log = %q, want the container's creation", log.String())
	}
	log.Reset()
	newDriver(t, p) // exists now
	if log.Len() != 0 {
		t.Fatalf("second start logged %q", log.String())
	}
}

// TestAzureRedirectURL fetches what RedirectURL signs, over plain http as
// a client sent there by a 307 would (Azurite serves http only).
func TestAzureRedirectURL(t *testing.T) {
	d := newDriver(t, params(t, testutil.UniqueName("redirect"), newRoot()))
	content := []byte("redirected bytes")
	if err := d.PutContent(t.Context(), "/blobs/x/data", content); err != nil {
		t.Fatal(err)
	}
	for _, method := range []string{http.MethodGet, http.MethodHead} {
		u, err := d.RedirectURL(t.Context(), method, "/blobs/x/data")
		if err != nil || !strings.HasPrefix(u, "http://") {
			t.Fatalf("RedirectURL(%s) = %q, %v", method, u, err)
		}
		req, _ := http.NewRequestWithContext(t.Context(), method, u, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || resp.ContentLength != int64(len(content)) {
			t.Fatalf("%s %s: %s, length %d: %s", method, u, resp.Status, resp.ContentLength, body)
		}
		if method == http.MethodGet && !bytes.Equal(body, content) {
			t.Fatalf("GET %s = %q", u, body)
		}
	}
	// The signature covers the blob: another blob's URL with it fails.
	u, _ := d.RedirectURL(t.Context(), http.MethodGet, "/blobs/x/data")
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
