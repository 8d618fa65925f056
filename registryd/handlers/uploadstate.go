package handlers

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/url"
	"time"
)

// Upload state for Distribution (http.secret).
//
// registryd keeps an upload session only in storage: any replica sharing
// the storage continues it, whatever the request carries. The Distribution
// registry keeps the session's name, id and offset in the _state query
// parameter of the Location URL, signed with http.secret (HMAC-SHA256), and
// refuses a PATCH, PUT or status request whose _state it cannot verify.
// With WithUploadStateSecret, registryd adds such a _state to every upload
// Location it hands out, in Distribution's format, so that Distribution
// replicas sharing the secret and the storage (a fleet migrating from one to
// the other behind one load balancer) continue uploads registryd started.
// registryd itself never reads _state.

// uploadState is Distribution's blobUploadState, field for field.
type uploadState struct {
	Name      string
	UUID      string
	Offset    int64
	StartedAt time.Time
}

// WithUploadStateSecret signs the _state parameter of upload Locations with
// secret (http.secret; see uploadstate.go).
func WithUploadStateSecret(secret string) Option {
	return func(o *options) { o.uploadSecret = []byte(secret) }
}

// packUploadState returns the signed _state token: URL-safe base64 of the
// HMAC-SHA256 of the JSON state followed by that JSON.
func packUploadState(secret []byte, s uploadState) (string, error) {
	p, err := json.Marshal(s)
	if err != nil {
		return "", err
	}
	mac := hmac.New(sha256.New, secret)
	mac.Write(p)
	return base64.URLEncoding.EncodeToString(append(mac.Sum(nil), p...)), nil
}

// uploadLocation is the path of upload id of repository name, with a
// signed _state when a secret is set.
func (h *handler) uploadLocation(ctx context.Context, name, id string, size int64) (string, error) {
	p := "/v2/" + name + "/blobs/uploads/" + id
	if len(h.uploadSecret) == 0 {
		return p, nil
	}
	u, err := h.store.StatUpload(ctx, name, id)
	if err != nil {
		return "", err
	}
	token, err := packUploadState(h.uploadSecret, uploadState{Name: name, UUID: id, Offset: size, StartedAt: u.StartedAt})
	if err != nil {
		return "", err
	}
	return p + "?" + url.Values{"_state": {token}}.Encode(), nil
}
