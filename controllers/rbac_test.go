package controllers

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	rbacv1 "k8s.io/api/rbac/v1"
	"sigs.k8s.io/yaml"
)

// The manager's RBAC (config/rbac/role.yaml, generated from the
// +kubebuilder:rbac markers) is held to what its controllers do: the
// suite's manager talks to the API server through requestRecorder, and
// after the suite every request it made must be allowed by the role (the
// role suffices; envtest's admin client would not refuse it), and every
// grant must have been used by some request or be one of unexercised,
// which names the code that needs it where this suite cannot get to it
// (the role is the minimum).

// unexercised are the grants the controllers need that this suite's
// requests do not reliably exercise (some are used only when a run takes a
// path timing decides), each with the reason it is kept.
var unexercised = map[apiRequest]string{
	{"update", "berth.dev", "registries/finalizers"}:         "children are controlled with blockOwnerDeletion, which the OwnerReferencesPermissionEnforcement admission plugin (OpenShift; not envtest) allows only to who may update the owner's finalizers",
	{"update", "berth.dev", "garbagecollections/finalizers"}: "the collector Job and the retention ConfigMap are controlled by the run with blockOwnerDeletion (as registries/finalizers)",
	{"get", "berth.dev", "registries"}:                       "the garbage collection trigger Role grants it, and RBAC lets the manager grant only what it holds (envtest's admin is not checked)",
	{"create", "berth.dev", "garbagecollections"}:            "the garbage collection trigger Role grants it (as get registries)",
	{"patch", "", "pods"}:                                    "nudgePods patches the running registryd pods, and envtest runs no pod (no kubelet)",
	{"delete", "", "pods"}:                                   "stopCollector deletes a failed run's collector pod while its container runs, which needs a kubelet (controllers/gctest fakes the pods)",
	{"get", "cert-manager.io", "certificates"}:               "reconcileCertificate applies the Certificate of spec.tls.issuerRef (an unstructured object, read directly); envtest has no cert-manager CRD",
	{"create", "cert-manager.io", "certificates"}:            "the apply of reconcileCertificate creates a missing Certificate",
	{"patch", "cert-manager.io", "certificates"}:             "the apply of reconcileCertificate",
	{"get", "monitoring.coreos.com", "servicemonitors"}:      "reconcileServiceMonitor applies or deletes the ServiceMonitor (unstructured, read directly); envtest has no prometheus-operator CRD",
	{"create", "monitoring.coreos.com", "servicemonitors"}:   "the apply of reconcileServiceMonitor creates a missing ServiceMonitor",
	{"patch", "monitoring.coreos.com", "servicemonitors"}:    "the apply of reconcileServiceMonitor",
	{"delete", "monitoring.coreos.com", "servicemonitors"}:   "reconcileServiceMonitor deletes it when spec.metrics.serviceMonitor is turned off",
	{"get", "batch", "jobs"}:                                 "the collecting phase reads its collector Job without the cache; this suite's one run (registry_api_test) gets there only when it has time before the suite ends (controllers/gctest runs every phase)",
	{"create", "batch", "jobs"}:                              "startCollector creates the collector Job (as get batch/jobs)",
	{"create", "", "events"}:                                 "every run transition is an Event, sent asynchronously by the recorder, which may still hold them when the suite ends (as get batch/jobs)",
	{"delete", "batch", "jobs"}:                              "stopCollector deletes a failed run's collector Job (controllers/gctest runs the state machine)",
	{"delete", "berth.dev", "garbagecollections"}:            "pruneHistory deletes the finished runs beyond the history limits (controllers/gctest)",
	{"patch", "", "events"}:                                  "the event recorder patches an Event it emits again (a count), which this suite's runs may not repeat",
}

// apiRequest is one authorisation check: a verb on a group's resource
// (with its subresource, "deployments/status").
type apiRequest struct{ verb, group, resource string }

func (r apiRequest) String() string { return fmt.Sprintf("%s %s/%s", r.verb, r.group, r.resource) }

