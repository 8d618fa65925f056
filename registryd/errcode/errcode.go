// Package errcode is the protocol error of registryd's HTTP API, shared by
// every layer that answers a request: the handlers, the auth middleware,
// the pull-through proxy's upstream errors and the read-only refusal of
// the server's write gate (internal/httpx).
// An *Error carries the spec's error code and the HTTP status it is sent
// with; Write is the one function that writes it, as the spec's body
// {"errors":[{"code":…,"message":…,"detail":…}]}.
package errcode

import (
	"encoding/json"
	"net/http"
	"strconv"
)

// Error is one protocol error: the status it is answered with, the spec's
// code, a message and an optional detail.
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

// ErrClientClosed answers a request whose client went away. Nobody reads
// it; its status, 499 (nginx's "client closed request"), keeps such
// requests out of the server errors in the access log and metrics.
var ErrClientClosed = &Error{Status: 499, Code: "UNKNOWN", Message: "client closed the request"}

// ErrReadOnly is what every write gets while the registry is read-only.
var ErrReadOnly = ErrUnsupported.WithMessage("registry is in read-only mode")

type body struct {
	Errors []entry `json:"errors"`
}

type entry struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Detail  any    `json:"detail,omitempty"`
}

// Write writes e as the spec's JSON error body with e's status. It is the
// only place that writes an error response. Headers a handler may have
// set for a success (ranges, digest, location) are dropped; a HEAD
// request gets the headers without the body.
func Write(w http.ResponseWriter, r *http.Request, e *Error) {
	b, _ := json.Marshal(body{Errors: []entry{{Code: e.Code, Message: e.Message, Detail: e.Detail}}})
	h := w.Header()
	for _, k := range []string{"Content-Range", "Range", "Docker-Content-Digest", "Location", "Accept-Ranges", "Etag"} {
		h.Del(k)
	}
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(e.Status)
	if r.Method != http.MethodHead {
		_, _ = w.Write(b)
	}
}
