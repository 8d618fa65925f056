package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/testutil"
)

// configMapDir lays keys out the way the kubelet mounts a ConfigMap: a
// timestamped directory per version, ..data pointing at the current one,
// and a link per key into ..data; a key that leaves the ConfigMap loses
// its link.
type configMapDir struct {
	t    *testing.T
	dir  string
	n    int
	keys map[string]bool
}

func (c *configMapDir) swap(files map[string]string) {
	c.t.Helper()
	c.n++
	ts := fmt.Sprintf("..2026_01_01_00_00_%02d.1", c.n)
	must := func(err error) {
		c.t.Helper()
		if err != nil {
			c.t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(c.dir, ts), 0o755))
	for k, v := range files {
		must(os.WriteFile(filepath.Join(c.dir, ts, k), []byte(v), 0o644))
	}
	must(os.Symlink(ts, filepath.Join(c.dir, "..data_tmp")))
	must(os.Rename(filepath.Join(c.dir, "..data_tmp"), filepath.Join(c.dir, "..data")))
	for k := range files {
		if !c.keys[k] {
			must(os.Symlink(filepath.Join("..data", k), filepath.Join(c.dir, k)))
		}
	}
	for k := range c.keys {
		if _, ok := files[k]; !ok {
			must(os.Remove(filepath.Join(c.dir, k)))
		}
	}
	c.keys = map[string]bool{}
	for k := range files {
		c.keys[k] = true
	}
}

// TestServeHoldFile runs the real binary with --hold-file on a
// ConfigMap-style mount that holds an active hold at start: the first
// write is refused; the hold leaving the ConfigMap makes it writable; a
// short hold expires by itself.
func TestServeHoldFile(t *testing.T) {
	dir := t.TempDir()
	config := fmt.Sprintf(`version: 0.1
storage:
  filesystem:
    rootdirectory: %s
http:
  addr: 127.0.0.1:0
  secret: hold-test
  debug:
    addr: 127.0.0.1:0
`, filepath.Join(dir, "data"))
	hold := func(id string, expires time.Time) string {
		return fmt.Sprintf(`{"id":%q,"holder":"GarbageCollection default/%s","expires":%q}`, id, id, expires.UTC().Format(time.RFC3339Nano))
	}
	mount := &configMapDir{t: t, dir: filepath.Join(dir, "config")}
	mount.swap(map[string]string{"config.yml": config, "hold.json": hold("run-1", time.Now().Add(time.Hour))})

	d := startDaemon(t, "--hold-file", filepath.Join(mount.dir, "hold.json"), filepath.Join(mount.dir, "config.yml"))
	t.Cleanup(func() {
		if d.cmd.ProcessState == nil {
			_ = d.cmd.Process.Signal(syscall.SIGTERM)
			_ = <-d.exit
		}
	})
	addr := d.waitLog(t, regexp.MustCompile(`msg=Listening network=tcp addr=(\S+)`))[1]
	debugAddr := d.waitLog(t, regexp.MustCompile(`msg="Debug server listening" addr=(\S+)`))[1]
	push := func() int {
		t.Helper()
		resp, err := http.Post("http://"+addr+"/v2/held/blobs/uploads/", "", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	type status struct {
		ReadOnly           bool `json:"readOnly"`
		ReadOnlyConfigured bool `json:"readOnlyConfigured"`
		Hold               *struct {
			ID string `json:"id"`
		} `json:"hold"`
	}
	get := func() status {
		t.Helper()
		resp, err := http.Get("http://" + debugAddr + "/berth/v1/status")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var st status
		if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
			t.Fatal(err)
		}
		return st
	}
	waitStatus := func(what string, cond func(status) bool) {
		t.Helper()
		testutil.EventuallyNoError(t, what, func() error {
			if st := get(); !cond(st) {
				return fmt.Errorf("status %+v\n%s", st, d.log())
			}
			return nil
		}, testutil.Within(30*time.Second))
	}

	// The very first request, a write, is refused.
	if code := push(); code != http.StatusMethodNotAllowed {
		t.Fatalf("the first write under a hold: %d\n%s", code, d.log())
	}
	if st := get(); !st.ReadOnly || st.Hold == nil || st.Hold.ID != "run-1" {
		t.Errorf("status at start: %+v", st)
	}
	d.waitLog(t, regexp.MustCompile(`msg="Hold applied" id=run-1 holder="GarbageCollection default/run-1"`))

	// The operator removes the hold from the ConfigMap.
	mount.swap(map[string]string{"config.yml": config})
	waitStatus("read-write", func(st status) bool { return !st.ReadOnlyConfigured })
	if code := push(); code != http.StatusAccepted {
		t.Errorf("a write after the hold: %d", code)
	}
	d.waitLog(t, regexp.MustCompile(`msg="Hold removed" id=run-1`))

	// A hold that is never removed ends at its expiry.
	mount.swap(map[string]string{"config.yml": config, "hold.json": hold("run-2", time.Now().Add(2*time.Second))})
	waitStatus("the second hold", func(st status) bool { return st.ReadOnly && st.Hold != nil && st.Hold.ID == "run-2" })
	waitStatus("the hold to expire", func(st status) bool { return !st.ReadOnlyConfigured && st.Hold == nil })
	if code := push(); code != http.StatusAccepted {
		t.Errorf("a write after the expiry: %d", code)
	}
	d.waitLog(t, regexp.MustCompile(`msg="Hold expired" id=run-2`))

	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-d.exit:
		if err != nil {
			t.Errorf("exit: %v\n%s", err, d.log())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("registryd did not stop")
	}
}

// TestServeHoldFileNeedsItsDirectory: a hold file whose directory does not
// exist is a start-up error naming the flag, not a silently ignored hold.
func TestServeHoldFileNeedsItsDirectory(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.yml")
	if err := os.WriteFile(path, []byte("version: 0.1\nstorage: {inmemory: {}}\nhttp: {addr: 127.0.0.1:0}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var stdout, stderr bytes.Buffer
	code := run(ctx, []string{"serve", "--hold-file", filepath.Join(t.TempDir(), "absent", "hold.json"), path}, &stdout, &stderr)
	if code == 0 || !strings.Contains(stderr.String(), "--hold-file") {
		t.Errorf("exit %d, stderr:\n%s", code, stderr.String())
	}
}