// requestRecorder collects the requests of every client built from the
// manager's rest.Config (wrap each one's transport).
type requestRecorder struct {
	mu   sync.Mutex
	seen map[apiRequest]bool
}

func (r *requestRecorder) wrap(next http.RoundTripper) http.RoundTripper {
	return roundTripFunc(func(req *http.Request) (*http.Response, error) {
		if a, ok := authorizationOf(req); ok {
			r.mu.Lock()
			r.seen[a] = true
			// A server-side apply creates a missing object, which the
			// API server authorises as create too.
			if a.verb == "patch" && strings.HasPrefix(req.Header.Get("Content-Type"), "application/apply-patch") {
				r.seen[apiRequest{"create", a.group, a.resource}] = true
			}
			r.mu.Unlock()
		}
		return next.RoundTrip(req)
	})
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(req *http.Request) (*http.Response, error) { return f(req) }

func (r *requestRecorder) used() map[apiRequest]bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[apiRequest]bool, len(r.seen))
	for k, v := range r.seen {
		out[k] = v
	}
	return out
}

// authorizationOf maps a request to the verb and resource the API server
// authorises it as; discovery requests (no resource) are not resource
// requests and need no rule.
func authorizationOf(req *http.Request) (apiRequest, bool) {
	parts := strings.Split(strings.Trim(req.URL.Path, "/"), "/")
	var group string
	switch {
	case len(parts) >= 2 && parts[0] == "api":
		parts = parts[2:]
	case len(parts) >= 3 && parts[0] == "apis":
		group, parts = parts[1], parts[3:]
	default:
		return apiRequest{}, false
	}
	if len(parts) >= 2 && parts[0] == "namespaces" && len(parts) != 2 {
		parts = parts[2:] // a namespaced resource; "namespaces/<name>" itself is not
	}
	if len(parts) == 0 {
		return apiRequest{}, false
	}
	resource, named := parts[0], len(parts) >= 2
	if len(parts) >= 3 {
		resource += "/" + parts[2]
	}
	var verb string
	switch req.Method {
	case http.MethodGet:
		switch {
		case named:
			verb = "get"
		case req.URL.Query().Get("watch") == "true" || req.URL.Query().Get("watch") == "1":
			verb = "watch"
		default:
			verb = "list"
		}
	case http.MethodPost:
		verb = "create"
	case http.MethodPut:
		verb = "update"
	case http.MethodPatch:
		verb = "patch"
	case http.MethodDelete:
		verb = "delete"
		if !named {
			verb = "deletecollection"
		}
	default:
		return apiRequest{}, false
	}
	return apiRequest{verb, group, resource}, true
}

// grants lists every verb on every resource the role's rules name.
func grants(rules []rbacv1.PolicyRule) map[apiRequest]bool {
	out := map[apiRequest]bool{}
	for _, rule := range rules {
		for _, g := range rule.APIGroups {
			for _, res := range rule.Resources {
				for _, v := range rule.Verbs {
					out[apiRequest{v, g, res}] = true
				}
			}
		}
	}
	return out
}

// checkRBAC compares what the manager did in this suite with role.yaml:
// every request must be granted, and, when every spec ran, every grant
// used or kept in unexercised.
func checkRBAC(rec *requestRecorder) {
	data, err := os.ReadFile(filepath.Join("..", "config", "rbac", "role.yaml"))
	Expect(err).NotTo(HaveOccurred())
	var role rbacv1.ClusterRole
	Expect(yaml.Unmarshal(data, &role)).To(Succeed())
	granted := grants(role.Rules)
	used := rec.used()
	Expect(used).NotTo(BeEmpty(), "the recorder saw no request of the manager")

	Expect(notGranted(used, granted)).To(BeEmpty(), "the manager made requests config/rbac/role.yaml does not allow (add +kubebuilder:rbac markers)")
	Expect(notGranted(unexercised, granted)).To(BeEmpty(), "unexercised names grants config/rbac/role.yaml does not have")
	suite, _ := GinkgoConfiguration()
	if len(suite.FocusStrings) > 0 || len(suite.SkipStrings) > 0 || suite.LabelFilter != "" || len(suite.FocusFiles) > 0 {
		return // a part of the suite uses a part of the role
	}
	Expect(unusedGrants(granted, used)).To(BeEmpty(),
		"config/rbac/role.yaml grants what no request of the suite used: remove the +kubebuilder:rbac markers that grant it, or name the code that needs it in unexercised")
}

