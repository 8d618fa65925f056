package server

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/testutil"
	"github.com/berth-dev/berth/registryd/configuration"
)

// kubeMount lays files out the way the kubelet mounts a ConfigMap with
// several keys: <dir>/..<ts>/<key>, <dir>/..data -> ..<ts>, and
// <dir>/<key> -> ..data/<key> for each key. swap writes a new version
// atomically and, as the kubelet does, adds the links of new keys and
// removes those of keys that left.
type kubeMount struct {
	t    *testing.T
	dir  string
	n    int
	cur  string
	keys []string
}

func newKubeMount(t *testing.T, files map[string]string) *kubeMount {
	m := &kubeMount{t: t, dir: t.TempDir()}
	m.swap(files)
	return m
}

func (m *kubeMount) path(key string) string { return filepath.Join(m.dir, key) }

func (m *kubeMount) swap(files map[string]string) {
	m.n++
	ts := fmt.Sprintf("..2026_01_01_00_00_%02d.%d", m.n, m.n)
	for k, v := range files {
		writeFile(m.t, filepath.Join(m.dir, ts, k), v)
	}
	tmp := filepath.Join(m.dir, "..data_tmp")
	if err := os.Symlink(ts, tmp); err != nil {
		m.t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(m.dir, "..data")); err != nil {
		m.t.Fatal(err)
	}
	var keys []string
	for k := range files {
		keys = append(keys, k)
		if !slices.Contains(m.keys, k) {
			if err := os.Symlink(filepath.Join("..data", k), m.path(k)); err != nil {
				m.t.Fatal(err)
			}
		}
	}
	for _, k := range m.keys {
		if _, ok := files[k]; !ok {
			if err := os.Remove(m.path(k)); err != nil {
				m.t.Fatal(err)
			}
		}
	}
	if m.cur != "" {
		if err := os.RemoveAll(filepath.Join(m.dir, m.cur)); err != nil {
			m.t.Fatal(err)
		}
	}
	m.cur, m.keys = ts, keys
}

func holdJSON(id string, expires time.Time) string {
	return fmt.Sprintf(`{"id":%q,"holder":"GarbageCollection ns/%s","expires":%q}`, id, id, expires.UTC().Format(time.RFC3339Nano))
}

// startWithHold serves the configuration at configPath with the hold file
// holdPath.
func startWithHold(t *testing.T, configPath, holdPath string) *liveServer {
	t.Helper()
	data, err := os.ReadFile(configPath)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := configuration.ParseWithEnv(bytes.NewReader(data), nil)
	if err != nil {
		t.Fatal(err)
	}
	return startServerWith(t, cfg, Options{ConfigPath: configPath, HoldFile: holdPath})
}

// push uploads a fresh blob and returns the last status.
func (ls *liveServer) push(t *testing.T) (int, string) {
	t.Helper()
	code, body, err := pushBlob(http.DefaultClient, "http://"+ls.addr, "hold/test", randomBlob())
	if err != nil {
		t.Fatal(err)
	}
	return code, body
}

// writableHook counts OnWritable calls, and records whether writes were
// still refused while each ran.
type writableHook struct {
	mu            sync.Mutex
	calls         int
	admittedEarly bool
}

func (h *writableHook) register(s *Server) {
	s.OnWritable(func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		h.calls++
		if !s.mode.gate.ReadOnly() {
			h.admittedEarly = true
		}
	})
}

func (h *writableHook) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.calls
}

