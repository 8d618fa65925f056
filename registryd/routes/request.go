package routes

import (
	"context"
	"net/http"
	"strings"
)

// Match is what a request's path means to the registry: classified once
// per request (Classify, with http.prefix stripped there and nowhere
// else) by the outermost middleware, and carried in the request's
// context to auth, the request metrics and the API handler.
type Match struct {
	// Route is the API route of the path without http.prefix; its Kind
	// is zero when the path matches none. When the path is not Served
	// but is still API (a /v2 path outside the prefix), Route is that
	// path's route, for auth to name the access it would need.
	Route
	// Served: the path lies inside http.prefix and is an API route; the
	// handler serves it, anything else is 404. The metrics label the
	// request with Route's Kind only when Served.
	Served bool
	// API: the path is /v2 or below it, with the prefix or without it,
	// and so needs credentials. Counting both means that nothing under
	// /v2 reaches the handler unchecked, whatever the prefix.
	API bool
}

// CleanPrefix turns "registry", "/registry/" or "/registry" into
// "/registry", and "" or "/" into "".
func CleanPrefix(p string) string {
	p = strings.Trim(p, "/")
	if p == "" {
		return ""
	}
	return "/" + p
}

// Classify matches request path p under prefix (http.prefix, with or
// without its slashes). It is the one place that strips the prefix.
func Classify(p, prefix string) Match {
	prefix = CleanPrefix(prefix)
	rest, inside := p, true
	if prefix != "" {
		rest, inside = strings.CutPrefix(p, prefix)
		inside = inside && strings.HasPrefix(rest, "/")
	}
	var m Match
	if inside {
		m.Route, m.Served = Parse(rest)
	}
	api := p
	if inside && IsAPI(rest) {
		api = rest
	}
	m.API = IsAPI(api)
	if m.API && !m.Served {
		m.Route, _ = Parse(api)
	}
	return m
}

type matchKey struct{}

// WithRoute returns ctx carrying m.
func WithRoute(ctx context.Context, m Match) context.Context {
	return context.WithValue(ctx, matchKey{}, m)
}

// FromContext returns the Match ctx carries; ok is false when none was
// stored.
func FromContext(ctx context.Context) (m Match, ok bool) {
	m, ok = ctx.Value(matchKey{}).(Match)
	return m, ok
}

// Of returns the Match r carries, or, when r carries none (a handler or
// middleware served on its own, as in tests), classifies r's path under
// prefix and returns r carrying the result, so that whatever comes next
// reads it too. The middlewares of one server pass the same http.prefix.
func Of(r *http.Request, prefix string) (*http.Request, Match) {
	if m, ok := FromContext(r.Context()); ok {
		return r, m
	}
	m := Classify(r.URL.Path, prefix)
	return r.WithContext(WithRoute(r.Context(), m)), m
}

// Middleware classifies every request's path under prefix, once, and
// serves it to next carrying the Match.
func Middleware(prefix string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r, _ = Of(r, prefix)
		next.ServeHTTP(w, r)
	})
}
