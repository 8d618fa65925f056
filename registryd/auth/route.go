package auth

import (
	"net/http"
	"sort"
	"strings"
)

type routeKind int

const (
	routeOther       routeKind = iota // under /v2 but no known route
	routeBase                         // /v2/
	routeCatalog                      // /v2/_catalog
	routeRepo                         // tags, blobs, manifests, referrers of a repository
	routeUploadStart                  // /v2/<name>/blobs/uploads/
)

type route struct {
	kind routeKind
	name string
}

// isV2 says whether p is an API path: /v2 or anything below it.
func isV2(p string) bool { return p == "/v2" || strings.HasPrefix(p, "/v2/") }

// apiRoute classifies an API request path, with http.prefix removed. ok is
// false for paths outside /v2, which need no credentials. A path under /v2
// both with and without the prefix counts, so that a handler more lenient
// about the prefix than this function can never serve an unchecked
// request.
func apiRoute(p, prefix string) (route, bool) {
	if pre := strings.TrimSuffix(prefix, "/"); pre != "" {
		if rest, ok := strings.CutPrefix(p, pre); ok && isV2(rest) {
			p = rest
		}
	}
	if !isV2(p) {
		return route{}, false
	}
	return parseRoute(p), true
}

// parseRoute matches an API path from its end, since repository names
// contain "/"; it mirrors the handler's router.
func parseRoute(p string) route {
	switch p {
	case "/v2", "/v2/":
		return route{kind: routeBase}
	case "/v2/_catalog":
		return route{kind: routeCatalog}
	}
	segs := strings.Split(strings.TrimPrefix(p, "/v2/"), "/")
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
		return route{kind: routeRepo, name: name(2)}
	case n >= 4 && at(3) == "blobs" && at(2) == "uploads":
		if at(1) == "" {
			return route{kind: routeUploadStart, name: name(3)}
		}
		return route{kind: routeRepo, name: name(3)}
	case n >= 3 && at(2) == "blobs" && at(1) == "uploads":
		return route{kind: routeUploadStart, name: name(2)}
	case n >= 3 && (at(2) == "blobs" || at(2) == "manifests" || at(2) == "referrers") && at(1) != "":
		return route{kind: routeRepo, name: name(2)}
	}
	return route{kind: routeOther}
}

// requiredAccess is the access a request on rt needs (see the package
// documentation), in a stable order.
func requiredAccess(rt route, r *http.Request) []Access {
	switch rt.kind {
	case routeCatalog:
		return []Access{{Type: "registry", Name: "catalog", Action: "*"}}
	case routeRepo, routeUploadStart:
	default:
		return nil
	}
	repo := func(name, action string) Access { return Access{Type: "repository", Name: name, Action: action} }
	var access []Access
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		access = append(access, repo(rt.name, "pull"))
	case http.MethodPost, http.MethodPut, http.MethodPatch:
		access = append(access, repo(rt.name, "pull"), repo(rt.name, "push"))
	case http.MethodDelete:
		access = append(access, repo(rt.name, "delete"))
	default:
		// An unknown method still needs every action: the handler answers
		// 405, but only to someone who could have done anything.
		access = append(access, repo(rt.name, "*"))
	}
	if rt.kind == routeUploadStart && r.Method == http.MethodPost {
		if from := r.URL.Query().Get("from"); from != "" && from != rt.name {
			access = append(access, repo(from, "pull"))
		}
	}
	return access
}

// scopeParam renders access as the challenge's scope parameter: one
// "type:name:action,action" entry per resource, space separated.
func scopeParam(access []Access) string {
	type res struct{ typ, name string }
	var order []res
	actions := map[res][]string{}
	for _, a := range access {
		k := res{a.Type, a.Name}
		if _, ok := actions[k]; !ok {
			order = append(order, k)
		}
		actions[k] = append(actions[k], a.Action)
	}
	scopes := make([]string, 0, len(order))
	for _, k := range order {
		acts := actions[k]
		sort.Strings(acts)
		scopes = append(scopes, k.typ+":"+k.name+":"+strings.Join(acts, ","))
	}
	return strings.Join(scopes, " ")
}