// TestHoldLive drives one server through the hold's life: applied by a
// ..data swap, removed, expired without any file change, combined with
// the configuration's own read-only flag, and invalid. Writes are refused
// exactly while the hold or the flag asks for it, the status reports it,
// and the OnWritable callbacks run on each switch back to read-write, and
// only then, before writes are admitted.
func TestHoldLive(t *testing.T) {
	m := newKubeMount(t, map[string]string{"config.yml": testConfig(false, "")})
	ls := startWithHold(t, m.path("config.yml"), m.path("hold.json"))
	hook := &writableHook{}
	hook.register(ls.Server)
	wantHook := func(n int, when string) {
		t.Helper()
		if got := hook.count(); got != n {
			t.Fatalf("%s: OnWritable ran %d times, want %d", when, got, n)
		}
	}
	pushes := func(want int, when string) {
		t.Helper()
		if code, body := ls.push(t); code != want {
			t.Fatalf("%s: a push answered %d, want %d: %s", when, code, want, body)
		}
	}
	start, _ := ls.status(t)
	pushes(http.StatusCreated, "without a hold")

	// Applied by a ConfigMap update.
	expires := time.Now().Add(time.Hour).Truncate(time.Second)
	m.swap(map[string]string{"config.yml": testConfig(false, ""), "hold.json": holdJSON("run-1", expires)})
	testutil.Eventually(t, "the hold to be reported", func() bool { st, _ := ls.status(t); return st.ReadOnly })
	st, _ := ls.status(t)
	if st.Hold == nil || st.Hold.ID != "run-1" || !st.Hold.Expires.Equal(expires) || !st.ReadOnlyConfigured || st.HoldInvalid {
		t.Errorf("status with a hold: %+v", st)
	}
	if st.ReadOnlySince.Before(start.WritableSince) || !st.WritableSince.IsZero() {
		t.Errorf("readOnlySince %v, writableSince %v (started writable at %v)", st.ReadOnlySince, st.WritableSince, start.WritableSince)
	}
	if got := ls.readOnlyHeader(t); got != "true" {
		t.Errorf("%s = %q under a hold", ReadOnlyHeader, got)
	}
	if code, body := ls.push(t); code != http.StatusMethodNotAllowed || !strings.Contains(body, "read-only") {
		t.Errorf("a push under the hold: %d %s", code, body)
	}
	wantHook(0, "entering the hold")
	// The raw body carries exactly the contract's field names.
	resp, err := http.Get("http://" + ls.DebugAddr() + StatusPath)
	if err != nil {
		t.Fatal(err)
	}
	var raw map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&raw); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	hold, _ := raw["hold"].(map[string]any)
	if raw["readOnly"] != true || raw["readOnlySince"] == nil || raw["writableSince"] != nil ||
		hold["id"] != "run-1" || hold["expires"] != expires.UTC().Format(time.RFC3339) || len(hold) != 2 {
		t.Errorf("status body: %v", raw)
	}

	// Removed: the key leaves the ConfigMap.
	onHold, _ := ls.status(t)
	m.swap(map[string]string{"config.yml": testConfig(false, "")})
	testutil.Eventually(t, "read-write after the hold was removed", func() bool { st, _ := ls.status(t); return !st.ReadOnlyConfigured })
	wantHook(1, "the hold removed")
	st, _ = ls.status(t)
	if st.ReadOnly || st.Hold != nil || !st.ReadOnlySince.IsZero() || !st.WritableSince.After(onHold.ReadOnlySince) {
		t.Errorf("status after the hold: %+v", st)
	}
	pushes(http.StatusCreated, "after the hold was removed")

	// Expired: nothing changes on disk.
	m.swap(map[string]string{"config.yml": testConfig(false, ""), "hold.json": holdJSON("run-2", time.Now().Add(1500*time.Millisecond))})
	testutil.Eventually(t, "the short hold", func() bool { st, _ := ls.status(t); return st.Hold != nil && st.Hold.ID == "run-2" })
	pushes(http.StatusMethodNotAllowed, "under the short hold")
	testutil.Eventually(t, "the hold to expire", func() bool { st, _ := ls.status(t); return !st.ReadOnlyConfigured })
	wantHook(2, "the hold expired")
	if st, _ := ls.status(t); st.Hold != nil || st.HoldInvalid {
		t.Errorf("status after expiry: %+v", st)
	}
	pushes(http.StatusCreated, "after the hold expired")

	// The configuration's flag and a hold together: read-write only when
	// neither asks for read-only, and the callbacks run once, then.
	m.swap(map[string]string{"config.yml": testConfig(true, "")})
	testutil.Eventually(t, "read-only from the configuration", func() bool { st, _ := ls.status(t); return st.ReadOnly && st.Hold == nil })
	m.swap(map[string]string{"config.yml": testConfig(true, ""), "hold.json": holdJSON("run-3", time.Now().Add(time.Hour))})
	testutil.Eventually(t, "the hold on top", func() bool { st, _ := ls.status(t); return st.Hold != nil && st.Hold.ID == "run-3" })
	m.swap(map[string]string{"config.yml": testConfig(false, ""), "hold.json": holdJSON("run-3", time.Now().Add(time.Hour))})
	testutil.Eventually(t, "the flag cleared", func() bool { st, _ := ls.status(t); return st.ConfigGeneration == 3 })
	if st, _ := ls.status(t); !st.ReadOnly {
		t.Errorf("the hold no longer applies once the flag is cleared: %+v", st)
	}
	pushes(http.StatusMethodNotAllowed, "under the hold, flag cleared")
	wantHook(2, "switching between the flag and the hold")
	m.swap(map[string]string{"config.yml": testConfig(false, "")})
	testutil.Eventually(t, "read-write", func() bool { st, _ := ls.status(t); return !st.ReadOnlyConfigured })
	wantHook(3, "the last source released")
	// And the configuration's flag alone.
	m.swap(map[string]string{"config.yml": testConfig(true, "")})
	testutil.Eventually(t, "read-only from the flag", func() bool { st, _ := ls.status(t); return st.ReadOnly })
	m.swap(map[string]string{"config.yml": testConfig(false, "")})
	testutil.Eventually(t, "read-write after the flag", func() bool { st, _ := ls.status(t); return !st.ReadOnlyConfigured })
	wantHook(4, "the flag cleared")

	// An invalid hold file is no hold, and says so.
	m.swap(map[string]string{"config.yml": testConfig(false, ""), "hold.json": `{"holder":"someone"}`})
	testutil.Eventually(t, "holdInvalid", func() bool { st, _ := ls.status(t); return st.HoldInvalid })
	if st, _ := ls.status(t); st.ReadOnlyConfigured || st.Hold != nil {
		t.Errorf("status with an invalid hold: %+v", st)
	}
	pushes(http.StatusCreated, "with an invalid hold file")
	wantHook(4, "an invalid hold")
	if hook.admittedEarly {
		t.Error("an OnWritable callback ran after writes were admitted again")
	}

	logs := ls.logs.String()
	for _, want := range []string{
		`msg="Hold applied" id=run-1 holder="GarbageCollection ns/run-1" expires=` + expires.UTC().Format(time.RFC3339),
		`msg="Hold removed" id=run-1`,
		`msg="Hold applied" id=run-2`,
		`msg="Hold expired" id=run-2`,
		`level=ERROR msg="Hold file invalid; no hold applies"`,
		"id: missing",
	} {
		if !strings.Contains(logs, want) {
			t.Errorf("log lacks %q", want)
		}
	}
	if strings.Count(logs, "Hold file invalid") != 1 {
		t.Errorf("the invalid hold file was logged %d times, want once", strings.Count(logs, "Hold file invalid"))
	}
}

