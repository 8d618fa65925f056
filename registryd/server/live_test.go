package server

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/berth-dev/berth/internal/testutil"
	"github.com/berth-dev/berth/registryd/configuration"
)

// kubeDir lays a file out the way the kubelet mounts a ConfigMap or
// Secret: <dir>/..<ts>/<name>, <dir>/..data -> ..<ts>, and
// <dir>/<name> -> ..data/<name>; update swaps ..data atomically.
type kubeDir struct {
	t    *testing.T
	dir  string
	name string
	n    int
	cur  string
}

func newKubeDir(t *testing.T, name, content string) *kubeDir {
	k := &kubeDir{t: t, dir: t.TempDir(), name: name}
	k.update(content)
	if err := os.Symlink(filepath.Join("..data", name), filepath.Join(k.dir, name)); err != nil {
		t.Fatal(err)
	}
	return k
}

func (k *kubeDir) path() string { return filepath.Join(k.dir, k.name) }

func (k *kubeDir) update(content string) {
	k.n++
	ts := fmt.Sprintf("..2026_01_01_00_00_%02d.%d", k.n, k.n)
	writeFile(k.t, filepath.Join(k.dir, ts, k.name), content)
	tmp := filepath.Join(k.dir, "..data_tmp")
	if err := os.Symlink(ts, tmp); err != nil {
		k.t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(k.dir, "..data")); err != nil {
		k.t.Fatal(err)
	}
	if k.cur != "" {
		if err := os.RemoveAll(filepath.Join(k.dir, k.cur)); err != nil {
			k.t.Fatal(err)
		}
	}
	k.cur = ts
}

// plainFile is a configuration file rewritten in place.
type plainFile struct {
	t *testing.T
	p string
}

func (f plainFile) path() string    { return f.p }
func (f plainFile) update(c string) { writeFile(f.t, f.p, c) }
func newPlainFile(t *testing.T, content string) plainFile {
	f := plainFile{t: t, p: filepath.Join(t.TempDir(), "config.yml")}
	f.update(content)
	return f
}

type configFile interface {
	path() string
	update(content string)
}

// status reads the status endpoint on the debug server.
func (ls *liveServer) status(t *testing.T) (Status, http.Header) {
	t.Helper()
	resp, err := http.Get("http://" + ls.DebugAddr() + StatusPath)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status endpoint: %s", resp.Status)
	}
	var st Status
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	return st, resp.Header
}

