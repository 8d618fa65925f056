package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/testutil"
)

// serveInProcess runs `registryd serve args... config.yml` in this process
// on a free loopback port until the test ends, and waits until /v2/
// answers. The configuration enables the access log and Prometheus
// metrics, so that every response-writer wrapper sits between the
// connection and the handler, as in production.
func serveInProcess(t *testing.T, args ...string) (addr string) {
	t.Helper()
	addr = testutil.FreeAddr(t)
	cfg := fmt.Sprintf(`version: 0.1
log:
  level: debug
storage:
  inmemory: {}
http:
  addr: %s
  secret: test
  debug:
    addr: %s
    prometheus:
      enabled: true
`, addr, testutil.FreeAddr(t))
	path := filepath.Join(t.TempDir(), "config.yml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var stdout, stderr testutil.LockedBuffer
	done := make(chan int, 1)
	go func() { done <- run(ctx, append(append([]string{"serve"}, args...), path), &stdout, &stderr) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Error("registryd serve did not stop")
		}
		if t.Failed() {
			t.Logf("stderr:\n%s", stderr.String())
		}
	})
	testutil.EventuallyNoError(t, "registryd serve answers", func() error {
		select {
		case code := <-done:
			return testutil.Permanent(fmt.Errorf("registryd serve exited %d:\n%s", code, stderr.String()))
		default:
		}
		resp, err := http.Get("http://" + addr + "/v2/")
		if err != nil {
			return err
		}
		resp.Body.Close()
		return nil
	}, testutil.Every(20*time.Millisecond))
	return addr
}

func TestServeTimeoutFlags(t *testing.T) {
	const timeout = 300 * time.Millisecond
	addr := serveInProcess(t, "--idle-timeout", timeout.String(), "--body-timeout", timeout.String())

	dial := func(t *testing.T) (net.Conn, *bufio.Reader) {
		t.Helper()
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		if err := conn.SetReadDeadline(time.Now().Add(30 * time.Second)); err != nil {
			t.Fatal(err)
		}
		return conn, bufio.NewReader(conn)
	}

	t.Run("idle keep-alive connection is closed", func(t *testing.T) {
		conn, br := dial(t)
		if _, err := io.WriteString(conn, "GET /v2/ HTTP/1.1\r\nHost: r\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || resp.Close {
			t.Fatalf("GET /v2/: %d, close %v; want a kept-alive 200", resp.StatusCode, resp.Close)
		}
		idleSince := time.Now()
		if _, err := br.ReadByte(); err != io.EOF {
			t.Fatalf("reading the idle connection: %v, want EOF (closed by the server)", err)
		}
		if idle := time.Since(idleSince); idle < timeout {
			t.Errorf("closed after %s idle, before the %s idle timeout", idle, timeout)
		}
	})

	t.Run("stalled body fails", func(t *testing.T) {
		resp, err := http.Post("http://"+addr+"/v2/lib/app/blobs/uploads/", "", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		loc := resp.Header.Get("Location")
		conn, br := dial(t)
		head := fmt.Sprintf("PATCH %s HTTP/1.1\r\nHost: r\r\nContent-Length: %d\r\n\r\n0123456789", loc[strings.Index(loc, "/v2/"):], 1<<20)
		if _, err := io.WriteString(conn, head); err != nil {
			t.Fatal(err)
		}
		resp, err = http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestTimeout {
			t.Fatalf("stalled PATCH: %d, want 408", resp.StatusCode)
		}
	})
}

func TestServeRefusesNegativeTimeouts(t *testing.T) {
	for _, flag := range []string{"--idle-timeout", "--body-timeout"} {
		t.Run(flag, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if code := run(context.Background(), []string{"serve", flag, "-1s"}, &stdout, &stderr); code == 0 {
				t.Fatal("registryd serve accepted a negative timeout")
			}
			if !strings.Contains(stderr.String(), flag+": -1s is negative") {
				t.Errorf("stderr does not name the flag:\n%s", stderr.String())
			}
		})
	}
}