// TestServerStartedUnderAHold starts a server while a hold is in place
// (a pod restarted mid-run): its very first request, a write, is refused,
// and it reports read-only at once; an expired hold found at start is no
// hold.
func TestServerStartedUnderAHold(t *testing.T) {
	t.Run("active", func(t *testing.T) {
		dir := t.TempDir()
		config, holdFile := filepath.Join(dir, "config.yml"), filepath.Join(dir, "hold.json")
		writeFile(t, config, testConfig(false, ""))
		writeFile(t, holdFile, holdJSON("run-1", time.Now().Add(time.Hour)))
		ls := startWithHold(t, config, holdFile)
		hook := &writableHook{}
		hook.register(ls.Server)
		if code, body := ls.push(t); code != http.StatusMethodNotAllowed {
			t.Fatalf("the first write: %d %s", code, body)
		}
		st, _ := ls.status(t)
		if !st.ReadOnly || st.Hold == nil || st.Hold.ID != "run-1" || st.ReadOnlySince.IsZero() {
			t.Errorf("status: %+v", st)
		}
		// Removing the file ends it.
		if err := os.Remove(holdFile); err != nil {
			t.Fatal(err)
		}
		testutil.Eventually(t, "read-write", func() bool { st, _ := ls.status(t); return !st.ReadOnlyConfigured })
		if code, body := ls.push(t); code != http.StatusCreated {
			t.Errorf("a write after the hold: %d %s", code, body)
		}
		if hook.count() != 1 {
			t.Errorf("OnWritable ran %d times, want 1", hook.count())
		}
	})
	t.Run("expired", func(t *testing.T) {
		dir := t.TempDir()
		config, holdFile := filepath.Join(dir, "config.yml"), filepath.Join(dir, "hold.json")
		writeFile(t, config, testConfig(false, ""))
		writeFile(t, holdFile, holdJSON("run-0", time.Now().Add(-time.Minute)))
		ls := startWithHold(t, config, holdFile)
		if code, body := ls.push(t); code != http.StatusCreated {
			t.Fatalf("a write under an expired hold: %d %s", code, body)
		}
		if st, _ := ls.status(t); st.ReadOnlyConfigured || st.Hold != nil || st.HoldInvalid {
			t.Errorf("status: %+v", st)
		}
		if !strings.Contains(ls.logs.String(), `msg="Hold expired" id=run-0`) {
			t.Errorf("log:\n%s", ls.logs.String())
		}
	})
	t.Run("directory missing", func(t *testing.T) {
		cfg, err := configuration.ParseWithEnv(strings.NewReader(testConfig(false, "")), nil)
		if err != nil {
			t.Fatal(err)
		}
		_, err = New(cfg, Options{Logger: slog.New(slog.DiscardHandler), AccessLog: io.Discard, HoldFile: filepath.Join(t.TempDir(), "absent", "hold.json")})
		if err == nil || !strings.Contains(err.Error(), "--hold-file") {
			t.Errorf("New = %v, want an error naming --hold-file", err)
		}
	})
}
