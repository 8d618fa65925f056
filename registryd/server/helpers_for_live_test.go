package server

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/testutil"
	"github.com/berth-dev/berth/registryd/configuration"
)

// Helpers of the live-reload, TLS, auth and drain tests: a server started
// on loopback from a configuration file, certificates from a CA made
// here, and bounded polling.

// liveServer is a Server serving on loopback until the test ends.
type liveServer struct {
	*Server
	addr string
	logs *testutil.LockedBuffer
	stop context.CancelFunc
	done chan error
}

// startFromFile parses the configuration at path and serves it, watching
// the file as registryd serve does.
func startFromFile(t *testing.T, path string) *liveServer {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := configuration.ParseWithEnv(bytes.NewReader(data), nil)
	if err != nil {
		t.Fatal(err)
	}
	return startServer(t, cfg, path)
}

func startServer(t *testing.T, cfg *configuration.Configuration, configPath string) *liveServer {
	t.Helper()
	return startServerWith(t, cfg, Options{ConfigPath: configPath})
}

// startServerWith serves cfg with o (Logger, AccessLog and LogLevel are
// set here) until the test ends, and waits for the debug server when cfg
// has one.
func startServerWith(t *testing.T, cfg *configuration.Configuration, o Options) *liveServer {
	t.Helper()
	logs := &testutil.LockedBuffer{}
	level := new(slog.LevelVar)
	logger, err := NewLoggerLevel(cfg, logs, level)
	if err != nil {
		t.Fatal(err)
	}
	o.Logger, o.AccessLog, o.LogLevel = logger, io.Discard, level
	srv, err := New(cfg, o)
	if err != nil {
		t.Fatal(err)
	}
	l, err := srv.Listen()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ls := &liveServer{Server: srv, addr: l.Addr().String(), logs: logs, stop: cancel, done: make(chan error, 1)}
	go func() { ls.done <- srv.Serve(ctx, l) }()
	if cfg.HTTP.Debug != nil {
		testutil.Eventually(t, "the debug server", func() bool { return srv.DebugAddr() != "" })
	}
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-ls.done:
			if err != nil && !errors.Is(err, http.ErrServerClosed) {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("server did not stop")
		}
		if t.Failed() {
			t.Logf("server log:\n%s", logs.String())
		}
	})
	return ls
}

// testConfig is a minimal configuration on loopback with in-memory
// storage and a debug server (where the status endpoint is); extra is
// appended after the http section's keys (indent it to add one there).
func testConfig(readOnly bool, extra string) string {
	ro := "false"
	if readOnly {
		ro = "true"
	}
	return `version: 0.1
log:
  accesslog:
    disabled: true
storage:
  inmemory: {}
  delete:
    enabled: true
  maintenance:
    readonly:
      enabled: ` + ro + `
http:
  addr: 127.0.0.1:0
  secret: test-secret
  debug:
    addr: 127.0.0.1:0
` + extra
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// indent prefixes every line of s with n spaces.
func indent(s string, n int) string {
	pad := strings.Repeat(" ", n)
	return pad + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n"+pad) + "\n"
}
