package auth

import (
	"net/http/httptest"
	"slices"
	"testing"

	"github.com/berth-dev/berth/registryd/routes"
)

func TestRequiredAccess(t *testing.T) {
	repo := func(name, action string) Access { return Access{Type: "repository", Name: name, Action: action} }
	tests := map[string]struct {
		method, target, prefix string
		api                    bool
		want                   []Access
	}{
		"base":                  {method: "GET", target: "/v2/", api: true},
		"base without slash":    {method: "GET", target: "/v2", api: true},
		"catalog":               {method: "GET", target: "/v2/_catalog?n=10", api: true, want: []Access{{Type: "registry", Name: "catalog", Action: "*"}}},
		"tags":                  {method: "GET", target: "/v2/a/b/tags/list", api: true, want: []Access{repo("a/b", "pull")}},
		"manifest get":          {method: "GET", target: "/v2/lib/alpine/manifests/latest", api: true, want: []Access{repo("lib/alpine", "pull")}},
		"manifest head":         {method: "HEAD", target: "/v2/alpine/manifests/sha256:abc", api: true, want: []Access{repo("alpine", "pull")}},
		"manifest put":          {method: "PUT", target: "/v2/alpine/manifests/v1", api: true, want: []Access{repo("alpine", "pull"), repo("alpine", "push")}},
		"manifest delete":       {method: "DELETE", target: "/v2/alpine/manifests/sha256:abc", api: true, want: []Access{repo("alpine", "delete")}},
		"blob get":              {method: "GET", target: "/v2/x/blobs/sha256:abc", api: true, want: []Access{repo("x", "pull")}},
		"blob delete":           {method: "DELETE", target: "/v2/x/blobs/sha256:abc", api: true, want: []Access{repo("x", "delete")}},
		"upload start":          {method: "POST", target: "/v2/x/y/blobs/uploads/", api: true, want: []Access{repo("x/y", "pull"), repo("x/y", "push")}},
		"upload start no slash": {method: "POST", target: "/v2/x/blobs/uploads", api: true, want: []Access{repo("x", "pull"), repo("x", "push")}},
		"mount": {method: "POST", target: "/v2/dst/blobs/uploads/?mount=sha256:abc&from=src/repo", api: true,
			want: []Access{repo("dst", "pull"), repo("dst", "push"), repo("src/repo", "pull")}},
		"upload patch":            {method: "PATCH", target: "/v2/x/blobs/uploads/123", api: true, want: []Access{repo("x", "pull"), repo("x", "push")}},
		"upload put":              {method: "PUT", target: "/v2/x/blobs/uploads/123?digest=sha256:abc", api: true, want: []Access{repo("x", "pull"), repo("x", "push")}},
		"upload status":           {method: "GET", target: "/v2/x/blobs/uploads/123", api: true, want: []Access{repo("x", "pull")}},
		"upload cancel":           {method: "DELETE", target: "/v2/x/blobs/uploads/123", api: true, want: []Access{repo("x", "delete")}},
		"referrers":               {method: "GET", target: "/v2/x/referrers/sha256:abc", api: true, want: []Access{repo("x", "pull")}},
		"repo named like a route": {method: "GET", target: "/v2/tags/list/tags/list", api: true, want: []Access{repo("tags/list", "pull")}},
		"unknown method":          {method: "OPTIONS", target: "/v2/x/manifests/v1", api: true, want: []Access{repo("x", "*")}},
		"unknown api path":        {method: "GET", target: "/v2/x/unknown", api: true},
		"outside v2":              {method: "GET", target: "/favicon.ico"},
		"v2 lookalike":            {method: "GET", target: "/v20/x"},
		"prefixed":                {method: "GET", target: "/reg/v2/x/manifests/v1", prefix: "/reg/", api: true, want: []Access{repo("x", "pull")}},
		"prefix not matched":      {method: "GET", target: "/other/v2/x/manifests/v1", prefix: "/reg/"},
		"unprefixed with prefix":  {method: "GET", target: "/v2/x/manifests/v1", prefix: "/reg/", api: true, want: []Access{repo("x", "pull")}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			r := httptest.NewRequest(tc.method, tc.target, nil)
			m := routes.Classify(r.URL.Path, tc.prefix)
			rt, api := m.Route, m.API
			if api != tc.api {
				t.Fatalf("api = %v, want %v", api, tc.api)
			}
			if !api {
				return
			}
			if got := requiredAccess(rt, r); !slices.Equal(got, tc.want) {
				t.Errorf("access = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestScopeParam(t *testing.T) {
	got := scopeParam([]Access{
		{Type: "repository", Name: "dst", Action: "push"},
		{Type: "repository", Name: "dst", Action: "pull"},
		{Type: "repository", Name: "src", Action: "pull"},
	})
	if want := "repository:dst:pull,push repository:src:pull"; got != want {
		t.Errorf("scope = %q, want %q", got, want)
	}
}
