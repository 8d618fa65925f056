package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/testutil"
)

// A configuration key registryd does not know is a startup error naming
// the key, never silently ignored.
func TestServeRefusesUnknownKeys(t *testing.T) {
	tests := map[string]struct {
		config string
		env    map[string]string
		want   []string // substrings of stderr
	}{
		"unknown top-level key": {
			config: "version: 0.1\nstorage: {inmemory: {}}\nhttp: {addr: 127.0.0.1:0}\nfrobnicate: true\n",
			want:   []string{"frobnicate: unknown key", "line 4"},
		},
		"unknown nested key": {
			config: "version: 0.1\nstorage: {inmemory: {}}\nhttp:\n  addr: 127.0.0.1:0\n  bogus: 1\n",
			want:   []string{"http.bogus: unknown key", "known keys are addr,"},
		},
		"unknown storage driver parameter": {
			config: "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: /tmp/x\n    flavour: vanilla\nhttp: {addr: 127.0.0.1:0}\n",
			want:   []string{"storage.filesystem.flavour"},
		},
		"unknown key from the environment": {
			config: "version: 0.1\nstorage: {inmemory: {}}\nhttp: {addr: 127.0.0.1:0}\n",
			env:    map[string]string{"REGISTRY_HTTP_BOGUS": "1"},
			want:   []string{"REGISTRY_HTTP_BOGUS"},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			path := filepath.Join(t.TempDir(), "config.yml")
			if err := os.WriteFile(path, []byte(tc.config), 0o600); err != nil {
				t.Fatal(err)
			}
			// A configuration that were accepted would serve until ctx
			// ends; the deadline turns that into a failure, not a hang.
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			var stdout, stderr bytes.Buffer
			code := run(ctx, []string{"serve", path}, &stdout, &stderr)
			if code == 0 {
				t.Fatalf("registryd serve exited 0; stderr:\n%s", stderr.String())
			}
			for _, w := range tc.want {
				if !strings.Contains(stderr.String(), w) {
					t.Errorf("stderr does not contain %q:\n%s", w, stderr.String())
				}
			}
		})
	}
}

// TestServeBinaryUnknownKey checks the same through the real process: a
// non-zero exit status and the key on stderr.
func TestServeBinaryUnknownKey(t *testing.T) {
	bin := testutil.Registryd(t)
	path := filepath.Join(t.TempDir(), "config.yml")
	if err := os.WriteFile(path, []byte("version: 0.1\nstorage: {inmemory: {}}\nhttp: {addr: 127.0.0.1:0}\nfrobnicate: true\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "serve", path)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() == 0 || ctx.Err() != nil {
		t.Fatalf("registryd serve: err = %v, want a non-zero exit; stderr:\n%s", err, stderr.String())
	}
	if !strings.Contains(stderr.String(), "frobnicate: unknown key") {
		t.Errorf("stderr does not name the key:\n%s", stderr.String())
	}
}
