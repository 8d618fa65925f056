package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/testutil"
)

// daemon is a registryd serve process whose stderr is collected.
type daemon struct {
	cmd  *exec.Cmd
	logs testutil.LockedBuffer
	exit chan error
}

func (d *daemon) log() string { return d.logs.String() }

// waitLog polls the log for a match of re for at most 30 seconds.
func (d *daemon) waitLog(t *testing.T, re *regexp.Regexp) []string {
	t.Helper()
	var m []string
	testutil.EventuallyNoError(t, "a log line matches "+re.String(), func() error {
		if m = re.FindStringSubmatch(d.log()); m == nil {
			return errors.New("no match in:\n" + d.log())
		}
		return nil
	}, testutil.Within(30*time.Second))
	return m
}

// startDaemon runs registryd serve with args.
func startDaemon(t *testing.T, args ...string) *daemon {
	t.Helper()
	cmd := exec.Command(testutil.Registryd(t), append([]string{"serve"}, args...)...)
	cmd.Env = append(os.Environ(), "REGISTRY_LOG_ACCESSLOG_DISABLED=true")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	d := &daemon{cmd: cmd, exit: make(chan error, 1)}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	copied := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			_, _ = d.logs.Write([]byte(sc.Text() + "\n"))
		}
		close(copied)
	}()
	go func() { <-copied; d.exit <- cmd.Wait() }()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
		}
	})
	return d
}

// TestSIGTERMDrainsAnUploadInFlight stops the real binary with SIGTERM
// while a blob upload is half sent: the upload completes within
// http.draintimeout, new connections are refused meanwhile, and the
// process exits cleanly.
func TestSIGTERMDrainsAnUploadInFlight(t *testing.T) {
	dir := t.TempDir()
	config := filepath.Join(dir, "config.yml")
	yml := fmt.Sprintf(`version: 0.1
storage:
  filesystem:
    rootdirectory: %s
http:
  addr: 127.0.0.1:0
  secret: drain-test
  draintimeout: 30s
`, filepath.Join(dir, "data"))
	if err := os.WriteFile(config, []byte(yml), 0o600); err != nil {
		t.Fatal(err)
	}
	d := startDaemon(t, config)
	addr := d.waitLog(t, regexp.MustCompile(`msg=Listening network=tcp addr=(\S+)`))[1]
	base := "http://" + addr

	resp, err := http.Post(base+"/v2/drain/test/blobs/uploads/", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("starting the upload: %d", resp.StatusCode)
	}
	loc := resp.Header.Get("Location")

	content := bytes.Repeat([]byte("berth-drain "), 200_000)
	sum := sha256.Sum256(content)
	digest := "sha256:" + hex.EncodeToString(sum[:])
	pr, pw := io.Pipe()
	req, _ := http.NewRequest(http.MethodPut, withDigest(loc, digest), pr)
	req.ContentLength = int64(len(content))
	// The server answers 100 Continue when the handler starts reading the
	// body: proof that the request is in flight, not queued.
	req.Header.Set("Expect", "100-continue")
	started := make(chan struct{})
	req = req.WithContext(httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{
		Got100Continue: func() { close(started) },
	}))
	client := &http.Client{Transport: &http.Transport{ExpectContinueTimeout: time.Minute}}
	result := make(chan error, 1)
	go func() {
		resp, err := client.Do(req)
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusCreated {
				err = fmt.Errorf("status %d: %s", resp.StatusCode, body)
			}
		}
		result <- err
	}()
	select {
	case <-started:
	case <-time.After(30 * time.Second):
		t.Fatal("the upload never reached the handler")
	}
	if _, err := pw.Write(content[:len(content)/2]); err != nil {
		t.Fatal(err)
	}

	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	d.waitLog(t, regexp.MustCompile(`msg=Draining timeout=30s`))
	testutil.Eventually(t, "new connections are refused while draining", func() bool {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			return true
		}
		conn.Close()
		return false
	}, testutil.Within(30*time.Second))
	select {
	case err := <-d.exit:
		t.Fatalf("exited before the upload finished: %v\n%s", err, d.log())
	default:
	}

	if _, err := pw.Write(content[len(content)/2:]); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	if err := <-result; err != nil {
		t.Fatalf("the upload in flight: %v\n%s", err, d.log())
	}
	select {
	case err := <-d.exit:
		if err != nil {
			t.Fatalf("exit: %v\n%s", err, d.log())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("still running after the drain\n%s", d.log())
	}
	// The blob is in storage, where Distribution's layout puts it.
	blob := filepath.Join(dir, "data", "docker", "registry", "v2", "blobs", "sha256", digest[7:9], digest[7:], "data")
	got, err := os.ReadFile(blob)
	if err != nil || !bytes.Equal(got, content) {
		t.Fatalf("the drained upload is not in storage: %v", err)
	}
}

