package handlers

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/berth-dev/berth/internal/testutil"
	"github.com/berth-dev/berth/registryd/storage"
	"github.com/berth-dev/berth/registryd/storage/driver"
	"github.com/berth-dev/berth/registryd/storage/driver/inmemory"
)

// Clients that break off, stall or send more than they declare, against a
// handler served on loopback (a real connection, so that deadlines and
// truncation happen as they do in production).

// hostileServer serves a handler over a fresh inmemory driver on loopback.
type hostileServer struct {
	t    *testing.T
	drv  driver.StorageDriver
	h    *handler
	addr string
	url  string
	log  *testutil.LockedBuffer
}

func newHostileServer(t *testing.T, opts ...Option) *hostileServer {
	t.Helper()
	hs := &hostileServer{t: t, drv: inmemory.New(), log: &testutil.LockedBuffer{}}
	logger := slog.New(slog.NewTextHandler(hs.log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	hs.h = New(hs.drv, append([]Option{WithLogger(logger)}, opts...)...).(*handler)
	srv := httptest.NewServer(hs.h)
	t.Cleanup(srv.Close)
	hs.url = srv.URL
	hs.addr = strings.TrimPrefix(srv.URL, "http://")
	return hs
}

// uploads lists the upload sessions stored for repo.
func (hs *hostileServer) uploads(repo string) []string {
	hs.t.Helper()
	ids, err := hs.drv.List(context.Background(), storage.RepositoryPath(repo)+"/_uploads")
	if errors.Is(err, driver.ErrNotFound) {
		return nil
	}
	if err != nil {
		hs.t.Fatal(err)
	}
	return ids
}

// session opens an upload session in repo and returns its path.
func (hs *hostileServer) session(repo string) string {
	hs.t.Helper()
	resp, err := http.Post(hs.url+"/v2/"+repo+"/blobs/uploads/", "", nil)
	if err != nil {
		hs.t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		hs.t.Fatalf("POST upload: %d", resp.StatusCode)
	}
	loc := resp.Header.Get("Location")
	return loc[strings.Index(loc, "/v2/"):]
}

// rawRequest writes a request head declaring contentLength and then only
// sent, on a connection of its own. With halfClose it then shuts its
// sending side (the body is truncated, the response can still be read);
// otherwise it leaves the connection open and silent (the body stalls).
// It returns the connection, positioned at the response.
func (hs *hostileServer) rawRequest(method, path string, contentLength int64, sent []byte, halfClose bool) *bufio.Reader {
	hs.t.Helper()
	conn, err := net.Dial("tcp", hs.addr)
	if err != nil {
		hs.t.Fatal(err)
	}
	hs.t.Cleanup(func() { conn.Close() })
	head := fmt.Sprintf("%s %s HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\nContent-Type: application/octet-stream\r\n\r\n", method, path, hs.addr, contentLength)
	if _, err := conn.Write(append([]byte(head), sent...)); err != nil {
		hs.t.Fatal(err)
	}
	if halfClose {
		if err := conn.(*net.TCPConn).CloseWrite(); err != nil {
			hs.t.Fatal(err)
		}
	}
	if err := conn.SetReadDeadline(time.Now().Add(30 * time.Second)); err != nil {
		hs.t.Fatal(err)
	}
	return bufio.NewReader(conn)
}

// readResponse reads the response on br and its OCI error code.
func readResponse(t *testing.T, br *bufio.Reader, method string) (*http.Response, string) {
	t.Helper()
	resp, err := http.ReadResponse(br, &http.Request{Method: method})
	if err != nil {
		t.Fatalf("reading the response: %v", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	rec := httptest.NewRecorder()
	rec.Body.Write(body)
	return resp, errorCode(t, rec)
}

func TestTruncatedBodyIsAClientErrorAndRemovesTheUpload(t *testing.T) {
	// Each request declares 1 GiB, sends 5 bytes and stops sending.
	const declared = 1 << 30
	d := digest.FromString("never sent in full")
	tests := map[string]struct {
		method string
		path   func(hs *hostileServer) string
	}{
		"one-shot POST ?digest=": {"POST", func(*hostileServer) string { return "/v2/lib/app/blobs/uploads/?digest=" + d.String() }},
		"PATCH of a session":     {"PATCH", func(hs *hostileServer) string { return hs.session("lib/app") }},
		"PUT of a session":       {"PUT", func(hs *hostileServer) string { return hs.session("lib/app") + "?digest=" + d.String() }},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			hs := newHostileServer(t)
			path := tc.path(hs)
			br := hs.rawRequest(tc.method, path, declared, []byte("12345"), true)
			resp, code := readResponse(t, br, tc.method)
			if resp.StatusCode != http.StatusBadRequest || code != "BLOB_UPLOAD_INVALID" {
				t.Fatalf("status %d code %q, want 400 BLOB_UPLOAD_INVALID", resp.StatusCode, code)
			}
			if ids := hs.uploads("lib/app"); len(ids) != 0 {
				t.Errorf("uploads left behind: %v", ids)
			}
			logs := hs.log.String()
			if !strings.Contains(logs, `level=DEBUG msg="Request body failed"`) || strings.Contains(logs, "level=ERROR") {
				t.Errorf("want one debug line and no error line, got:\n%s", logs)
			}
		})
	}
}

func TestAbortedOneShotUploadIsRemoved(t *testing.T) {
	// The client goes away for good after 5 bytes: nobody reads the
	// answer, and the clean-up must not run on the request's context,
	// which is cancelled by then.
	hs := newHostileServer(t)
	d := digest.FromString("aborted")
	conn, err := net.Dial("tcp", hs.addr)
	if err != nil {
		t.Fatal(err)
	}
	head := fmt.Sprintf("POST /v2/lib/app/blobs/uploads/?digest=%s HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n12345", d, 1<<30)
	if _, err := io.WriteString(conn, head); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, "the upload session exists", func() bool { return len(hs.uploads("lib/app")) == 1 })
	conn.Close()
	testutil.Eventually(t, "the aborted upload is removed", func() bool { return len(hs.uploads("lib/app")) == 0 })
}

func TestStalledBodyFailsAndSlowBodyFinishes(t *testing.T) {
	// A wide margin between the gaps of the slow body (100 ms) and the
	// timeout, so that a loaded machine pausing the client does not look
	// like a stall.
	const timeout = time.Second
	hs := newHostileServer(t, WithBodyTimeout(timeout))

	t.Run("stalled", func(t *testing.T) {
		// 1 MiB declared, 10 bytes sent, then silence on an open connection.
		path := hs.session("lib/app")
		br := hs.rawRequest("PATCH", path, 1<<20, []byte("0123456789"), false)
		resp, code := readResponse(t, br, "PATCH")
		if resp.StatusCode != http.StatusRequestTimeout || code != "BLOB_UPLOAD_INVALID" {
			t.Fatalf("status %d code %q, want 408 BLOB_UPLOAD_INVALID", resp.StatusCode, code)
		}
		if _, err := br.ReadByte(); err == nil {
			t.Error("the connection stayed open after the stalled body")
		}
		if ids := hs.uploads("lib/app"); len(ids) != 0 {
			t.Errorf("stalled upload left behind: %v", ids)
		}
	})

	t.Run("slow but moving", func(t *testing.T) {
		// 15 bytes, one every timeout/10: the whole body takes longer
		// than the timeout, but no gap comes near it.
		content := []byte("slow-but-moving")
		pr, pw := io.Pipe()
		go func() {
			tick := time.NewTicker(timeout / 10)
			defer tick.Stop()
			for i := range content {
				<-tick.C
				if _, err := pw.Write(content[i : i+1]); err != nil {
					return
				}
			}
			pw.Close()
		}()
		d := digest.FromBytes(content)
		req, err := http.NewRequest("POST", hs.url+"/v2/lib/slow/blobs/uploads/?digest="+d.String(), pr)
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("slow upload: %d", resp.StatusCode)
		}
		if took := time.Since(start); took < timeout {
			t.Fatalf("the body took %s, less than the %s timeout: the test proves nothing", took, timeout)
		}
	})
}

