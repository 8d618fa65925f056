package routes

import (
	"strings"
	"testing"
)

// path is the API path of a parsed route: the inverse of Parse.
func (r Route) path() string {
	switch r.Kind {
	case Base:
		return "/v2/"
	case Catalog:
		return "/v2/_catalog"
	case Tags:
		return "/v2/" + r.Name + "/tags/list"
	case Blob:
		return "/v2/" + r.Name + "/blobs/" + r.Ref
	case UploadStart:
		return "/v2/" + r.Name + "/blobs/uploads/"
	case Upload:
		return "/v2/" + r.Name + "/blobs/uploads/" + r.Ref
	case Manifest:
		return "/v2/" + r.Name + "/manifests/" + r.Ref
	case Referrers:
		return "/v2/" + r.Name + "/referrers/" + r.Ref
	}
	return ""
}

// FuzzParse checks that any path either matches no route or matches one
// that describes the path exactly: a known kind, a reference that is one
// path segment, and a name and reference that give back the same route.
// The name is not validated here (the handler refuses a bad one with
// NAME_INVALID); that every route refuses names and digests that climb
// out of the storage tree is FuzzRequest's job in package handlers.
func FuzzParse(f *testing.F) {
	for _, p := range []string{
		"/v2", "/v2/", "/v2/_catalog", "/v2/lib/app/tags/list", "/v2/a/b/c/manifests/latest",
		"/v2/app/blobs/sha256:" + strings.Repeat("a", 64), "/v2/app/blobs/uploads/", "/v2/app/blobs/uploads",
		"/v2/app/blobs/uploads/0b4d3c2e-1f6a-4b8c-9d0e-1a2b3c4d5e6f", "/v2/app/referrers/sha256:" + strings.Repeat("b", 64),
		"/v2//tags/list", "/v2/../../etc/manifests/x", "/v2/a/manifests/", "/v2/tags/list", "/v3/app/tags/list",
		"/v2/a/blobs/uploads/tags/list", "/v2/a%2Fb/manifests/latest",
	} {
		f.Add(p)
	}
	f.Fuzz(func(t *testing.T, p string) {
		rt, ok := Parse(p)
		if !ok {
			if rt != (Route{}) {
				t.Fatalf("Parse(%q) matched nothing but returned %+v", p, rt)
			}
			return
		}
		if !IsAPI(p) {
			t.Fatalf("Parse(%q) matched %+v outside /v2", p, rt)
		}
		if rt.Kind.String() == "unknown" {
			t.Fatalf("Parse(%q) = kind %d, which has no name", p, rt.Kind)
		}
		if strings.Contains(rt.Ref, "/") {
			t.Fatalf("Parse(%q): reference %q spans segments", p, rt.Ref)
		}
		switch rt.Kind {
		case Blob, Upload, Manifest, Referrers:
			if rt.Ref == "" {
				t.Fatalf("Parse(%q) = %+v without a reference", p, rt)
			}
		case Base, Catalog:
			if rt.Name != "" || rt.Ref != "" {
				t.Fatalf("Parse(%q) = %+v: %s carries no name", p, rt, rt.Kind)
			}
		}
		again, ok := Parse(rt.path())
		if !ok || again != rt {
			t.Fatalf("Parse(%q) = %+v, but its path %q parses as %+v, %v", p, rt, rt.path(), again, ok)
		}
	})
}
