package server

import (
	"crypto/rand"
	"encoding/base64"
	"log/slog"
	"net/http"

	"github.com/berth-dev/berth/registryd/auth"
	"github.com/berth-dev/berth/registryd/configuration"
)

// withAuth puts the configured access controller (auth section) in front
// of next; next is returned unchanged when none is configured. A
// controller that watches files (htpasswd) is returned as a background
// task for Serve.
func withAuth(cfg *configuration.Configuration, log *slog.Logger, next http.Handler) (http.Handler, auth.Runner, error) {
	c, err := auth.New(&cfg.Auth, auth.Options{Logger: log})
	if err != nil || c == nil {
		return next, nil, err
	}
	r, _ := c.(auth.Runner)
	return auth.Middleware(c, cfg.HTTP.Prefix, log, next), r, nil
}

// httpSecret returns http.secret, or a random one with Distribution's
// warning when it is empty.
//
// Distribution signs client-held upload state with the secret, which is
// why replicas behind one load balancer must share it. registryd keeps no
// client-held state: upload sessions live in storage (see package
// handlers), so any replica sharing the storage continues any upload, and
// the secret signs nothing today. The key is still read (configurations
// written for Distribution carry it, and the operator generates one) and a
// missing one still gets the warning operators know, with the reason it is
// harmless here.
func httpSecret(cfg *configuration.Configuration, log *slog.Logger) string {
	if cfg.HTTP.Secret != "" {
		return cfg.HTTP.Secret
	}
	var b [32]byte
	_, _ = rand.Read(b[:])
	log.Warn("No HTTP secret provided - generated random secret. registryd keeps upload state in storage, not with the client, so replicas need not share it; set http.secret or REGISTRY_HTTP_SECRET to silence this warning.")
	return base64.RawURLEncoding.EncodeToString(b[:])
}