// readOnlyHeader is the Berth-Read-Only header of a main-port response.
func (ls *liveServer) readOnlyHeader(t *testing.T) string {
	t.Helper()
	resp, err := http.Get("http://" + ls.addr + "/v2/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.Header.Get(ReadOnlyHeader)
}

// pushBlob uploads content monolithically (POST, then PUT) and returns the
// status of the last request made and its Berth-Read-Only header.
func pushBlob(c *http.Client, base, repo string, content []byte) (int, string, error) {
	resp, err := c.Post(base+"/v2/"+repo+"/blobs/uploads/", "", nil)
	if err != nil {
		return 0, "", err
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		return resp.StatusCode, string(body), nil
	}
	loc := resp.Header.Get("Location")
	sum := sha256.Sum256(content)
	sep := "?"
	if strings.Contains(loc, "?") {
		sep = "&"
	}
	req, _ := http.NewRequest(http.MethodPut, loc+sep+"digest=sha256:"+hex.EncodeToString(sum[:]), bytes.NewReader(content))
	req.Header.Set("Content-Type", "application/octet-stream")
	resp, err = c.Do(req)
	if err != nil {
		return 0, "", err
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp.StatusCode, string(body), nil
}

func randomBlob() []byte {
	b := make([]byte, 512)
	_, _ = rand.Read(b)
	return b
}

func digestOf(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

type writeResult struct {
	sent   time.Time
	status int
	body   string
}

func TestReadOnlyLiveReload(t *testing.T) {
	tests := map[string]func(t *testing.T, content string) configFile{
		"plain rewrite":          func(t *testing.T, c string) configFile { return newPlainFile(t, c) },
		"kubernetes ..data swap": func(t *testing.T, c string) configFile { return newKubeDir(t, "config.yml", c) },
	}
	for name, mk := range tests {
		t.Run(name, func(t *testing.T) {
			cf := mk(t, testConfig(false, ""))
			ls := startFromFile(t, cf.path())
			base := "http://" + ls.addr
			c := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}}

			seed := randomBlob()
			if st, body, err := pushBlob(c, base, "live/seed", seed); err != nil || st != http.StatusCreated {
				t.Fatalf("seed push: %d %s %v", st, body, err)
			}
			testutil.Eventually(t, "the first configuration to be applied", func() bool { st, _ := ls.status(t); return st.ConfigGeneration == 1 })

			var (
				mu        sync.Mutex
				writes    []writeResult
				readFails []string
				reads     atomic.Int64
				stop      = make(chan struct{})
				wg        sync.WaitGroup
			)
			for i := range 4 {
				wg.Go(func() {
					for {
						select {
						case <-stop:
							return
						default:
						}
						sent := time.Now()
						st, body, err := pushBlob(c, base, fmt.Sprintf("live/push%d", i), randomBlob())
						if err != nil {
							st, body = -1, err.Error()
						}
						mu.Lock()
						writes = append(writes, writeResult{sent: sent, status: st, body: body})
						mu.Unlock()
					}
				})
			}
			for range 2 {
				wg.Go(func() {
					for {
						select {
						case <-stop:
							return
						default:
						}
						resp, err := c.Get(base + "/v2/live/seed/blobs/" + digestOf(seed))
						if err != nil {
							mu.Lock()
							readFails = append(readFails, err.Error())
							mu.Unlock()
							continue
						}
						got, _ := io.ReadAll(resp.Body)
						resp.Body.Close()
						if resp.StatusCode != http.StatusOK || !bytes.Equal(got, seed) {
							mu.Lock()
							readFails = append(readFails, fmt.Sprintf("status %d", resp.StatusCode))
							mu.Unlock()
						}
						reads.Add(1)
					}
				})
			}
			stopAll := sync.OnceFunc(func() { close(stop); wg.Wait() })
			t.Cleanup(stopAll)
			countOK := func(after time.Time) (ok, refused int) {
				mu.Lock()
				defer mu.Unlock()
				for _, w := range writes {
					if w.sent.Before(after) {
						continue
					}
					switch w.status {
					case http.StatusCreated:
						ok++
					case http.StatusMethodNotAllowed:
						refused++
					}
				}
				return ok, refused
			}
			testutil.Eventually(t, "pushes to succeed", func() bool { ok, _ := countOK(time.Time{}); return ok >= 8 })

			// Enter read-only by changing the file.
			cf.update(testConfig(true, ""))
			var reported time.Time
			testutil.Eventually(t, "read-only to be reported", func() bool {
				st, _ := ls.status(t)
				reported = time.Now()
				return st.ReadOnly
			})
			testutil.Eventually(t, "writes after the report", func() bool { _, refused := countOK(reported); return refused >= 20 })
			readsBefore := reads.Load()
			testutil.Eventually(t, "reads during read-only", func() bool { return reads.Load() > readsBefore+10 })

			mu.Lock()
			for _, w := range writes {
				if w.sent.After(reported) && w.status != http.StatusMethodNotAllowed {
					t.Errorf("a write sent after read-only was reported got %d: %s", w.status, w.body)
				}
				if w.status == http.StatusMethodNotAllowed && !strings.Contains(w.body, "read-only") {
					t.Errorf("405 body does not say read-only: %s", w.body)
				}
			}
			mu.Unlock()
			if got := ls.readOnlyHeader(t); got != "true" {
				t.Errorf("%s = %q while read-only", ReadOnlyHeader, got)
			}

			// And back to read-write.
			cf.update(testConfig(false, ""))
			var back time.Time
			testutil.Eventually(t, "read-write to be reported", func() bool {
				st, _ := ls.status(t)
				back = time.Now()
				return !st.ReadOnly
			})
			testutil.Eventually(t, "pushes to succeed again", func() bool { ok, _ := countOK(back); return ok >= 4 })
			stopAll()
			mu.Lock()
			defer mu.Unlock()
			if len(readFails) > 0 {
				t.Errorf("%d reads failed, first: %s", len(readFails), readFails[0])
			}
			if st, _ := ls.status(t); st.ConfigGeneration != 3 {
				t.Errorf("configGeneration = %d, want 3", st.ConfigGeneration)
			}
		})
	}
}

func TestWriteGateWaitsForAdmittedWrites(t *testing.T) {
	g := newWriteGate(false)
	entered, release := make(chan struct{}), make(chan struct{})
	h := g.wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			close(entered)
			<-release
		}
		w.WriteHeader(http.StatusCreated)
	}))
	serve := func(method, path string) int {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(method, path, nil))
		return w.Code
	}
	slow := make(chan int)
	go func() { slow <- serve("PUT", "/slow") }()
	<-entered

	g.Set(true)
	if !g.ReadOnly() {
		t.Fatal("configured mode not switched")
	}
	// Once the switch waits for the admitted write (its Lock pending, so
	// TryRLock fails), a new write is refused at once, not made to wait
	// for the drain (it once deadlocked here: CI hung for 30 minutes).
	testutil.Eventually(t, "the switch to wait for the admitted write", func() bool {
		if g.mu.TryRLock() {
			g.mu.RUnlock()
			return false
		}
		return true
	})
	refused := make(chan int, 1)
	go func() { refused <- serve("PUT", "/other") }()
	select {
	case code := <-refused:
		if code != http.StatusMethodNotAllowed {
			t.Errorf("a write after the switch: %d, want 405", code)
		}
	case <-time.After(10 * time.Second):
		close(release)
		t.Fatal("a write after the switch waited for the admitted write instead of being refused")
	}
	if code := serve("GET", "/other"); code != http.StatusCreated {
		t.Errorf("a read after the switch: %d", code)
	}
	if g.Effective() {
		t.Fatal("read-only reported while an admitted write runs")
	}
	close(release)
	if code := <-slow; code != http.StatusCreated {
		t.Errorf("the admitted write: %d", code)
	}
	testutil.Eventually(t, "read-only to be reported", g.Effective)

	g.Set(false)
	if g.Effective() {
		t.Error("read-write not reported at once")
	}
	if code := serve("PUT", "/other"); code != http.StatusCreated {
		t.Errorf("a write in read-write mode: %d", code)
	}
}

