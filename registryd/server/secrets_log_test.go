package server

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"golang.org/x/crypto/bcrypt"

	"github.com/berth-dev/berth/internal/testutil"
)

// TestNoSecretsInDebugLogs pushes and pulls an image with credentials
// through a registryd logging at debug level, with its access log on, a
// notification endpoint whose header carries a token and an http secret,
// plus a failed login, and greps every line it logged for each secret:
// the password (right and wrong), the htpasswd hash, the Authorization
// header's value, the http secret and the endpoint's token.
func TestNoSecretsInDebugLogs(t *testing.T) {
	const (
		user, password = "alice", "Pa55-word-only-alice-knows"
		wrongPassword  = "Wr0ng-guess-of-mallory"
		httpSecret     = "http-secret-never-logged"
		endpointToken  = "Bearer endpoint-token-never-logged"
	)
	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	htpasswd := filepath.Join(t.TempDir(), "htpasswd")
	writeFile(t, htpasswd, user+":"+string(hash)+"\n")
	events := make(chan struct{}, 64)
	sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		select {
		case events <- struct{}{}:
		default:
		}
	}))
	defer sink.Close()

	cfg := parseConfig(t, fmt.Sprintf(`version: 0.1
log:
  level: debug
storage:
  inmemory: {}
http:
  addr: 127.0.0.1:0
  secret: %s
auth:
  htpasswd:
    realm: berth
    path: %s
notifications:
  endpoints:
    - name: audit
      url: %s
      timeout: 2s
      headers:
        Authorization: [%q]
`, httpSecret, htpasswd, sink.URL, endpointToken))
	logs := &testutil.LockedBuffer{}
	logger, err := NewLogger(cfg, logs)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := New(cfg, Options{Logger: logger, AccessLog: logs})
	if err != nil {
		t.Fatal(err)
	}
	l, err := srv.Listen()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, l) }()
	defer func() {
		cancel()
		if err := <-done; err != nil && !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("Serve: %v", err)
		}
	}()

	ref, err := name.ParseReference(l.Addr().String()+"/team/app:v1", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	img, err := random.Image(1024, 2)
	if err != nil {
		t.Fatal(err)
	}
	good := remote.WithAuth(&authn.Basic{Username: user, Password: password})
	if err := remote.Write(ref, img, good); err != nil {
		t.Fatal(err)
	}
	pulled, err := remote.Image(ref, good)
	if err != nil {
		t.Fatal(err)
	}
	layers, err := pulled.Layers()
	if err != nil {
		t.Fatal(err)
	}
	for _, layer := range layers {
		rc, err := layer.Compressed()
		if err != nil {
			t.Fatal(err)
		}
		_, err = io.Copy(io.Discard, rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
	}
	if _, err := remote.Image(ref, remote.WithAuth(&authn.Basic{Username: user, Password: wrongPassword})); err == nil {
		t.Fatal("a wrong password pulled")
	}
	select {
	case <-events:
	case <-time.After(30 * time.Second):
		t.Fatal("no notification reached the endpoint")
	}
	testutil.Eventually(t, "debug lines and the failed login in the log", func() bool {
		s := logs.String()
		return strings.Contains(s, "level=DEBUG") && strings.Contains(s, "Login failed") && strings.Contains(s, "team/app")
	})

	secrets := map[string]string{
		"password":             password,
		"wrong password":       wrongPassword,
		"htpasswd hash":        string(hash),
		"Authorization header": base64.StdEncoding.EncodeToString([]byte(user + ":" + password)),
		"wrong Authorization":  base64.StdEncoding.EncodeToString([]byte(user + ":" + wrongPassword)),
		"http secret":          httpSecret,
		"endpoint token":       strings.TrimPrefix(endpointToken, "Bearer "),
	}
	for line := range strings.SplitSeq(logs.String(), "\n") {
		for what, secret := range secrets {
			if strings.Contains(line, secret) {
				t.Errorf("the %s is in a log line: %s", what, line)
			}
		}
	}
}
