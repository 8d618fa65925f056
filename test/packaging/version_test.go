package packaging

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"golang.org/x/mod/modfile"

	"github.com/berth-dev/berth/internal/testutil"
)

// k8sVersion is the Kubernetes version Berth is built and tested against,
// from hack/k8s-version: the one place it is written.
func k8sVersion(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(testutil.RepoRoot(t), "hack", "k8s-version"))
	if err != nil {
		t.Fatal(err)
	}
	v := strings.TrimSpace(string(data))
	if !regexp.MustCompile(`^1\.[0-9]+\.[0-9]+$`).MatchString(v) {
		t.Fatalf("hack/k8s-version = %q, want 1.MINOR.PATCH", v)
	}
	return v
}

// TestKubernetesVersionOnePlace holds go.mod's Kubernetes libraries to the
// version in hack/k8s-version (the libraries are its v0. twin), so the
// envtest API server, the local cluster and the client code never drift
// apart.
func TestKubernetesVersionOnePlace(t *testing.T) {
	want := "v0." + strings.TrimPrefix(k8sVersion(t), "1.")
	data, err := os.ReadFile(filepath.Join(testutil.RepoRoot(t), "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	mod, err := modfile.ParseLax("go.mod", data, nil)
	if err != nil {
		t.Fatal(err)
	}
	seen := 0
	for _, r := range mod.Require {
		switch r.Mod.Path {
		case "k8s.io/api", "k8s.io/apimachinery", "k8s.io/client-go":
			seen++
			if r.Mod.Version != want {
				t.Errorf("go.mod requires %s %s; hack/k8s-version says %s", r.Mod.Path, r.Mod.Version, want)
			}
		}
	}
	if seen != 3 {
		t.Errorf("go.mod requires %d of k8s.io/{api,apimachinery,client-go}, want 3", seen)
	}
}