// TestServeAppliesReadOnlyFromAConfigMapSwap checks the wiring of
// registryd serve: the configuration file it was started with, mounted
// the way the kubelet mounts a ConfigMap, is watched, and a ..data swap to
// read-only is applied and reported without a restart.
func TestServeAppliesReadOnlyFromAConfigMapSwap(t *testing.T) {
	dir := t.TempDir()
	yml := func(readOnly bool) string {
		return fmt.Sprintf(`version: 0.1
storage:
  filesystem:
    rootdirectory: %s
  maintenance:
    readonly:
      enabled: %t
http:
  addr: 127.0.0.1:0
  secret: reload-test
  debug:
    addr: 127.0.0.1:0
`, filepath.Join(dir, "data"), readOnly)
	}
	mount := filepath.Join(dir, "config")
	swap := func(n int, readOnly bool) {
		ts := fmt.Sprintf("..2026_01_01_00_00_0%d.1", n)
		if err := os.MkdirAll(filepath.Join(mount, ts), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(mount, ts, "config.yml"), []byte(yml(readOnly)), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(ts, filepath.Join(mount, "..data_tmp")); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(filepath.Join(mount, "..data_tmp"), filepath.Join(mount, "..data")); err != nil {
			t.Fatal(err)
		}
	}
	swap(1, false)
	if err := os.Symlink("..data/config.yml", filepath.Join(mount, "config.yml")); err != nil {
		t.Fatal(err)
	}
	d := startDaemon(t, filepath.Join(mount, "config.yml"))
	t.Cleanup(func() {
		_ = d.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case _ = <-d.exit:
		case <-time.After(30 * time.Second):
			t.Error("registryd did not stop")
		}
	})
	addr := d.waitLog(t, regexp.MustCompile(`msg=Listening network=tcp addr=(\S+)`))[1]
	debugAddr := d.waitLog(t, regexp.MustCompile(`msg="Debug server listening" addr=(\S+)`))[1]
	readOnly := func() string {
		resp, err := http.Get("http://" + addr + "/v2/")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		header := resp.Header.Get("Berth-Read-Only")
		resp, err = http.Get("http://" + debugAddr + "/berth/v1/status")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return header + " " + string(body)
	}
	if got := readOnly(); !strings.HasPrefix(got, `false {"readOnly":false`) {
		t.Fatalf("status at start: %s", got)
	}
	swap(2, true)
	testutil.EventuallyNoError(t, "read-only is reported", func() error {
		if got := readOnly(); !strings.HasPrefix(got, `true {"readOnly":true`) {
			return fmt.Errorf("status %s\n%s", got, d.log())
		}
		return nil
	}, testutil.Within(30*time.Second))
	resp, err := http.Post("http://"+addr+"/v2/x/blobs/uploads/", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed || !strings.Contains(string(body), "read-only") {
		t.Errorf("a write while read-only: %d %s", resp.StatusCode, body)
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