// manifestBody is a manifest whose layers are not in the repository.
func manifestBody(seed string) []byte {
	return []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",` +
		`"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"` + digest.FromString(seed).String() + `","size":1},"layers":[]}`)
}

func TestManifestPutsPastTheQueueGet429(t *testing.T) {
	// A budget of one manifest and a queue of one: the first PUT holds the
	// budget while its body is still arriving, the second waits, the third
	// is refused at once, without its body being read.
	m := manifestBody("a")
	hs := newHostileServer(t, WithManifestMemory(int64(len(m)), 1))

	pr, pw := io.Pipe()
	first := make(chan int, 1)
	go func() {
		req, _ := http.NewRequest("PUT", hs.url+"/v2/lib/app/manifests/one", pr)
		req.ContentLength = int64(len(m))
		req.Header.Set("Content-Type", "application/vnd.oci.image.manifest.v1+json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			first <- 0
			return
		}
		resp.Body.Close()
		first <- resp.StatusCode
	}()
	if _, err := pw.Write(m[:10]); err != nil {
		t.Fatal(err)
	}
	budget := hs.h.manifests
	testutil.Eventually(t, "the first PUT holds the budget", func() bool {
		if budget.sem.TryAcquire(1) {
			budget.sem.Release(1)
			return false
		}
		return true
	})
	second := make(chan int, 1)
	go func() {
		resp, err := http.DefaultClient.Do(mustRequest(t, "PUT", hs.url+"/v2/lib/app/manifests/two", m))
		if err != nil {
			second <- 0
			return
		}
		resp.Body.Close()
		second <- resp.StatusCode
	}()
	testutil.Eventually(t, "the second PUT waits in line", func() bool { return budget.waiting.Load() == 1 })

	resp, err := http.DefaultClient.Do(mustRequest(t, "PUT", hs.url+"/v2/lib/app/manifests/three", m))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests || !strings.Contains(string(body), `"code":"TOOMANYREQUESTS"`) || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("third PUT: %d %s Retry-After %q, want 429 TOOMANYREQUESTS with Retry-After", resp.StatusCode, body, resp.Header.Get("Retry-After"))
	}

	if _, err := pw.Write(m[10:]); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	// Both are answered: the config blob is unknown, so 400
	// MANIFEST_BLOB_UNKNOWN, after each had the budget in turn.
	for name, ch := range map[string]chan int{"first": first, "second": second} {
		select {
		case code := <-ch:
			if code != http.StatusBadRequest {
				t.Errorf("%s PUT: %d, want 400", name, code)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%s PUT not answered", name)
		}
	}
}

func mustRequest(t *testing.T, method, url string, body []byte) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/vnd.oci.image.manifest.v1+json")
	return req
}
