package storagetest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/berth-dev/berth/registryd/storage/driver"
	"github.com/berth-dev/berth/registryd/storage/driver/testsuites"
)

// What the object-store drivers' own tests (azure, gcs, s3) share: each
// builds its driver from its Parameters, against its emulator, and runs
// the conformance suites and the redirect check through these.

// Constructor is a driver package's New.
type Constructor[P any] func(context.Context, P) (driver.StorageDriver, error)

var roots atomic.Int64

// NewRoot returns a root directory no other driver of this test binary
// was given ("/suite/<n>"), so that drivers sharing a bucket or container
// each see an empty store.
func NewRoot() string { return fmt.Sprintf("/suite/%d", roots.Add(1)) }

// Open returns the driver newDriver makes from p; an error fails the test.
func Open[P any](t testing.TB, newDriver Constructor[P], p P) driver.StorageDriver {
	t.Helper()
	d, err := newDriver(t.Context(), p)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// Params are a driver's parameters for a fresh store below root.
type Params[P any] func(t *testing.T, root string) P

// Suite runs the conformance suite (testsuites.Run) on drivers opened
// from params, each below a new root.
func Suite[P any](t *testing.T, newDriver Constructor[P], params Params[P], opts ...testsuites.Option) {
	testsuites.Run(t, func(t *testing.T) driver.StorageDriver {
		return Open(t, newDriver, params(t, NewRoot()))
	}, opts...)
}

// Shared runs the suite for replicas (testsuites.RunShared) on pairs of
// drivers opened from the same params, each pair below a new root.
func Shared[P any](t *testing.T, newDriver Constructor[P], params Params[P]) {
	testsuites.RunShared(t, func(t *testing.T) (driver.StorageDriver, driver.StorageDriver) {
		p := params(t, NewRoot())
		return Open(t, newDriver, p), Open(t, newDriver, p)
	})
}

// RedirectURLServes stores content at path with d and fetches what
// d.RedirectURL returns for GET and HEAD over plain HTTP, as a client sent
// there by a 307 would (the emulators serve HTTP only): both are answered
// 200 with the content's length, GET with the content. It returns the GET
// URL.
func RedirectURLServes(t *testing.T, d driver.StorageDriver, path string, content []byte) string {
	t.Helper()
	if err := d.PutContent(t.Context(), path, content); err != nil {
		t.Fatal(err)
	}
	var get string
	for _, method := range []string{http.MethodGet, http.MethodHead} {
		u, err := d.RedirectURL(t.Context(), method, path)
		if err != nil || !strings.HasPrefix(u, "http://") {
			t.Fatalf("RedirectURL(%s) = %q, %v", method, u, err)
		}
		req, err := http.NewRequestWithContext(t.Context(), method, u, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || resp.ContentLength != int64(len(content)) {
			t.Fatalf("%s %s: %s, length %d: %s", method, u, resp.Status, resp.ContentLength, body)
		}
		if method == http.MethodGet {
			if !bytes.Equal(body, content) {
				t.Fatalf("GET %s = %q, want %q", u, body, content)
			}
			get = u
		}
	}
	return get
}
