package routes

import "testing"

func TestParse(t *testing.T) {
	tests := map[string]struct {
		path string
		want Route
		ok   bool
	}{
		"base":                    {path: "/v2/", want: Route{Kind: Base}, ok: true},
		"base without slash":      {path: "/v2", want: Route{Kind: Base}, ok: true},
		"catalog":                 {path: "/v2/_catalog", want: Route{Kind: Catalog}, ok: true},
		"tags":                    {path: "/v2/a/b/tags/list", want: Route{Kind: Tags, Name: "a/b"}, ok: true},
		"blob":                    {path: "/v2/a/blobs/sha256:abc", want: Route{Kind: Blob, Name: "a", Ref: "sha256:abc"}, ok: true},
		"upload start":            {path: "/v2/a/b/c/blobs/uploads/", want: Route{Kind: UploadStart, Name: "a/b/c"}, ok: true},
		"upload start no slash":   {path: "/v2/a/blobs/uploads", want: Route{Kind: UploadStart, Name: "a"}, ok: true},
		"upload":                  {path: "/v2/a/blobs/uploads/123", want: Route{Kind: Upload, Name: "a", Ref: "123"}, ok: true},
		"manifest":                {path: "/v2/a/manifests/v1", want: Route{Kind: Manifest, Name: "a", Ref: "v1"}, ok: true},
		"referrers":               {path: "/v2/a/referrers/sha256:abc", want: Route{Kind: Referrers, Name: "a", Ref: "sha256:abc"}, ok: true},
		"repo named like a route": {path: "/v2/tags/list/tags/list", want: Route{Kind: Tags, Name: "tags/list"}, ok: true},
		"repo named blobs":        {path: "/v2/blobs/manifests/v1", want: Route{Kind: Manifest, Name: "blobs", Ref: "v1"}, ok: true},
		"empty reference":         {path: "/v2/a/manifests/"},
		"unknown":                 {path: "/v2/a/unknown"},
		"outside v2":              {path: "/v3/a/manifests/v1"},
		"lookalike":               {path: "/v20/a/manifests/v1"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, ok := Parse(tc.path)
			if ok != tc.ok || got != tc.want {
				t.Errorf("Parse(%q) = %+v, %v; want %+v, %v", tc.path, got, ok, tc.want, tc.ok)
			}
		})
	}
}

func TestKindString(t *testing.T) {
	for k := Base; k <= Referrers; k++ {
		if k.String() == "unknown" {
			t.Errorf("Kind %d has no name", k)
		}
	}
	if Kind(0).String() != "unknown" {
		t.Error("the zero Kind must be unknown")
	}
}
