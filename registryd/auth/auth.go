// Package auth is registryd's access control: the three providers of
// Distribution's auth section (htpasswd, token, silly) behind one
// Controller interface, and the HTTP middleware that asks the controller
// before a request reaches the API handler.
//
// Decisions worth knowing:
//
//   - Every request under /v2 (after http.prefix) needs credentials,
//     /v2/ included, as in Distribution. Paths outside /v2 pass through
//     untouched: they are not API routes, and the handler answers 404.
//     (Berth's status endpoint is on the debug server, not behind this
//     middleware.)
//   - The access a request needs is derived from its route and method,
//     exactly as Distribution does: GET and HEAD need pull; POST, PUT and
//     PATCH need pull and push (Docker clients always ask for both); DELETE
//     needs delete; a cross-repository mount (POST with from) also needs
//     pull on the source repository; the catalog needs registry:catalog:*.
//     /v2/ itself needs a valid credential and no access. Only the token
//     provider looks at the access; htpasswd and silly grant everything to
//     an authenticated request.
//   - A refusal is 401 with the OCI error body code UNAUTHORIZED, whose
//     detail lists the access needed, and a WWW-Authenticate challenge
//     (Basic for htpasswd, Bearer for token and silly). A token that does
//     not grant enough gets error="insufficient_scope", still with 401, as
//     in Distribution; a bad token gets error="invalid_token".
//   - The route is the one the handler serves (package routes, classified
//     once per request and read from the request's context). Anything
//     under /v2 that matches no route, or lies outside http.prefix, still
//     needs a valid credential: it fails closed.
package auth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/berth-dev/berth/registryd/configuration"
	"github.com/berth-dev/berth/registryd/errcode"
	"github.com/berth-dev/berth/registryd/routes"
)

// Access is one permission a request needs: an action on a resource, e.g.
// {repository, library/alpine, pull} or {registry, catalog, *}.
type Access struct {
	Type   string `json:"Type"`
	Name   string `json:"Name"`
	Action string `json:"Action"`
}

// Controller decides whether a request may have the access it needs.
type Controller interface {
	// Authorize returns the request to serve (possibly carrying the
	// authenticated user in its context), or an error: a *Challenge when
	// the client should authenticate (again), anything else when the check
	// itself failed.
	Authorize(r *http.Request, access []Access) (*http.Request, error)
}

// Runner is implemented by controllers that watch files in the background
// (htpasswd); Run returns when ctx ends.
type Runner interface {
	Run(ctx context.Context)
}

// Challenge is a refusal the client can answer by authenticating: the
// WWW-Authenticate header to send with the 401.
type Challenge struct {
	// Header is the WWW-Authenticate value.
	Header string
	// Err says why, for logs; never sent to the client.
	Err error
}

func (c *Challenge) Error() string {
	if c.Err != nil {
		return "authentication required: " + c.Err.Error()
	}
	return "authentication required"
}

func (c *Challenge) Unwrap() error { return c.Err }

type userKey struct{}

type identityKey struct{}

// TrackIdentity returns a context in which Middleware records the user it
// authenticates, and a function that returns that user ("" when none was)
// once the request has been served. The access log names the user this
// way: a name a client merely claimed never reaches it.
func TrackIdentity(ctx context.Context) (context.Context, func() string) {
	slot := new(string)
	return context.WithValue(ctx, identityKey{}, slot), func() string { return *slot }
}

// recordIdentity stores the authenticated user of r where TrackIdentity
// looks for it.
func recordIdentity(r *http.Request) {
	if slot, ok := r.Context().Value(identityKey{}).(*string); ok {
		*slot = User(r.Context())
	}
}

// User is the authenticated user name stored in the request context by
// Authorize (htpasswd user, token subject), or "".
func User(ctx context.Context) string {
	u, _ := ctx.Value(userKey{}).(string)
	return u
}

func withUser(r *http.Request, user string) *http.Request {
	if user == "" {
		return r
	}
	return r.WithContext(context.WithValue(r.Context(), userKey{}, user))
}

// Options are what the providers need from the process.
type Options struct {
	Logger *slog.Logger
}

// New builds the controller configured in a, or nil when a configures
// none. Configuring more than one is an error naming the key (the
// configuration's Validate refuses it too).
func New(a *configuration.Auth, o Options) (Controller, error) {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	switch p := a.Providers(); len(p) {
	case 0:
		return nil, nil
	case 1:
	default:
		return nil, fmt.Errorf("auth: more than one auth provider configured (%v); configure at most one", p)
	}
	switch {
	case a.Htpasswd != nil:
		return NewHtpasswd(a.Htpasswd.Realm, a.Htpasswd.Path, o.Logger)
	case a.Token != nil:
		return NewToken(a.Token)
	default:
		return NewSilly(a.Silly.Realm, a.Silly.Service), nil
	}
}

// Middleware asks c before every API request reaches next. prefix is
// http.prefix ("" or "/path/").
func Middleware(c Controller, prefix string, log *slog.Logger, next http.Handler) http.Handler {
	if log == nil {
		log = slog.Default()
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r, m := routes.Of(r, prefix)
		if !m.API {
			next.ServeHTTP(w, r)
			return
		}
		access := requiredAccess(m.Route, r)
		authed, err := c.Authorize(r, access)
		if err == nil {
			recordIdentity(authed)
			next.ServeHTTP(w, authed)
			return
		}
		if errors.Is(err, ErrBusy) {
			log.DebugContext(r.Context(), "Password check refused: too many in progress", "method", r.Method, "path", r.URL.Path)
			w.Header().Set("Retry-After", "1")
			errcode.Write(w, r, errcode.ErrTooManyRequests.WithMessage("too many logins in progress; retry later"))
			return
		}
		if r.Context().Err() != nil { // gone while its password waited for a turn
			errcode.Write(w, r, errcode.ErrClientClosed)
			return
		}
		var ch *Challenge
		if !errors.As(err, &ch) {
			log.ErrorContext(r.Context(), "Authorization failed", "method", r.Method, "path", r.URL.Path, "error", err)
			errcode.Write(w, r, errcode.ErrUnknown)
			return
		}
		log.DebugContext(r.Context(), "Request not authorized", "method", r.Method, "path", r.URL.Path, "reason", err)
		w.Header().Set("WWW-Authenticate", ch.Header)
		e := errcode.ErrUnauthorized
		if len(access) > 0 {
			e = e.WithDetail(access)
		}
		errcode.Write(w, r, e)
	})
}
