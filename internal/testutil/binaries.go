// Package testutil gives tests the real binaries they run as peers:
// registryd built from this tree, and the CNCF Distribution registry
// installed at a pinned version by hack/install-distribution.sh.
package testutil

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
)

// RepoRoot is the repository's top directory.
func RepoRoot(t testing.TB) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("cannot locate the repository root")
	}
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

var (
	distOnce sync.Once
	distPath string
	distErr  string
)

// DistributionRegistry returns the path of the Distribution registry binary
// (`registry serve config.yml`, `registry garbage-collect ...`). It uses
// $DISTRIBUTION_REGISTRY when set (the Makefile sets it), and otherwise runs
// hack/install-distribution.sh once per test binary.
func DistributionRegistry(t testing.TB) string {
	t.Helper()
	distOnce.Do(func() {
		if p := os.Getenv("DISTRIBUTION_REGISTRY"); p != "" {
			distPath = p
			return
		}
		var stderr bytes.Buffer
		cmd := exec.Command(filepath.Join(RepoRoot(t), "hack", "install-distribution.sh"))
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			distErr = err.Error() + ": " + stderr.String()
			return
		}
		distPath = strings.TrimSpace(string(out))
	})
	if distErr != "" {
		t.Fatalf("installing the Distribution registry: %s", distErr)
	}
	return distPath
}

var (
	regOnce sync.Once
	regPath string
	regErr  string
)

// Registryd builds registryd from this tree once per test binary and
// returns the binary's path.
func Registryd(t testing.TB) string {
	t.Helper()
	regOnce.Do(func() {
		dir, err := os.MkdirTemp("", "registryd-bin-")
		if err != nil {
			regErr = err.Error()
			return
		}
		regPath = filepath.Join(dir, "registryd")
		cmd := exec.Command("go", "build", "-o", regPath, "./registryd")
		cmd.Dir = RepoRoot(t)
		if out, err := cmd.CombinedOutput(); err != nil {
			regErr = err.Error() + ": " + string(out)
		}
	})
	if regErr != "" {
		t.Fatalf("building registryd: %s", regErr)
	}
	return regPath
}
