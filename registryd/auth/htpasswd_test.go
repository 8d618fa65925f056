package auth

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"github.com/berth-dev/berth/internal/testutil"
)

func htpasswdLine(t *testing.T, user, password string) string {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return user + ":" + string(h) + "\n"
}

var okHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-User", User(r.Context()))
	w.WriteHeader(http.StatusOK)
})

func do(h http.Handler, method, target string, set func(*http.Request)) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, target, nil)
	if set != nil {
		set(r)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func basic(user, password string) func(*http.Request) {
	return func(r *http.Request) { r.SetBasicAuth(user, password) }
}

func errorCode(t *testing.T, w *httptest.ResponseRecorder) string {
	t.Helper()
	var body struct {
		Errors []struct{ Code string } `json:"errors"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil || len(body.Errors) != 1 {
		t.Fatalf("error body %q: %v", w.Body.String(), err)
	}
	return body.Errors[0].Code
}

func TestHtpasswd(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "htpasswd")
	content := "# users\n" + htpasswdLine(t, "alice", "wonderland") + "\n" +
		"md5user:$apr1$abcdefgh$0123456789abcdefghijkl\n" +
		"shauser:{SHA}qUqP5cyxm6YcTAhz05Hph5gvu9M=\n"
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	var logs testutil.LockedBuffer
	h, err := NewHtpasswd("test-realm", path, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	for _, user := range []string{"md5user", "shauser"} {
		if !strings.Contains(logs.String(), "only bcrypt hashes are supported") || !strings.Contains(logs.String(), "user="+user) {
			t.Errorf("no log line refusing %s's hash:\n%s", user, logs.String())
		}
	}
	mw := Middleware(h, "", nil, okHandler)

	tests := map[string]struct {
		target string
		set    func(*http.Request)
		want   int
	}{
		"valid user":          {target: "/v2/x/manifests/v1", set: basic("alice", "wonderland"), want: 200},
		"base needs auth":     {target: "/v2/", want: 401},
		"base with user":      {target: "/v2/", set: basic("alice", "wonderland"), want: 200},
		"no credentials":      {target: "/v2/x/manifests/v1", want: 401},
		"wrong password":      {target: "/v2/x/manifests/v1", set: basic("alice", "looking-glass"), want: 401},
		"unknown user":        {target: "/v2/x/manifests/v1", set: basic("bob", "wonderland"), want: 401},
		"non-bcrypt entry":    {target: "/v2/x/manifests/v1", set: basic("md5user", "whatever"), want: 401},
		"bearer is not basic": {target: "/v2/x/manifests/v1", set: func(r *http.Request) { r.Header.Set("Authorization", "Bearer abc") }, want: 401},
		"outside the api":     {target: "/favicon.ico", want: 200},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			w := do(mw, "GET", tc.target, tc.set)
			if w.Code != tc.want {
				t.Fatalf("status = %d, want %d", w.Code, tc.want)
			}
			if tc.want != 401 {
				return
			}
			if got := w.Header().Get("WWW-Authenticate"); got != `Basic realm="test-realm"` {
				t.Errorf("WWW-Authenticate = %q", got)
			}
			if code := errorCode(t, w); code != "UNAUTHORIZED" {
				t.Errorf("code = %s, want UNAUTHORIZED", code)
			}
		})
	}
	if got := do(mw, "GET", "/v2/", basic("alice", "wonderland")).Header().Get("X-User"); got != "alice" {
		t.Errorf("user in context = %q, want alice", got)
	}
}

func TestHtpasswdReloadsOnChange(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "htpasswd")
	if err := os.WriteFile(path, []byte(htpasswdLine(t, "alice", "a-pass")), 0o600); err != nil {
		t.Fatal(err)
	}
	h, err := NewHtpasswd("r", path, slog.New(slog.NewTextHandler(&testutil.LockedBuffer{}, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { h.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	mw := Middleware(h, "", nil, okHandler)
	status := func(user, pass string) int { return do(mw, "GET", "/v2/", basic(user, pass)).Code }
	if status("alice", "a-pass") != 200 || status("bob", "b-pass") != 401 {
		t.Fatal("initial users wrong")
	}

	// A plain rewrite: bob replaces alice.
	if err := os.WriteFile(path, []byte(htpasswdLine(t, "bob", "b-pass")), 0o600); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, "bob to be accepted", func() bool { return status("bob", "b-pass") == 200 })
	if status("alice", "a-pass") != 401 {
		t.Error("removed user alice still accepted")
	}

	// An unparsable file keeps the users loaded before.
	if err := os.WriteFile(path, []byte("garbage-without-colon\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// A rename over the file (how editors and Kubernetes replace files).
	tmp := filepath.Join(dir, "htpasswd.tmp")
	if err := os.WriteFile(tmp, []byte(htpasswdLine(t, "carol", "c-pass")), 0o600); err != nil {
		t.Fatal(err)
	}
	if status("bob", "b-pass") != 200 {
		t.Error("an invalid file dropped the loaded users")
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, "carol to be accepted", func() bool { return status("carol", "c-pass") == 200 })
	if status("bob", "b-pass") != 401 {
		t.Error("removed user bob still accepted")
	}
}

func TestHtpasswdProvisionsMissingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "auth", "htpasswd")
	var logs testutil.LockedBuffer
	h, err := NewHtpasswd("r", path, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatalf("file not created: %v", err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode = %v, want 0600", fi.Mode().Perm())
	}
	m := regexp.MustCompile(`user=docker password=(\S+)`).FindStringSubmatch(logs.String())
	if m == nil {
		t.Fatalf("generated password not printed:\n%s", logs.String())
	}
	mw := Middleware(h, "", nil, okHandler)
	if c := do(mw, "GET", "/v2/", basic("docker", m[1])).Code; c != 200 {
		t.Errorf("generated user: status %d", c)
	}
	// A second start finds the file and prints nothing.
	var again testutil.LockedBuffer
	if _, err := NewHtpasswd("r", path, slog.New(slog.NewTextHandler(&again, nil))); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(again.String(), "password") {
		t.Errorf("password printed again:\n%s", again.String())
	}
}

func TestHtpasswdUnknownUserCostsABcryptComparison(t *testing.T) {
	// An unknown user must pay for one bcrypt comparison at the default
	// cost, like a known one, so response times do not tell which users
	// exist. Count the comparisons and check the cost of the hash compared
	// against, rather than timing them (timings flake on a loaded machine).
	path := filepath.Join(t.TempDir(), "htpasswd")
	h0, _ := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.DefaultCost)
	if err := os.WriteFile(path, []byte("alice:"+string(h0)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	h, err := NewHtpasswd("r", path, slog.New(slog.NewTextHandler(&testutil.LockedBuffer{}, nil)))
	if err != nil {
		t.Fatal(err)
	}
	var costs []int
	orig := compareHash
	compareHash = func(hash, password []byte) error {
		cost, err := bcrypt.Cost(hash)
		if err != nil {
			t.Errorf("compared against a hash that is no bcrypt hash: %v", err)
		}
		costs = append(costs, cost)
		return orig(hash, password)
	}
	t.Cleanup(func() { compareHash = orig })

	for _, user := range []string{"alice", "nobody"} {
		costs = nil
		if err := h.check(context.Background(), user, "wrong"); err == nil {
			t.Fatalf("%s: a wrong password was accepted", user)
		}
		if len(costs) != 1 || costs[0] != bcrypt.DefaultCost {
			t.Errorf("%s: bcrypt comparisons at costs %v, want exactly one at cost %d", user, costs, bcrypt.DefaultCost)
		}
	}
}
