package packaging

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"

	"github.com/berth-dev/berth/internal/testutil"
)

const (
	chart = "charts/berth"
	// Release name and namespace of every render; with the chart named
	// "berth" the full name is the release name.
	release   = "berth"
	namespace = "berth-system"
	valuesAll = "test/packaging/testdata/values-all.yaml"
)

// helmTemplate renders the chart, CRDs included, with extra helm arguments.
func helmTemplate(t *testing.T, args ...string) ([]object, error) {
	t.Helper()
	// `helm template` assumes the cluster is the Kubernetes version Berth is
	// built and tested against (a helm built by `go install` otherwise
	// assumes v1.20, which the chart's kubeVersion refuses).
	base := []string{"template", release, chart, "--namespace", namespace, "--include-crds", "--kube-version", k8sVersion(t)}
	out, err := run(t, nil, helm(t), append(base, args...)...)
	if err != nil {
		return nil, err
	}
	return decode(t, out), nil
}

// appVersion is the chart's appVersion, the default tag of both images.
func appVersion(t *testing.T) string {
	t.Helper()
	var c struct {
		AppVersion string `json:"appVersion"`
	}
	data, err := os.ReadFile(filepath.Join(testutil.RepoRoot(t), chart, "Chart.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(data, &c); err != nil || c.AppVersion == "" {
		t.Fatalf("Chart.yaml appVersion: %q, %v", c.AppVersion, err)
	}
	return c.AppVersion
}

func TestChartLint(t *testing.T) {
	tests := map[string][]string{
		"default values": nil,
		"every value":    {"--values", valuesAll},
	}
	for name, args := range tests {
		t.Run(name, func(t *testing.T) {
			out, err := run(t, nil, helm(t), append([]string{"lint", "--strict", chart}, args...)...)
			if err != nil {
				t.Fatalf("helm lint: %v\n%s", err, out)
			}
		})
	}
}

// TestChartCopiesAreGenerated checks that the chart's copies of generated
// files (Helm reads nothing outside the chart) are byte for byte what
// controller-gen wrote into config/: `make manifests` refreshes them.
func TestChartCopiesAreGenerated(t *testing.T) {
	root := testutil.RepoRoot(t)
	names := func(dir string) []string {
		files, err := filepath.Glob(filepath.Join(root, dir, "*.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		for i, f := range files {
			files[i] = filepath.Base(f)
		}
		return files
	}
	bases, crds := names("config/crd/bases"), names(chart+"/crds")
	if len(bases) == 0 || !slices.Equal(bases, crds) {
		t.Fatalf("%s/crds has %v, config/crd/bases has %v (run `make manifests`)", chart, crds, bases)
	}
	pairs := map[string]string{chart + "/files/rbac/role.yaml": "config/rbac/role.yaml"}
	for _, f := range bases {
		pairs[chart+"/crds/"+f] = "config/crd/bases/" + f
	}
	for copied, generated := range pairs {
		a, err := os.ReadFile(filepath.Join(root, copied))
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(filepath.Join(root, generated))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(a, b) {
			t.Errorf("%s differs from %s (run `make manifests`; never edit the copy)", copied, generated)
		}
	}
}

// freeForm are the values passed through to Kubernetes objects as they are:
// their insides are Kubernetes' schema, not the chart's.
var freeForm = []string{
	"resources", "podSecurityContext", "securityContext", "affinity", "nodeSelector", "tolerations",
	"podAnnotations", "podLabels", "serviceAccount.annotations", "metrics.service.annotations",
	"metrics.serviceMonitor.labels", "imagePullSecrets", "extraArgs", "watchNamespaces",
}

// TestValuesAllSetsEveryValue keeps testdata/values-all.yaml honest: it sets
// every key of values.yaml, and nothing values.yaml does not have.
func TestValuesAllSetsEveryValue(t *testing.T) {
	keys := func(rel string) []string {
		data, err := os.ReadFile(filepath.Join(testutil.RepoRoot(t), rel))
		if err != nil {
			t.Fatal(err)
		}
		var v map[string]any
		if err := yaml.Unmarshal(data, &v); err != nil {
			t.Fatalf("%s: %v", rel, err)
		}
		var out []string
		var walk func(prefix string, m map[string]any)
		walk = func(prefix string, m map[string]any) {
			for k, v := range m {
				sub, ok := v.(map[string]any)
				if ok && !slices.Contains(freeForm, prefix+k) {
					walk(prefix+k+".", sub)
					continue
				}
				out = append(out, prefix+k)
			}
		}
		walk("", v)
		slices.Sort(out)
		return out
	}
	defaults, all := keys(chart+"/values.yaml"), keys(valuesAll)
	if !slices.Equal(defaults, all) {
		for _, k := range defaults {
			if !slices.Contains(all, k) {
				t.Errorf("%s does not set %s", valuesAll, k)
			}
		}
		for _, k := range all {
			if !slices.Contains(defaults, k) {
				t.Errorf("%s sets %s, which values.yaml does not have", valuesAll, k)
			}
		}
	}
}

func TestChartRender(t *testing.T) {
	tag := appVersion(t)
	tests := map[string]struct {
		args  []string
		check func(t *testing.T, objs []object)
	}{
		"default values": {
			check: func(t *testing.T, objs []object) {
				checkCommon(t, objs)
				m := managerOf(t, deployment(t, objs))
				want := manager{
					Image:      "berth/manager:" + tag,
					PullPolicy: "IfNotPresent",
					Args: []string{"--leader-elect=true", "--health-probe-bind-address=:8081",
						"--metrics-bind-address=:8080", "--zap-log-level=info"},
					Env:   map[string]string{"REGISTRYD_IMAGE": "berth/registryd:" + tag, "MANAGER_IMAGE": "berth/manager:" + tag},
					Ports: map[string]int32{"health": 8081, "metrics": 8080},
				}
				if !reflect.DeepEqual(m, want) {
					t.Errorf("manager container:\n got  %+v\n want %+v", m, want)
				}
				checkRules(t, only(t, objs, "Role"), "config/rbac/leader_election_role.yaml")
				for _, kind := range []string{"Service", "ServiceMonitor"} {
					if n := len(ofKind(objs, kind)); n != 0 {
						t.Errorf("%d %s rendered by default, want none", n, kind)
					}
				}
				d := deployment(t, objs)
				if *d.Spec.Replicas != 1 {
					t.Errorf("replicas %d, want 1", *d.Spec.Replicas)
				}
				if sc := d.Spec.Template.Spec.SecurityContext; sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot {
					t.Errorf("pod securityContext %+v, want runAsNonRoot", sc)
				}
			},
		},
		"every value": {
			args:  []string{"--values", valuesAll},
			check: checkValuesAll,
		},
		"leader election off": {
			args: []string{"--set", "leaderElection.enabled=false"},
			check: func(t *testing.T, objs []object) {
				checkCommon(t, objs)
				m := managerOf(t, deployment(t, objs))
				if v, _ := flag(m.Args, "leader-elect"); v != "false" {
					t.Errorf("--leader-elect=%q, want false", v)
				}
				if n := len(ofKind(objs, "Role")) + len(ofKind(objs, "RoleBinding")); n != 0 {
					t.Errorf("%d leader-election Role/RoleBinding rendered, want none", n)
				}
			},
		},
		"metrics off": {
			args: []string{"--set", "metrics.enabled=false"},
			check: func(t *testing.T, objs []object) {
				m := managerOf(t, deployment(t, objs))
				if v, _ := flag(m.Args, "metrics-bind-address"); v != "0" {
					t.Errorf("--metrics-bind-address=%q, want 0", v)
				}
				if _, ok := m.Ports["metrics"]; ok {
					t.Error("metrics port declared with metrics off")
				}
			},
		},
		"existing ServiceAccount, no RBAC": {
			args: []string{"--set", "serviceAccount.create=false,serviceAccount.name=ops,rbac.create=false"},
			check: func(t *testing.T, objs []object) {
				for _, kind := range []string{"ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"} {
					if n := len(ofKind(objs, kind)); n != 0 {
						t.Errorf("%d %s rendered, want none", n, kind)
					}
				}
				if sa := deployment(t, objs).Spec.Template.Spec.ServiceAccountName; sa != "ops" {
					t.Errorf("serviceAccountName %q, want ops", sa)
				}
				checkCRDs(t, objs)
			},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			objs, err := helmTemplate(t, tc.args...)
			if err != nil {
				t.Fatalf("helm template: %v", err)
			}
			tc.check(t, objs)
		})
	}
}

// TestChartRefuses checks that value combinations that cannot work fail the
// render with a message naming the values.
func TestChartRefuses(t *testing.T) {
	tests := map[string]struct {
		set, message string
	}{
		"replicas without leader election": {
			set:     "replicaCount=2,leaderElection.enabled=false",
			message: "replicaCount > 1 needs leaderElection.enabled",
		},
		"ServiceMonitor without metrics": {
			set:     "metrics.enabled=false,metrics.serviceMonitor.enabled=true",
			message: "metrics.serviceMonitor.enabled needs metrics.enabled",
		},
		"metrics Service without metrics": {
			set:     "metrics.enabled=false,metrics.service.enabled=true",
			message: "metrics.service.enabled needs metrics.enabled",
		},
		"one port for metrics and probes": {
			set:     "metrics.port=8081",
			message: "metrics.port and healthProbe.port must differ",
		},
		"no ServiceAccount name": {
			set:     "serviceAccount.create=false",
			message: "serviceAccount.name is required",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := helmTemplate(t, "--set", tc.set)
			if err == nil || !strings.Contains(err.Error(), tc.message) {
				t.Fatalf("helm template --set %s: error %v, want one containing %q", tc.set, err, tc.message)
			}
		})
	}
}

