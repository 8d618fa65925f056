// Package testutil gives tests the real binaries they run as peers:
// registryd built from this tree, and the CNCF Distribution registry
// installed at a pinned version by hack/install-distribution.sh.
package testutil

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
)

// TB is the part of testing.TB the helpers that Ginkgo specs use too need
// (GinkgoT() has it).
type TB interface {
	Helper()
	Fatal(args ...any)
	Fatalf(format string, args ...any)
}

// RepoRoot is the repository's top directory.
func RepoRoot(t TB) string {
	t.Helper()
	return repoRoot()
}

func repoRoot() string {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		panic("cannot locate the repository root")
	}
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// hackTool is a binary a hack/ script installs and prints the path of.
type hackTool struct {
	once sync.Once
	path string
	err  string
}

var (
	hackToolsMu sync.Mutex
	hackTools   = map[string]*hackTool{}
)

// HackTool returns the binary that the script hack/<script> installs
// (idempotently, cached under bin/) and prints the path of. When the
// environment variable env is set (the Makefile sets it after running the
// script itself) its value is used instead. The script runs once per test
// binary.
func HackTool(t TB, env, script string) string {
	t.Helper()
	p, err := LookupHackTool(env, script)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// LookupHackTool is HackTool for callers without a testing.TB (TestMain).
func LookupHackTool(env, script string) (string, error) {
	hackToolsMu.Lock()
	tool, ok := hackTools[script]
	if !ok {
		tool = &hackTool{}
		hackTools[script] = tool
	}
	hackToolsMu.Unlock()
	tool.once.Do(func() {
		if p := os.Getenv(env); p != "" {
			tool.path = p
			return
		}
		var stderr bytes.Buffer
		cmd := exec.Command(filepath.Join(repoRoot(), "hack", script))
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			tool.err = err.Error() + ": " + stderr.String()
			return
		}
		tool.path = strings.TrimSpace(string(out))
	})
	if tool.err != "" {
		return "", fmt.Errorf("hack/%s: %s", script, tool.err)
	}
	return tool.path, nil
}

// DistributionRegistry returns the path of the Distribution registry binary
// (`registry serve config.yml`, `registry garbage-collect ...`), from
// $DISTRIBUTION_REGISTRY or hack/install-distribution.sh.
func DistributionRegistry(t testing.TB) string {
	t.Helper()
	return HackTool(t, "DISTRIBUTION_REGISTRY", "install-distribution.sh")
}

var (
	regOnce sync.Once
	regPath string
	regErr  string
)

// Registryd builds registryd from this tree once per test binary, as
// `make build` ships it (CGO_ENABLED=0, -trimpath, -ldflags "-s -w": the
// benchmarks compare its memory with the Distribution registry's, built
// the same way by hack/install-distribution.sh), and returns the binary's
// path. Every package builds it to a file of its own under bin/test/ and
// renames that over bin/test/registryd: one binary on disk however many
// test binaries ran, none left in the temporary directory, and a process
// already running the previous file keeps it.
func Registryd(t testing.TB) string {
	t.Helper()
	regOnce.Do(func() {
		dir := filepath.Join(repoRoot(), "bin", "test")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			regErr = err.Error()
			return
		}
		f, err := os.CreateTemp(dir, "registryd-*.tmp")
		if err != nil {
			regErr = err.Error()
			return
		}
		tmp := f.Name()
		f.Close()
		cmd := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w", "-o", tmp, "./registryd")
		cmd.Dir = repoRoot()
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			os.Remove(tmp)
			regErr = err.Error() + ": " + string(out)
			return
		}
		regPath = filepath.Join(dir, "registryd")
		if err := os.Rename(tmp, regPath); err != nil {
			os.Remove(tmp)
			regErr = err.Error()
		}
	})
	if regErr != "" {
		t.Fatalf("building registryd: %s", regErr)
	}
	return regPath
}
