package handlers

import "strings"

type routeKind int

const (
	routeBase        routeKind = iota + 1 // /v2/
	routeCatalog                          // /v2/_catalog
	routeTags                             // /v2/<name>/tags/list
	routeBlob                             // /v2/<name>/blobs/<digest>
	routeUploadStart                      // /v2/<name>/blobs/uploads/
	routeUpload                           // /v2/<name>/blobs/uploads/<id>
	routeManifest                         // /v2/<name>/manifests/<reference>
	routeReferrers                        // /v2/<name>/referrers/<digest>
)

// route is a parsed request path.
type route struct {
	kind routeKind
	name string // repository name
	ref  string // digest, upload id or manifest reference
}

// parseRoute matches a request path from its end, since repository names
// contain "/". It reports false for paths that are no API route; the name
// is validated later, so that a bad name gets NAME_INVALID.
func parseRoute(p string) (route, bool) {
	switch p {
	case "/v2", "/v2/":
		return route{kind: routeBase}, true
	case "/v2/_catalog":
		return route{kind: routeCatalog}, true
	}
	rest, ok := strings.CutPrefix(p, "/v2/")
	if !ok {
		return route{}, false
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
		return route{kind: routeTags, name: name(2)}, true
	case n >= 4 && at(3) == "blobs" && at(2) == "uploads":
		if at(1) == "" {
			return route{kind: routeUploadStart, name: name(3)}, true
		}
		return route{kind: routeUpload, name: name(3), ref: at(1)}, true
	case n >= 3 && at(2) == "blobs" && at(1) == "uploads":
		return route{kind: routeUploadStart, name: name(2)}, true
	case n >= 3 && at(2) == "blobs" && at(1) != "":
		return route{kind: routeBlob, name: name(2), ref: at(1)}, true
	case n >= 3 && at(2) == "manifests" && at(1) != "":
		return route{kind: routeManifest, name: name(2), ref: at(1)}, true
	case n >= 3 && at(2) == "referrers" && at(1) != "":
		return route{kind: routeReferrers, name: name(2), ref: at(1)}, true
	}
	return route{}, false
}
