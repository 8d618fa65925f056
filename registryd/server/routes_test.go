package server

import (
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"github.com/berth-dev/berth/internal/testutil"
)

// TestPrefixOneRoute checks that auth, the handler and the metrics agree
// on what a path under http.prefix is, as they read the one route
// classified per request: a /v2 path outside the prefix still needs
// credentials and is then 404, a path outside /v2 needs none, and the
// metrics label a request with its route only when the handler serves it.
func TestPrefixOneRoute(t *testing.T) {
	hash, err := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	htpasswd := filepath.Join(t.TempDir(), "htpasswd")
	writeFile(t, htpasswd, "alice:"+string(hash)+"\n")
	r := serve(t, parseConfig(t, fmt.Sprintf(`version: 0.1
storage:
  inmemory: {}
http:
  addr: 127.0.0.1:0
  prefix: /reg/
  debug:
    addr: 127.0.0.1:0
    prometheus:
      enabled: true
      path: /metrics
auth:
  htpasswd:
    realm: berth
    path: %s
`, htpasswd)))
	get := func(path string, login bool) int {
		t.Helper()
		req, err := http.NewRequest(http.MethodGet, r.url+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		if login {
			req.SetBasicAuth("alice", "pw")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, tc := range []struct {
		path  string
		login bool
		want  int
	}{
		{"/reg/v2/", false, http.StatusUnauthorized},
		{"/reg/v2/", true, http.StatusOK},
		{"/reg/v2/a/manifests/v1", true, http.StatusNotFound},
		{"/v2/", false, http.StatusUnauthorized},
		{"/v2/", true, http.StatusNotFound},
		{"/reg/favicon.ico", false, http.StatusNotFound},
	} {
		if got := get(tc.path, tc.login); got != tc.want {
			t.Errorf("GET %s (login %v) = %d, want %d", tc.path, tc.login, got, tc.want)
		}
	}

	testutil.Eventually(t, "the debug listener", func() bool { return r.srv.DebugAddr() != "" })
	expectMetrics(t, "http://"+r.srv.DebugAddr(),
		`registryd_http_requests_total{code="401",method="GET",route="base"} 1`,
		`registryd_http_requests_total{code="200",method="GET",route="base"} 1`,
		`registryd_http_requests_total{code="404",method="GET",route="manifest"} 1`,
		`registryd_http_requests_total{code="401",method="GET",route="other"} 1`,
		`registryd_http_requests_total{code="404",method="GET",route="other"} 2`,
	)
}
