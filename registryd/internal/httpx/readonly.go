package httpx

import (
	"net/http"

	"github.com/berth-dev/berth/registryd/errcode"
)

// IsWrite reports whether method writes to the registry: POST, PUT, PATCH
// and DELETE. Every other method only reads.
func IsWrite(method string) bool {
	switch method {
	case http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete:
		return true
	}
	return false
}

// RefuseReadOnly is the read-only refusal: when r is a write and readOnly
// (which may be nil) returns true, it answers 405 UNSUPPORTED "registry is
// in read-only mode" and reports true; otherwise it writes nothing.
// readOnly is called only for writes.
func RefuseReadOnly(w http.ResponseWriter, r *http.Request, readOnly func() bool) bool {
	if !IsWrite(r.Method) || readOnly == nil || !readOnly() {
		return false
	}
	errcode.Write(w, r, errcode.ErrReadOnly)
	return true
}