// notGranted lists the requests of reqs that granted lacks, sorted.
func notGranted[V any](reqs map[apiRequest]V, granted map[apiRequest]bool) []string {
	var out []string
	for a := range reqs {
		if !granted[a] {
			out = append(out, a.String())
		}
	}
	slices.Sort(out)
	return out
}

// unusedGrants lists the grants neither used nor kept in unexercised.
func unusedGrants(granted, used map[apiRequest]bool) []string {
	var out []string
	for a := range granted {
		if _, kept := unexercised[a]; !used[a] && !kept {
			out = append(out, a.String())
		}
	}
	slices.Sort(out)
	return out
}

func TestUnusedGrants(t *testing.T) {
	kept := apiRequest{"update", "berth.dev", "registries/finalizers"}
	if _, ok := unexercised[kept]; !ok {
		t.Fatalf("the test assumes %v is kept in unexercised", kept)
	}
	granted := grants([]rbacv1.PolicyRule{
		{APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"list", "watch", "update"}},
		{APIGroups: []string{"berth.dev"}, Resources: []string{"registries/finalizers"}, Verbs: []string{"update"}},
	})
	used := map[apiRequest]bool{{"list", "", "configmaps"}: true, {"watch", "", "configmaps"}: true}
	if got, want := unusedGrants(granted, used), []string{"update /configmaps"}; !slices.Equal(got, want) {
		t.Errorf("unusedGrants = %q, want %q", got, want)
	}
	used[apiRequest{"update", "", "configmaps"}] = true
	if got := unusedGrants(granted, used); len(got) != 0 {
		t.Errorf("every grant used or kept, unusedGrants = %q", got)
	}
}

func TestAuthorizationOf(t *testing.T) {
	for _, tt := range []struct {
		method, url string
		want        apiRequest
		ok          bool
	}{
		{"GET", "/api/v1/namespaces/ns/configmaps/c", apiRequest{"get", "", "configmaps"}, true},
		{"GET", "/api/v1/namespaces/ns/configmaps", apiRequest{"list", "", "configmaps"}, true},
		{"GET", "/apis/apps/v1/deployments?watch=true", apiRequest{"watch", "apps", "deployments"}, true},
		{"PATCH", "/apis/berth.dev/v1alpha1/namespaces/ns/registries/r/status", apiRequest{"patch", "berth.dev", "registries/status"}, true},
		{"PUT", "/apis/berth.dev/v1alpha1/namespaces/ns/garbagecollections/g/finalizers", apiRequest{"update", "berth.dev", "garbagecollections/finalizers"}, true},
		{"POST", "/api/v1/namespaces/ns/events", apiRequest{"create", "", "events"}, true},
		{"DELETE", "/apis/batch/v1/namespaces/ns/jobs/j", apiRequest{"delete", "batch", "jobs"}, true},
		{"DELETE", "/apis/batch/v1/namespaces/ns/jobs", apiRequest{"deletecollection", "batch", "jobs"}, true},
		{"GET", "/api/v1/namespaces/ns", apiRequest{"get", "", "namespaces"}, true},
		{"GET", "/apis/apps/v1", apiRequest{}, false},
		{"GET", "/api", apiRequest{}, false},
	} {
		req, err := http.NewRequest(tt.method, "https://apiserver"+tt.url, nil)
		if err != nil {
			t.Fatal(err)
		}
		got, ok := authorizationOf(req)
		if got != tt.want || ok != tt.ok {
			t.Errorf("%s %s = %v, %v; want %v, %v", tt.method, tt.url, got, ok, tt.want, tt.ok)
		}
	}
}
