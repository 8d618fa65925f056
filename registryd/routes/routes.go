// Package routes parses OCI Distribution API paths. It is the one router
// description the HTTP handler, the auth middleware and the metrics labels
// share, so that what is authorized is exactly what is served. A request's
// path is classified once (Classify, which strips http.prefix) and the
// Match travels in the request's context (Middleware, Of, FromContext).
//
// Repository names contain "/", so a path is matched from its end:
// /v2/<name>/tags/list, /v2/<name>/blobs/uploads/[<id>], /v2/<name>/blobs/<digest>,
// /v2/<name>/manifests/<reference>, /v2/<name>/referrers/<digest>, plus /v2/
// and /v2/_catalog. Names are not validated here; the handler does that so
// that a bad name gets NAME_INVALID.
package routes

import "strings"

// Kind is an API route.
type Kind int

// The API routes.
const (
	Base        Kind = iota + 1 // /v2/
	Catalog                     // /v2/_catalog
	Tags                        // /v2/<name>/tags/list
	Blob                        // /v2/<name>/blobs/<digest>
	UploadStart                 // /v2/<name>/blobs/uploads/
	Upload                      // /v2/<name>/blobs/uploads/<id>
	Manifest                    // /v2/<name>/manifests/<reference>
	Referrers                   // /v2/<name>/referrers/<digest>
)

var kindNames = map[Kind]string{
	Base:        "base",
	Catalog:     "catalog",
	Tags:        "tags",
	Blob:        "blob",
	UploadStart: "blob_upload",
	Upload:      "blob_upload_chunk",
	Manifest:    "manifest",
	Referrers:   "referrers",
}

// String is the route's stable name, used as a metrics label.
func (k Kind) String() string {
	if s, ok := kindNames[k]; ok {
		return s
	}
	return "unknown"
}

// Route is a parsed API path.
type Route struct {
	Kind Kind
	Name string // repository name
	Ref  string // digest, upload id or manifest reference
}

// IsAPI reports whether p is /v2 or below it.
func IsAPI(p string) bool { return p == "/v2" || strings.HasPrefix(p, "/v2/") }

// Parse matches an API path (without http.prefix). It reports false for a
// path that is no API route, including paths under /v2 that match none.
func Parse(p string) (Route, bool) {
	switch p {
	case "/v2", "/v2/":
		return Route{Kind: Base}, true
	case "/v2/_catalog":
		return Route{Kind: Catalog}, true
	}
	rest, ok := strings.CutPrefix(p, "/v2/")
	if !ok {
		return Route{}, false
	}
	segs := strings.Split(rest, "/")
	n := len(segs)
	at := func(i int) string { // segment i from the end, 1-based
		if n-i < 0 {
			return ""
		}
		return segs[n-i]
	}
	name := func(drop int) string { return strings.Join(segs[:n-drop], "/") }
	switch {
	case n >= 3 && at(2) == "tags" && at(1) == "list":
		return Route{Kind: Tags, Name: name(2)}, true
	case n >= 4 && at(3) == "blobs" && at(2) == "uploads":
		if at(1) == "" {
			return Route{Kind: UploadStart, Name: name(3)}, true
		}
		return Route{Kind: Upload, Name: name(3), Ref: at(1)}, true
	case n >= 3 && at(2) == "blobs" && at(1) == "uploads":
		return Route{Kind: UploadStart, Name: name(2)}, true
	case n >= 3 && at(2) == "blobs" && at(1) != "":
		return Route{Kind: Blob, Name: name(2), Ref: at(1)}, true
	case n >= 3 && at(2) == "manifests" && at(1) != "":
		return Route{Kind: Manifest, Name: name(2), Ref: at(1)}, true
	case n >= 3 && at(2) == "referrers" && at(1) != "":
		return Route{Kind: Referrers, Name: name(2), Ref: at(1)}, true
	}
	return Route{}, false
}
