package routes

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestClassify(t *testing.T) {
	manifest := Route{Kind: Manifest, Name: "a/b", Ref: "v1"}
	tests := map[string]struct {
		path, prefix string
		want         Match
	}{
		"no prefix":                    {path: "/v2/a/b/manifests/v1", want: Match{Route: manifest, Served: true, API: true}},
		"base":                         {path: "/v2/", want: Match{Route: Route{Kind: Base}, Served: true, API: true}},
		"unknown api path":             {path: "/v2/a/unknown", want: Match{API: true}},
		"outside v2":                   {path: "/favicon.ico"},
		"v2 lookalike":                 {path: "/v20/a/manifests/v1"},
		"prefixed":                     {path: "/reg/v2/a/b/manifests/v1", prefix: "/reg/", want: Match{Route: manifest, Served: true, API: true}},
		"prefix without slashes":       {path: "/reg/v2/a/b/manifests/v1", prefix: "reg", want: Match{Route: manifest, Served: true, API: true}},
		"prefix slash only":            {path: "/v2/a/b/manifests/v1", prefix: "/", want: Match{Route: manifest, Served: true, API: true}},
		"prefixed unknown":             {path: "/reg/v2/a/unknown", prefix: "/reg/", want: Match{API: true}},
		"prefixed base":                {path: "/reg/v2", prefix: "/reg/", want: Match{Route: Route{Kind: Base}, Served: true, API: true}},
		"prefix glued to v2":           {path: "/regv2/a/b/manifests/v1", prefix: "/reg/"},
		"other prefix":                 {path: "/other/v2/a/b/manifests/v1", prefix: "/reg/"},
		"prefix outside /v2":           {path: "/reg/favicon.ico", prefix: "/reg/"},
		"api path outside the prefix":  {path: "/v2/a/b/manifests/v1", prefix: "/reg/", want: Match{Route: manifest, API: true}},
		"api base outside the prefix":  {path: "/v2/", prefix: "/reg/", want: Match{Route: Route{Kind: Base}, API: true}},
		"prefix named v2, route under": {path: "/v2/v2/a/b/manifests/v1", prefix: "/v2/", want: Match{Route: manifest, Served: true, API: true}},
		"prefix named v2, no route": {path: "/v2/a/b/manifests/v1", prefix: "/v2/",
			want: Match{Route: Route{Kind: Manifest, Name: "a/b", Ref: "v1"}, API: true}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := Classify(tc.path, tc.prefix); got != tc.want {
				t.Errorf("Classify(%q, %q) = %+v, want %+v", tc.path, tc.prefix, got, tc.want)
			}
		})
	}
}

// The first middleware classifies; everything behind it reads that Match,
// it never parses the path again.
func TestMiddlewareCarriesTheMatch(t *testing.T) {
	var got Match
	var ok bool
	h := Middleware("/reg/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, ok = FromContext(r.Context())
		// A later Of, even with another prefix, returns the same Match.
		if _, again := Of(r, ""); again != got {
			t.Errorf("Of behind the middleware = %+v, want the carried %+v", again, got)
		}
	}))
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/reg/v2/a/tags/list", nil))
	want := Match{Route: Route{Kind: Tags, Name: "a"}, Served: true, API: true}
	if !ok || got != want {
		t.Errorf("carried %+v (%v), want %+v", got, ok, want)
	}
}

func TestOfClassifiesOnce(t *testing.T) {
	r := httptest.NewRequest(http.MethodGet, "/v2/a/manifests/v1", nil)
	if _, ok := FromContext(r.Context()); ok {
		t.Fatal("a fresh request carries a Match")
	}
	r2, m := Of(r, "")
	if want := (Match{Route: Route{Kind: Manifest, Name: "a", Ref: "v1"}, Served: true, API: true}); m != want {
		t.Fatalf("Of = %+v, want %+v", m, want)
	}
	stored := Match{Route: Route{Kind: Catalog}, Served: true, API: true}
	r3 := r2.WithContext(WithRoute(r2.Context(), stored))
	if _, m := Of(r3, ""); m != stored {
		t.Errorf("Of parsed the path again: %+v, want the stored %+v", m, stored)
	}
}
