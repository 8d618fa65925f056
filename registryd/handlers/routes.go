package handlers

import "github.com/berth-dev/berth/registryd/routes"

// route is a parsed request path; see package routes.
type route = routes.Route
