package packaging

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/berth-dev/berth/internal/testutil"
)

// TestKustomizeDeploy renders config/default the way `make deploy` does
// (hack/kustomize-build.sh IMG REGISTRYD_IMG) and checks what it installs.
func TestKustomizeDeploy(t *testing.T) {
	const (
		img          = "registry.example.com:5000/berth/manager:v1.2.3"
		registrydImg = "registry.example.com:5000/berth/registryd:v1.2.4"
	)
	// The script edits a copy: the kustomizations it edits stay as they are.
	watched := []string{"config/default/kustomization.yaml", "config/manager/kustomization.yaml"}
	before := readAll(t, watched)

	out, err := run(t, []string{"KUSTOMIZE=" + kustomize(t)}, "hack/kustomize-build.sh", img, registrydImg)
	if err != nil {
		t.Fatalf("hack/kustomize-build.sh: %v", err)
	}
	if after := readAll(t, watched); !reflect.DeepEqual(before, after) {
		t.Error("hack/kustomize-build.sh changed files under config/")
	}
	objs := decode(t, out)

	checkCRDs(t, objs)
	checkRules(t, only(t, objs, "ClusterRole"), "config/rbac/role.yaml")
	checkRules(t, only(t, objs, "Role"), "config/rbac/leader_election_role.yaml")
	if ns := only(t, objs, "Namespace"); nameOf(ns) != namespace {
		t.Errorf("Namespace %s, want %s", nameOf(ns), namespace)
	}
	sa := only(t, objs, "ServiceAccount")
	d := deployment(t, objs)
	if d.Namespace != namespace || namespaceOf(sa) != namespace || d.Spec.Template.Spec.ServiceAccountName != nameOf(sa) {
		t.Errorf("Deployment %s/%s runs as %q; ServiceAccount is %s/%s", d.Namespace, d.Name,
			d.Spec.Template.Spec.ServiceAccountName, namespaceOf(sa), nameOf(sa))
	}
	m := managerOf(t, d)
	if m.Image != img {
		t.Errorf("manager image %q, want %q", m.Image, img)
	}
	if m.Env["REGISTRYD_IMAGE"] != registrydImg {
		t.Errorf("REGISTRYD_IMAGE %q, want %q", m.Env["REGISTRYD_IMAGE"], registrydImg)
	}
	if m.Env["MANAGER_IMAGE"] != img {
		t.Errorf("MANAGER_IMAGE %q, want the manager's own image %q", m.Env["MANAGER_IMAGE"], img)
	}
	if v, _ := flag(m.Args, "leader-elect"); v == "false" {
		t.Error("leader election off in config/default")
	}
	for _, kind := range []string{"ClusterRoleBinding", "RoleBinding"} {
		for _, o := range ofKind(objs, kind) {
			subjects, _ := o["subjects"].([]any)
			want := []any{map[string]any{"kind": "ServiceAccount", "name": nameOf(sa), "namespace": namespace}}
			if !reflect.DeepEqual(subjects, want) {
				t.Errorf("%s %s subjects %v, want %v", kind, nameOf(o), subjects, want)
			}
		}
	}
}

// TestKustomizeUndeploy renders config/default as it is, what `make
// undeploy` deletes: the same objects, with the default images.
func TestKustomizeUndeploy(t *testing.T) {
	out, err := run(t, nil, kustomize(t), "build", "config/default")
	if err != nil {
		t.Fatalf("kustomize build config/default: %v", err)
	}
	objs := decode(t, out)
	checkCRDs(t, objs)
	m := managerOf(t, deployment(t, objs))
	if m.Image == "" || m.Env["REGISTRYD_IMAGE"] == "" || m.Env["MANAGER_IMAGE"] == "" {
		t.Errorf("manager image %q, REGISTRYD_IMAGE %q, MANAGER_IMAGE %q: want all set", m.Image, m.Env["REGISTRYD_IMAGE"], m.Env["MANAGER_IMAGE"])
	}
}

func readAll(t *testing.T, rels []string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, rel := range rels {
		data, err := os.ReadFile(filepath.Join(testutil.RepoRoot(t), rel))
		if err != nil {
			t.Fatal(err)
		}
		out[rel] = string(data)
	}
	return out
}
