package handlers

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"

	"github.com/berth-dev/berth/registryd/storage"
)

// Error is the one protocol error of the HTTP API. Handlers return it; it is
// written in one place, writeError, as the spec's body
// {"errors":[{"code":…,"message":…,"detail":…}]}.
type Error struct {
	Status  int    // HTTP status
	Code    string // spec error code, e.g. BLOB_UNKNOWN
	Message string
	Detail  any
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// WithDetail returns a copy of e with Detail set.
func (e *Error) WithDetail(detail any) *Error {
	c := *e
	c.Detail = detail
	return &c
}

// WithMessage returns a copy of e with Message set.
func (e *Error) WithMessage(msg string) *Error {
	c := *e
	c.Message = msg
	return &c
}

// The error codes of the OCI Distribution Spec, plus the ones Distribution
// adds (TAG_INVALID, RANGE_INVALID, PAGINATION_NUMBER_INVALID, UNKNOWN,
// UNAVAILABLE), with Distribution's statuses.
var (
	ErrBlobUnknown         = &Error{Status: http.StatusNotFound, Code: "BLOB_UNKNOWN", Message: "blob unknown to registry"}
	ErrBlobUploadInvalid   = &Error{Status: http.StatusBadRequest, Code: "BLOB_UPLOAD_INVALID", Message: "blob upload invalid"}
	ErrBlobUploadUnknown   = &Error{Status: http.StatusNotFound, Code: "BLOB_UPLOAD_UNKNOWN", Message: "blob upload unknown to registry"}
	ErrDigestInvalid       = &Error{Status: http.StatusBadRequest, Code: "DIGEST_INVALID", Message: "provided digest did not match uploaded content"}
	ErrManifestBlobUnknown = &Error{Status: http.StatusBadRequest, Code: "MANIFEST_BLOB_UNKNOWN", Message: "manifest references a blob unknown to the repository"}
	ErrManifestInvalid     = &Error{Status: http.StatusBadRequest, Code: "MANIFEST_INVALID", Message: "manifest invalid"}
	ErrManifestUnknown     = &Error{Status: http.StatusNotFound, Code: "MANIFEST_UNKNOWN", Message: "manifest unknown"}
	ErrNameInvalid         = &Error{Status: http.StatusBadRequest, Code: "NAME_INVALID", Message: "invalid repository name"}
	ErrNameUnknown         = &Error{Status: http.StatusNotFound, Code: "NAME_UNKNOWN", Message: "repository name not known to registry"}
	ErrSizeInvalid         = &Error{Status: http.StatusBadRequest, Code: "SIZE_INVALID", Message: "provided length did not match content length"}
	ErrTagInvalid          = &Error{Status: http.StatusBadRequest, Code: "TAG_INVALID", Message: "manifest tag did not match URI"}
	ErrUnauthorized        = &Error{Status: http.StatusUnauthorized, Code: "UNAUTHORIZED", Message: "authentication required"}
	ErrDenied              = &Error{Status: http.StatusForbidden, Code: "DENIED", Message: "requested access to the resource is denied"}
	ErrUnsupported         = &Error{Status: http.StatusMethodNotAllowed, Code: "UNSUPPORTED", Message: "the operation is unsupported"}
	ErrTooManyRequests     = &Error{Status: http.StatusTooManyRequests, Code: "TOOMANYREQUESTS", Message: "too many requests"}
	ErrRangeInvalid        = &Error{Status: http.StatusRequestedRangeNotSatisfiable, Code: "RANGE_INVALID", Message: "invalid content range"}
	ErrPaginationInvalid   = &Error{Status: http.StatusBadRequest, Code: "PAGINATION_NUMBER_INVALID", Message: "invalid number of results requested"}
	ErrUnknown             = &Error{Status: http.StatusInternalServerError, Code: "UNKNOWN", Message: "unknown error"}
	ErrUnavailable         = &Error{Status: http.StatusServiceUnavailable, Code: "UNAVAILABLE", Message: "service unavailable"}
)

// errReadOnly is what every write gets while the registry is read-only.
var errReadOnly = ErrUnsupported.WithMessage("registry is in read-only mode")

// ErrReadOnly is errReadOnly for middleware that refuses writes before they
// reach the handler (registryd/server's read-only gate).
var ErrReadOnly = errReadOnly

// WriteError writes e as the spec's JSON error body, for middleware in
// front of the handler (auth, the read-only gate), so that every error
// response has one shape.
func WriteError(w http.ResponseWriter, r *http.Request, e *Error) { writeError(w, r, e) }

// toError maps an error from the storage layer (or anything else) to the
// protocol error the client sees. ok is false for unexpected errors, which
// are reported as UNKNOWN and logged.
func toError(err error) (e *Error, ok bool) {
	if errors.As(err, &e) {
		return e, true
	}
	var oe *storage.OffsetError
	var me *storage.ManifestError
	switch {
	case errors.As(err, &oe):
		return ErrRangeInvalid.WithDetail(map[string]int64{"size": oe.Size, "requested": oe.Requested}), true
	case errors.As(err, &me):
		return ErrManifestInvalid.WithDetail(me.Reason), true
	case errors.Is(err, storage.ErrNameInvalid):
		return ErrNameInvalid, true
	case errors.Is(err, storage.ErrTagInvalid):
		return ErrTagInvalid, true
	case errors.Is(err, storage.ErrDigestInvalid), errors.Is(err, storage.ErrDigestMismatch):
		return ErrDigestInvalid, true
	case errors.Is(err, storage.ErrBlobUnknown):
		return ErrBlobUnknown, true
	case errors.Is(err, storage.ErrManifestUnknown), errors.Is(err, storage.ErrTagUnknown):
		return ErrManifestUnknown, true
	case errors.Is(err, storage.ErrRepositoryUnknown):
		return ErrNameUnknown, true
	case errors.Is(err, storage.ErrUploadUnknown):
		return ErrBlobUploadUnknown, true
	}
	return ErrUnknown, false
}

type errorBody struct {
	Errors []errorEntry `json:"errors"`
}

type errorEntry struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Detail  any    `json:"detail,omitempty"`
}

// writeError writes e as the spec's JSON error body. It is the only place
// that writes an error response.
func writeError(w http.ResponseWriter, r *http.Request, e *Error) {
	body, _ := json.Marshal(errorBody{Errors: []errorEntry{{Code: e.Code, Message: e.Message, Detail: e.Detail}}})
	h := w.Header()
	for _, k := range []string{"Content-Range", "Range", "Docker-Content-Digest", "Location", "Accept-Ranges", "Etag"} {
		h.Del(k)
	}
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(e.Status)
	if r.Method != http.MethodHead {
		_, _ = w.Write(body)
	}
}
