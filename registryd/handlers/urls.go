package handlers

import (
	"net/url"

	"github.com/berth-dev/berth/registryd/routes"
)

// WithPrefix serves the API under prefix (http.prefix): with "/registry/"
// the base route is /registry/v2/ and every path outside the prefix is 404.
// Leading and trailing slashes are optional; "" and "/" mean no prefix.
// Location headers carry the prefix, relative ones included (Distribution
// drops it from relative URLs, which then resolve to a 404 on the server
// that issued them).
func WithPrefix(prefix string) Option {
	return func(o *options) { o.prefix = routes.CleanPrefix(prefix) }
}

// WithHost makes every Location header absolute on u (http.host), which
// takes precedence over the request's Host, X-Forwarded-* and
// WithRelativeURLs, as in Distribution. u is the externally visible root:
// its path, not the prefix, goes before /v2/, so a reverse proxy that maps
// https://example.com/ onto a prefixed registry gets URLs that work
// through the proxy. A nil u, or one without scheme and host, is ignored.
func WithHost(u *url.URL) Option {
	return func(o *options) {
		if u == nil || u.Scheme == "" || u.Host == "" {
			o.hostRoot = ""
			return
		}
		o.hostRoot = u.Scheme + "://" + u.Host + routes.CleanPrefix(u.Path)
	}
}
