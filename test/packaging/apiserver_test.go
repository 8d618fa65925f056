package packaging

import (
	"context"
	"fmt"
	"testing"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/berth-dev/berth/internal/testutil"
)

// TestInstallOnAPIServer applies what `make deploy` and the chart (every
// value set) render to a real kube-apiserver, with server-side apply and
// strict field validation: each object must be one the API server accepts,
// and the CRDs must become Established. Nothing runs the pods (no kubelet);
// that is the end-to-end suite's job.
func TestInstallOnAPIServer(t *testing.T) {
	kustomized, err := run(t, []string{"KUSTOMIZE=" + kustomize(t)}, "hack/kustomize-build.sh",
		"registry.example.com/berth/manager:v1", "registry.example.com/berth/registryd:v1")
	if err != nil {
		t.Fatalf("hack/kustomize-build.sh: %v", err)
	}
	charted, err := helmTemplate(t, "--values", valuesAll)
	if err != nil {
		t.Fatalf("helm template: %v", err)
	}

	env := &envtest.Environment{
		BinaryAssetsDirectory: testutil.HackTool(t, "KUBEBUILDER_ASSETS", "setup-envtest.sh"),
		// A loaded 2-core machine can take longer than the 20 s default.
		ControlPlaneStartTimeout: 2 * time.Minute,
	}
	cfg, err := env.Start()
	if err != nil {
		t.Fatalf("starting kube-apiserver: %v", err)
	}
	t.Cleanup(func() {
		if err := env.Stop(); err != nil {
			t.Errorf("stopping kube-apiserver: %v", err)
		}
	})
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	if err := apiextensionsv1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	c = client.WithFieldValidation(c, "Strict")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	// What the chart's values-all.yaml refers to and a cluster would have.
	prereqs := []object{
		{"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": namespace}},
		{"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass", "metadata": map[string]any{"name": "operators"}, "value": int64(1000)},
	}
	// The prometheus-operator CRD is not ours to install; the chart test
	// checks the ServiceMonitor's fields.
	skip := map[string]bool{"ServiceMonitor": true}

	tests := []struct {
		name string
		objs []object
	}{
		{"prerequisites", prereqs},
		{"make deploy", decode(t, kustomized)},
		{"helm chart, every value", charted},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// CRDs first, as kubectl and helm order them.
			var crds, rest []object
			for _, o := range tc.objs {
				switch {
				case skip[kindOf(o)]:
				case kindOf(o) == "CustomResourceDefinition":
					crds = append(crds, o)
				default:
					rest = append(rest, o)
				}
			}
			for _, o := range append(crds, rest...) {
				u := &unstructured.Unstructured{Object: o}
				if err := c.Patch(ctx, u, client.Apply, client.FieldOwner("berth-packaging-test"), client.ForceOwnership); err != nil {
					t.Errorf("applying %s %s: %v", kindOf(o), nameOf(o), err)
				}
			}
			for _, o := range crds {
				waitEstablished(ctx, t, c, nameOf(o))
			}
		})
	}
}

func waitEstablished(ctx context.Context, t *testing.T, c client.Client, name string) {
	t.Helper()
	testutil.EventuallyNoError(t, "CRD "+name+" is Established", func() error {
		var crd apiextensionsv1.CustomResourceDefinition
		if err := c.Get(ctx, client.ObjectKey{Name: name}, &crd); err != nil {
			return err
		}
		for _, cond := range crd.Status.Conditions {
			if cond.Type == apiextensionsv1.Established && cond.Status == apiextensionsv1.ConditionTrue {
				return nil
			}
		}
		return fmt.Errorf("conditions %v", crd.Status.Conditions)
	}, testutil.Within(time.Minute), testutil.Every(100*time.Millisecond))
}