func deployment(t *testing.T, objs []object) *appsv1.Deployment {
	t.Helper()
	return into[appsv1.Deployment](t, only(t, objs, "Deployment"))
}

// checkCommon checks what every render with RBAC on has: the CRDs of
// config/crd/bases, the ClusterRole of config/rbac/role.yaml bound to the
// manager's ServiceAccount, all in the release namespace.
func checkCommon(t *testing.T, objs []object) {
	t.Helper()
	checkCRDs(t, objs)
	checkRules(t, only(t, objs, "ClusterRole"), "config/rbac/role.yaml")
	sa := only(t, objs, "ServiceAccount")
	if nameOf(sa) != release || namespaceOf(sa) != namespace {
		t.Errorf("ServiceAccount %s/%s, want %s/%s", namespaceOf(sa), nameOf(sa), namespace, release)
	}
	d := deployment(t, objs)
	if d.Namespace != namespace || d.Spec.Template.Spec.ServiceAccountName != nameOf(sa) {
		t.Errorf("Deployment %s/%s runs as %q, want namespace %s and ServiceAccount %s",
			d.Namespace, d.Name, d.Spec.Template.Spec.ServiceAccountName, namespace, nameOf(sa))
	}
	crb := into[rbacv1.ClusterRoleBinding](t, only(t, objs, "ClusterRoleBinding"))
	checkBinding(t, crb.Name, crb.RoleRef, crb.Subjects, "ClusterRole", nameOf(only(t, objs, "ClusterRole")), nameOf(sa))
	for _, o := range ofKind(objs, "RoleBinding") {
		rb := into[rbacv1.RoleBinding](t, o)
		checkBinding(t, rb.Name, rb.RoleRef, rb.Subjects, "Role", nameOf(only(t, objs, "Role")), nameOf(sa))
	}
}

