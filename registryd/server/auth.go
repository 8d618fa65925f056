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
// why its replicas behind one load balancer must share it. registryd keeps
// upload sessions in storage (see package handlers), so its own replicas
// continue any upload whatever the secret; it signs the _state parameter
// of its upload Locations with the secret, in Distribution's format, so
// that Distribution replicas sharing secret and storage continue uploads
// registryd started (handlers.WithUploadStateSecret). A missing secret
// gets the warning operators know.
func httpSecret(cfg *configuration.Configuration, log *slog.Logger) string {
	if cfg.HTTP.Secret != "" {
		return cfg.HTTP.Secret
	}
	var b [32]byte
	_, _ = rand.Read(b[:])
	log.Warn("No HTTP secret provided - generated random secret. registryd replicas continue each other's uploads whatever the secret, but Distribution replicas serving the same storage would refuse uploads started here; set http.secret or REGISTRY_HTTP_SECRET, the same on every replica.")
	return base64.RawURLEncoding.EncodeToString(b[:])
}
