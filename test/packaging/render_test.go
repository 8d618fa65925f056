package packaging

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"

	"github.com/berth-dev/berth/internal/testutil"
)

// object is one rendered manifest, decoded as JSON would be.
type object = map[string]any

var (
	toolsMu sync.Mutex
	tools   = map[string]string{}
)

// tool returns the pinned binary the Makefile installs: $env when set (make
// test sets it), else what `make -s <target>` prints last after installing it.
func tool(t *testing.T, env, target string) string {
	t.Helper()
	if p := os.Getenv(env); p != "" {
		return p
	}
	toolsMu.Lock()
	defer toolsMu.Unlock()
	if p, ok := tools[target]; ok {
		return p
	}
	cmd := exec.Command("make", "-s", "--no-print-directory", target)
	cmd.Dir = testutil.RepoRoot(t)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("make %s: %v: %s", target, err, stderr.String())
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	p := strings.TrimSpace(lines[len(lines)-1])
	tools[target] = p
	return p
}

func helm(t *testing.T) string      { return tool(t, "HELM", "helm-path") }
func kustomize(t *testing.T) string { return tool(t, "KUSTOMIZE", "kustomize-path") }

var inputsOnce sync.Once

// readInputs reads every file helm and kustomize render from. go test caches
// a passing result until a file the test process itself opened changes; the
// tools' own reads are invisible to it, so without this an edited template
// would replay a stale PASS.
func readInputs(t *testing.T) {
	inputsOnce.Do(func() {
		root := testutil.RepoRoot(t)
		if _, err := os.ReadFile(filepath.Join(root, "hack", "kustomize-build.sh")); err != nil {
			t.Fatal(err)
		}
		for _, dir := range []string{"charts", "config"} {
			err := filepath.WalkDir(filepath.Join(root, dir), func(path string, d os.DirEntry, err error) error {
				if err != nil || d.IsDir() {
					return err
				}
				_, err = os.ReadFile(path)
				return err
			})
			if err != nil {
				t.Fatalf("reading %s: %v", dir, err)
			}
		}
	})
}

// run runs a command in the repository root and returns its stdout; stderr
// goes into the error.
func run(t *testing.T, env []string, name string, args ...string) ([]byte, error) {
	t.Helper()
	readInputs(t)
	cmd := exec.Command(name, args...)
	cmd.Dir = testutil.RepoRoot(t)
	cmd.Env = append(os.Environ(), env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, errors.New(err.Error() + ": " + stderr.String())
	}
	return out, nil
}

// decode splits a multi-document YAML stream into objects, skipping empty
// documents.
func decode(t *testing.T, data []byte) []object {
	t.Helper()
	var objs []object
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return objs
		}
		if err != nil {
			t.Fatalf("reading YAML: %v", err)
		}
		var obj object
		if err := yaml.Unmarshal(doc, &obj); err != nil {
			t.Fatalf("decoding %q: %v", doc, err)
		}
		if obj != nil {
			objs = append(objs, obj)
		}
	}
}

// repoFile decodes the single object in a file of the repository.
func repoFile(t *testing.T, rel string) object {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(testutil.RepoRoot(t), rel))
	if err != nil {
		t.Fatal(err)
	}
	objs := decode(t, data)
	if len(objs) != 1 {
		t.Fatalf("%s: %d objects, want 1", rel, len(objs))
	}
	return objs[0]
}

func kindOf(o object) string { s, _ := o["kind"].(string); return s }

func nameOf(o object) string {
	m, _ := o["metadata"].(map[string]any)
	s, _ := m["name"].(string)
	return s
}

func namespaceOf(o object) string {
	m, _ := o["metadata"].(map[string]any)
	s, _ := m["namespace"].(string)
	return s
}

// ofKind returns the objects of one kind.
func ofKind(objs []object, kind string) []object {
	var out []object
	for _, o := range objs {
		if kindOf(o) == kind {
			out = append(out, o)
		}
	}
	return out
}

// only returns the one object of a kind, failing when there is not exactly one.
func only(t *testing.T, objs []object, kind string) object {
	t.Helper()
	found := ofKind(objs, kind)
	if len(found) != 1 {
		t.Fatalf("%d objects of kind %s rendered, want 1", len(found), kind)
	}
	return found[0]
}

// into converts a decoded object into a typed API object.
func into[T any](t *testing.T, o object) *T {
	t.Helper()
	out := new(T)
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(o, out); err != nil {
		t.Fatalf("converting %s %s: %v", kindOf(o), nameOf(o), err)
	}
	return out
}

// manager is what the tests check of the Deployment's "manager" container.
type manager struct {
	Image, PullPolicy string
	Args              []string
	Env               map[string]string // name -> value
	Ports             map[string]int32  // name -> containerPort
}

// managerOf returns the Deployment's "manager" container.
func managerOf(t *testing.T, d *appsv1.Deployment) manager {
	t.Helper()
	for _, c := range d.Spec.Template.Spec.Containers {
		if c.Name != "manager" {
			continue
		}
		m := manager{Image: c.Image, PullPolicy: string(c.ImagePullPolicy), Args: c.Args,
			Env: map[string]string{}, Ports: map[string]int32{}}
		for _, e := range c.Env {
			m.Env[e.Name] = e.Value
		}
		for _, p := range c.Ports {
			m.Ports[p.Name] = p.ContainerPort
		}
		return m
	}
	t.Fatalf("Deployment %s has no manager container", d.Name)
	return manager{}
}

// flag returns the value of --name=value in args, and whether it is there.
func flag(args []string, name string) (string, bool) {
	for _, a := range args {
		if v, ok := strings.CutPrefix(a, "--"+name+"="); ok {
			return v, true
		}
	}
	return "", false
}

// checkCRDs fails unless the rendered CRDs are exactly those in
// config/crd/bases, no more and no fewer.
func checkCRDs(t *testing.T, objs []object) {
	t.Helper()
	bases := filepath.Join(testutil.RepoRoot(t), "config", "crd", "bases")
	files, err := filepath.Glob(filepath.Join(bases, "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no CRDs in %s (%v)", bases, err)
	}
	want := map[string]object{}
	for _, f := range files {
		rel, _ := filepath.Rel(testutil.RepoRoot(t), f)
		o := repoFile(t, rel)
		want[nameOf(o)] = o
	}
	got := map[string]object{}
	for _, o := range ofKind(objs, "CustomResourceDefinition") {
		got[nameOf(o)] = o
	}
	if !reflect.DeepEqual(sortedKeys(got), sortedKeys(want)) {
		t.Fatalf("rendered CRDs %v, config/crd/bases has %v", sortedKeys(got), sortedKeys(want))
	}
	for name, w := range want {
		if !reflect.DeepEqual(got[name], w) {
			t.Errorf("CRD %s differs from config/crd/bases (run `make manifests`)", name)
		}
	}
}

// checkRules fails unless a rendered role grants exactly the rules of the
// role in a file of config/rbac.
func checkRules(t *testing.T, role object, file string) {
	t.Helper()
	want := into[rbacv1.ClusterRole](t, repoFile(t, file)).Rules
	got := into[rbacv1.ClusterRole](t, role).Rules
	if len(want) == 0 {
		t.Fatalf("%s has no rules", file)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s %s rules differ from %s:\n got  %+v\n want %+v", kindOf(role), nameOf(role), file, got, want)
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