func TestStatusEndpointAndRestartKeys(t *testing.T) {
	cf := newPlainFile(t, testConfig(false, ""))
	started := time.Now()
	ls := startFromFile(t, cf.path())
	hashOf := func(s string) string { sum := sha256.Sum256([]byte(s)); return "sha256:" + hex.EncodeToString(sum[:]) }

	st, hdr := ls.status(t)
	if st.ReadOnly || st.ReadOnlyConfigured || st.ConfigGeneration != 1 || st.ConfigHash != hashOf(testConfig(false, "")) ||
		st.ReloadFailed || st.Hold != nil || st.HoldInvalid || !st.ReadOnlySince.IsZero() {
		t.Errorf("status = %+v", st)
	}
	if st.WritableSince.Before(started.Add(-time.Second)) || st.WritableSince.After(time.Now()) {
		t.Errorf("writableSince = %v, want the process start (%v)", st.WritableSince, started)
	}
	if hdr.Get("Content-Type") != "application/json" || hdr.Get("Cache-Control") != "no-store" {
		t.Errorf("headers = %v", hdr)
	}
	if got := ls.readOnlyHeader(t); got != "false" {
		t.Errorf("API response %s = %q", ReadOnlyHeader, got)
	}

	// An invalid file is reported without its error text, and changes
	// nothing.
	secretish := "draintimeout: hunter2-not-a-duration"
	cf.update(testConfig(false, "  "+secretish+"\n"))
	testutil.Eventually(t, "the reload failure", func() bool { st, _ := ls.status(t); return st.ReloadFailed })
	resp, err := http.Get("http://" + ls.DebugAddr() + StatusPath)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if strings.Contains(string(body), "hunter2") || !strings.Contains(string(body), `"reloadFailed":true`) {
		t.Errorf("status body after a failed reload: %s", body)
	}
	if !strings.Contains(ls.logs.String(), "hunter2") {
		t.Errorf("the reload error is not in the log:\n%s", ls.logs.String())
	}
	if st, _ := ls.status(t); st.ConfigGeneration != 1 || st.ConfigHash != hashOf(testConfig(false, "")) {
		t.Errorf("after an invalid file: %+v", st)
	}
	// Putting the applied bytes back clears the failure.
	cf.update(testConfig(false, ""))
	testutil.Eventually(t, "the failure to clear", func() bool { st, _ := ls.status(t); return !st.ReloadFailed })
	if st, _ := ls.status(t); st.ConfigGeneration != 1 {
		t.Errorf("the same bytes again were applied as a new generation: %+v", st)
	}
	cf.update("version: 0.1\nstorage: {}\n")
	testutil.Eventually(t, "the second reload failure", func() bool { st, _ := ls.status(t); return st.ReloadFailed })

	// A change to a key that needs a restart is logged by name; the live
	// level applies; a good file clears the failure.
	next := strings.Replace(testConfig(false, ""), "secret: test-secret", "secret: other-secret", 1) + "  relativeurls: true\n"
	next = strings.Replace(next, "log:\n", "log:\n  level: debug\n", 1)
	cf.update(next)
	testutil.Eventually(t, "generation 2", func() bool { st, _ := ls.status(t); return st.ConfigGeneration == 2 })
	if st, _ := ls.status(t); st.ReloadFailed || st.ConfigHash != hashOf(next) {
		t.Errorf("after a valid change: %+v", st)
	}
	logs := ls.logs.String()
	if !strings.Contains(logs, "need a restart") || !strings.Contains(logs, "keys=http.secret,http.relativeurls") {
		t.Errorf("restart keys not logged:\n%s", logs)
	}
	if !ls.log.Enabled(context.Background(), slog.LevelDebug) {
		t.Error("log.level debug not applied live")
	}
}

