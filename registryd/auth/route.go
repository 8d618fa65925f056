package auth

import (
	"net/http"
	"sort"
	"strings"

	"github.com/berth-dev/berth/registryd/routes"
)

// requiredAccess is the access a request on rt needs (see the package
// documentation), in a stable order.
func requiredAccess(rt routes.Route, r *http.Request) []Access {
	switch rt.Kind {
	case routes.Catalog:
		return []Access{{Type: "registry", Name: "catalog", Action: "*"}}
	case routes.Tags, routes.Blob, routes.UploadStart, routes.Upload, routes.Manifest, routes.Referrers:
	default:
		return nil
	}
	repo := func(name, action string) Access { return Access{Type: "repository", Name: name, Action: action} }
	var access []Access
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		access = append(access, repo(rt.Name, "pull"))
	case http.MethodPost, http.MethodPut, http.MethodPatch:
		access = append(access, repo(rt.Name, "pull"), repo(rt.Name, "push"))
	case http.MethodDelete:
		access = append(access, repo(rt.Name, "delete"))
	default:
		// An unknown method still needs every action: the handler answers
		// 405, but only to someone who could have done anything.
		access = append(access, repo(rt.Name, "*"))
	}
	if rt.Kind == routes.UploadStart && r.Method == http.MethodPost {
		if from := r.URL.Query().Get("from"); from != "" && from != rt.Name {
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
