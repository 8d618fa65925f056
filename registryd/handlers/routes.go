package handlers

import "github.com/berth-dev/berth/registryd/routes"

// route is a parsed request path; see package routes.
type route = routes.Route

// parseRoute matches a request path without http.prefix.
func parseRoute(p string) (route, bool) { return routes.Parse(p) }