// TestStatusOnlyOnTheDebugServer checks where the status endpoint is: on
// the debug server, GET and HEAD, without credentials even when the main
// port needs them; the main port does not serve it.
func TestStatusOnlyOnTheDebugServer(t *testing.T) {
	dir := t.TempDir()
	pw := filepath.Join(dir, "htpasswd")
	h, _ := bcrypt.GenerateFromPassword([]byte("pass"), bcrypt.MinCost)
	writeFile(t, pw, "alice:"+string(h)+"\n")
	cfg := filepath.Join(dir, "config.yml")
	writeFile(t, cfg, testConfig(false, "  prefix: /reg/\n")+"auth:\n  htpasswd:\n    realm: berth\n    path: "+pw+"\n")
	ls := startFromFile(t, cfg)

	do := func(method, url string) (int, http.Header, string) {
		req, _ := http.NewRequest(method, url, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header, string(b)
	}
	debug := "http://" + ls.DebugAddr() + StatusPath
	code, hdr, body := do(http.MethodGet, debug)
	if code != http.StatusOK || !strings.HasPrefix(body, `{"readOnly":false,"readOnlyConfigured":false,"writableSince":"`) {
		t.Errorf("GET on the debug server: %d %s", code, body)
	}
	if hdr.Get("Cache-Control") != "no-store" {
		t.Errorf("Cache-Control = %q", hdr.Get("Cache-Control"))
	}
	if code, hdr, body := do(http.MethodHead, debug); code != http.StatusOK || body != "" || hdr.Get("Content-Length") == "0" {
		t.Errorf("HEAD on the debug server: %d %q %v", code, body, hdr)
	}
	if code, hdr, _ := do(http.MethodPost, debug); code != http.StatusMethodNotAllowed || hdr.Get("Allow") != "GET, HEAD" {
		t.Errorf("POST on the debug server: %d %v", code, hdr)
	}
	for _, p := range []string{StatusPath, "/reg" + StatusPath} {
		code, hdr, body := do(http.MethodGet, "http://"+ls.addr+p)
		if code != http.StatusNotFound || strings.Contains(body, "readOnly") {
			t.Errorf("GET %s on the main port: %d %s", p, code, body)
		}
		if hdr.Get(ReadOnlyHeader) != "false" {
			t.Errorf("GET %s on the main port: %s = %q", p, ReadOnlyHeader, hdr.Get(ReadOnlyHeader))
		}
	}
	if code, _, _ := do(http.MethodGet, "http://"+ls.addr+"/reg/v2/"); code != http.StatusUnauthorized {
		t.Errorf("the main port's API without credentials: %d, want 401", code)
	}
}

func TestRestartKeys(t *testing.T) {
	parse := func(s string) *configuration.Configuration {
		c, err := configuration.ParseWithEnv(strings.NewReader(s), nil)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	base := testConfig(false, "")
	tests := map[string]struct {
		next string
		want string
	}{
		"same":              {next: base, want: ""},
		"read-only is live": {next: testConfig(true, ""), want: ""},
		"level is live":     {next: strings.Replace(base, "log:\n", "log:\n  level: error\n", 1), want: ""},
		"address":           {next: strings.Replace(base, "127.0.0.1:0", "127.0.0.1:5001", 1), want: "http.addr"},
		"new section":       {next: base + "auth:\n  silly:\n    realm: r\n    service: s\n", want: "auth.silly"},
		"storage":           {next: strings.Replace(base, "delete:\n    enabled: true", "delete:\n    enabled: false", 1), want: "storage.delete.enabled"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := strings.Join(restartKeys(parse(base), parse(tc.next)), ","); got != tc.want {
				t.Errorf("keys = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestHtpasswdRewrittenWhileServing(t *testing.T) {
	dir := t.TempDir()
	pw := filepath.Join(dir, "auth", "htpasswd")
	line := func(user, pass string) string {
		h, _ := bcrypt.GenerateFromPassword([]byte(pass), bcrypt.MinCost)
		return user + ":" + string(h) + "\n"
	}
	writeFile(t, pw, line("alice", "a-pass"))
	cfg := filepath.Join(dir, "config.yml")
	writeFile(t, cfg, testConfig(false, "")+"auth:\n  htpasswd:\n    realm: berth\n    path: "+pw+"\n")
	ls := startFromFile(t, cfg)
	get := func(user, pass string) int {
		req, _ := http.NewRequest("GET", "http://"+ls.addr+"/v2/", nil)
		if user != "" {
			req.SetBasicAuth(user, pass)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if get("alice", "a-pass") != 200 || get("", "") != 401 || get("bob", "b-pass") != 401 {
		t.Fatal("initial users wrong")
	}
	writeFile(t, pw, line("bob", "b-pass"))
	testutil.Eventually(t, "the new user to be accepted", func() bool { return get("bob", "b-pass") == 200 })
	if get("alice", "a-pass") != 401 {
		t.Error("the removed user is still accepted")
	}
	// The status endpoint (debug server) stays open to the operator
	// without credentials.
	if st, _ := ls.status(t); st.ConfigGeneration != 1 {
		t.Errorf("status = %+v", st)
	}
}

func TestDrainLetsAnUploadFinish(t *testing.T) {
	cf := newPlainFile(t, testConfig(false, "  draintimeout: 20s\n"))
	ls := startFromFile(t, cf.path())
	base := "http://" + ls.addr
	resp, err := http.Post(base+"/v2/drain/blobs/uploads/", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc := resp.Header.Get("Location")

	content := bytes.Repeat([]byte("registryd"), 100_000)
	pr, pw := io.Pipe()
	req, _ := http.NewRequest(http.MethodPut, withDigest(loc, digestOf(content)), pr)
	req.ContentLength = int64(len(content))
	req.Header.Set("Expect", "100-continue")
	started := make(chan struct{})
	req = req.WithContext(httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{
		Got100Continue: func() { close(started) },
	}))
	c := &http.Client{Transport: &http.Transport{ExpectContinueTimeout: time.Minute}}
	result := make(chan error, 1)
	go func() {
		resp, err := c.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode != http.StatusCreated {
				err = fmt.Errorf("status %d", resp.StatusCode)
			}
		}
		result <- err
	}()
	<-started // the handler is reading the body
	if _, err := pw.Write(content[:len(content)/2]); err != nil {
		t.Fatal(err)
	}
	ls.stop() // what SIGTERM does in registryd serve
	testutil.Eventually(t, "the server to drain", func() bool { return strings.Contains(ls.logs.String(), "Draining") })
	testutil.Eventually(t, "new connections to be refused", func() bool {
		conn, err := net.Dial("tcp", ls.addr)
		if err == nil {
			conn.Close()
		}
		return err != nil
	})
	if _, err := pw.Write(content[len(content)/2:]); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	if err := <-result; err != nil {
		t.Fatalf("the upload in flight: %v", err)
	}
	select {
	case err := <-ls.done:
		if err != nil {
			t.Errorf("Serve: %v", err)
		}
		ls.done <- nil // for the cleanup
	case <-time.After(20 * time.Second):
		t.Fatal("Serve did not return after the drain")
	}
}

// withDigest adds the digest query parameter to an upload Location, which
// may carry a query of its own (the _state parameter).
func withDigest(loc, digest string) string {
	u, err := url.Parse(loc)
	if err != nil {
		return loc
	}
	q := u.Query()
	q.Set("digest", digest)
	u.RawQuery = q.Encode()
	return u.String()
}
