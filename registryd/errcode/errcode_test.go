package errcode

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestWrite(t *testing.T) {
	tests := map[string]struct {
		method string
		err    *Error
		body   string
	}{
		"get": {method: http.MethodGet, err: ErrBlobUnknown,
			body: `{"errors":[{"code":"BLOB_UNKNOWN","message":"blob unknown to registry"}]}`},
		"detail": {method: http.MethodPut, err: ErrNameInvalid.WithDetail(map[string]string{"name": "A"}),
			body: `{"errors":[{"code":"NAME_INVALID","message":"invalid repository name","detail":{"name":"A"}}]}`},
		"head has no body": {method: http.MethodHead, err: ErrManifestUnknown},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			w := httptest.NewRecorder()
			w.Header().Set("Docker-Content-Digest", "sha256:x")
			w.Header().Set("Location", "/v2/a/blobs/uploads/1")
			w.Header().Set("Docker-Distribution-API-Version", "registry/2.0")
			Write(w, httptest.NewRequest(tc.method, "/v2/", nil), tc.err)
			if w.Code != tc.err.Status {
				t.Errorf("status = %d, want %d", w.Code, tc.err.Status)
			}
			if got := w.Body.String(); got != tc.body {
				t.Errorf("body = %s, want %s", got, tc.body)
			}
			h := w.Header()
			if h.Get("Content-Type") != "application/json" || h.Get("Docker-Content-Digest") != "" || h.Get("Location") != "" {
				t.Errorf("headers = %v: want JSON, and no digest or location of a success", h)
			}
			if h.Get("Docker-Distribution-API-Version") == "" {
				t.Error("a header unrelated to the content was dropped")
			}
		})
	}
}

func TestWithCopies(t *testing.T) {
	e := ErrUnsupported.WithMessage("read-only").WithDetail("x")
	if ErrUnsupported.Message != "the operation is unsupported" || ErrUnsupported.Detail != nil {
		t.Errorf("WithMessage/WithDetail changed the shared error: %+v", ErrUnsupported)
	}
	if e.Status != http.StatusMethodNotAllowed || e.Code != "UNSUPPORTED" || e.Message != "read-only" || e.Detail != "x" {
		t.Errorf("copy = %+v", e)
	}
}