func checkBinding(t *testing.T, name string, ref rbacv1.RoleRef, subjects []rbacv1.Subject, kind, role, sa string) {
	t.Helper()
	if ref.Kind != kind || ref.Name != role {
		t.Errorf("binding %s refers to %s %s, want %s %s", name, ref.Kind, ref.Name, kind, role)
	}
	want := []rbacv1.Subject{{Kind: "ServiceAccount", Name: sa, Namespace: namespace}}
	if !reflect.DeepEqual(subjects, want) {
		t.Errorf("binding %s subjects %+v, want %+v", name, subjects, want)
	}
}

// checkValuesAll checks that every value of testdata/values-all.yaml reaches
// the rendered objects.
func checkValuesAll(t *testing.T, objs []object) {
	checkCRDs(t, objs)
	checkRules(t, only(t, objs, "ClusterRole"), "config/rbac/role.yaml")
	checkRules(t, only(t, objs, "Role"), "config/rbac/leader_election_role.yaml")

	sa := into[corev1.ServiceAccount](t, only(t, objs, "ServiceAccount"))
	if sa.Name != "berth-operator" || sa.Annotations["example.com/role"] != "berth" {
		t.Errorf("ServiceAccount %s annotations %v, want berth-operator with example.com/role", sa.Name, sa.Annotations)
	}
	for _, o := range append(ofKind(objs, "ClusterRoleBinding"), ofKind(objs, "RoleBinding")...) {
		rb := into[rbacv1.RoleBinding](t, o)
		if len(rb.Subjects) != 1 || rb.Subjects[0].Name != "berth-operator" {
			t.Errorf("%s %s subjects %+v, want ServiceAccount berth-operator", kindOf(o), rb.Name, rb.Subjects)
		}
	}

	d := deployment(t, objs)
	m := managerOf(t, d)
	wantManager := manager{
		Image:      "registry.example.com:5000/berth/manager:v1.2.3",
		PullPolicy: "Always",
		Args: []string{"--leader-elect=true", "--health-probe-bind-address=:9440",
			"--metrics-bind-address=:9090", "--watch-namespaces=team-a,team-b",
			"--zap-log-level=debug", "--zap-encoder=console"},
		Env: map[string]string{"REGISTRYD_IMAGE": "registry.example.com:5000/berth/registryd:v1.2.4",
			"MANAGER_IMAGE": "registry.example.com:5000/berth/manager:v1.2.3"},
		Ports: map[string]int32{"health": 9440, "metrics": 9090},
	}
	if !reflect.DeepEqual(m, wantManager) {
		t.Errorf("manager container:\n got  %+v\n want %+v", m, wantManager)
	}
	pod := d.Spec.Template
	ps := pod.Spec
	c := ps.Containers[0]
	for _, check := range []struct {
		what string
		ok   bool
	}{
		{"replicas 3", *d.Spec.Replicas == 3},
		{"imagePullSecrets", reflect.DeepEqual(ps.ImagePullSecrets, []corev1.LocalObjectReference{{Name: "pull-secret"}})},
		{"podAnnotations", pod.Annotations["example.com/owner"] == "platform"},
		{"podLabels", pod.Labels["team"] == "platform" && pod.Labels["app.kubernetes.io/name"] == "berth"},
		{"podSecurityContext", ps.SecurityContext != nil && ps.SecurityContext.RunAsUser != nil && *ps.SecurityContext.RunAsUser == 65532 &&
			ps.SecurityContext.FSGroup != nil && *ps.SecurityContext.FSGroup == 65532},
		{"securityContext", c.SecurityContext != nil && c.SecurityContext.Privileged != nil && !*c.SecurityContext.Privileged &&
			c.SecurityContext.ReadOnlyRootFilesystem != nil && *c.SecurityContext.ReadOnlyRootFilesystem},
		{"resources", c.Resources.Limits.Cpu().String() == "1" && c.Resources.Requests.Memory().String() == "128Mi"},
		{"probes on healthProbe.port", c.LivenessProbe.HTTPGet.Port.StrVal == "health" && c.ReadinessProbe.HTTPGet.Port.StrVal == "health"},
		{"priorityClassName", ps.PriorityClassName == "operators"},
		{"nodeSelector", ps.NodeSelector["kubernetes.io/os"] == "linux"},
		{"tolerations", len(ps.Tolerations) == 1 && ps.Tolerations[0].Key == "dedicated" && ps.Tolerations[0].Effect == corev1.TaintEffectNoSchedule},
		{"affinity", ps.Affinity != nil && ps.Affinity.NodeAffinity != nil &&
			len(ps.Affinity.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms) == 1},
	} {
		if !check.ok {
			t.Errorf("Deployment: %s not as values-all.yaml sets it", check.what)
		}
	}

	svc := into[corev1.Service](t, only(t, objs, "Service"))
	wantPorts := []corev1.ServicePort{{Name: "metrics", Port: 8443, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromString("metrics")}}
	if svc.Spec.Type != corev1.ServiceTypeNodePort || !reflect.DeepEqual(svc.Spec.Ports, wantPorts) ||
		svc.Annotations["example.com/scrape"] != "true" {
		t.Errorf("metrics Service type %s ports %+v annotations %v", svc.Spec.Type, svc.Spec.Ports, svc.Annotations)
	}
	for k, v := range svc.Spec.Selector {
		if pod.Labels[k] != v {
			t.Errorf("metrics Service selects %s=%s, which the manager pods lack", k, v)
		}
	}

	sm := only(t, objs, "ServiceMonitor")
	var spec struct {
		Selector struct {
			MatchLabels map[string]string `json:"matchLabels"`
		} `json:"selector"`
		NamespaceSelector struct {
			MatchNames []string `json:"matchNames"`
		} `json:"namespaceSelector"`
		Endpoints []struct {
			Port, Path, Interval, ScrapeTimeout string
		} `json:"endpoints"`
	}
	raw, _ := yaml.Marshal(sm["spec"])
	if err := yaml.Unmarshal(raw, &spec); err != nil {
		t.Fatal(err)
	}
	if labels := sm["metadata"].(map[string]any)["labels"].(map[string]any); labels["release"] != "prometheus" {
		t.Errorf("ServiceMonitor labels %v, want release=prometheus", labels)
	}
	for k, v := range spec.Selector.MatchLabels {
		if svc.Labels[k] != v {
			t.Errorf("ServiceMonitor selects %s=%s, which the metrics Service lacks", k, v)
		}
	}
	if !slices.Equal(spec.NamespaceSelector.MatchNames, []string{namespace}) || len(spec.Endpoints) != 1 ||
		spec.Endpoints[0].Port != "metrics" || spec.Endpoints[0].Path != "/metrics" ||
		spec.Endpoints[0].Interval != "30s" || spec.Endpoints[0].ScrapeTimeout != "10s" {
		t.Errorf("ServiceMonitor spec %+v", spec)
	}
}
