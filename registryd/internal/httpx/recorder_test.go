package httpx

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestRecorder(t *testing.T) {
	tests := map[string]struct {
		handler func(w http.ResponseWriter)
		status  int
		written int64
	}{
		"nothing written":  {handler: func(http.ResponseWriter) {}, status: http.StatusOK},
		"body only":        {handler: func(w http.ResponseWriter) { _, _ = io.WriteString(w, "hello") }, status: http.StatusOK, written: 5},
		"status then body": {handler: func(w http.ResponseWriter) { w.WriteHeader(http.StatusCreated); _, _ = io.WriteString(w, "ab") }, status: http.StatusCreated, written: 2},
		"first status counts": {handler: func(w http.ResponseWriter) {
			w.WriteHeader(http.StatusNotFound)
			w.WriteHeader(http.StatusInternalServerError)
		}, status: http.StatusNotFound},
		"status after body ignored": {handler: func(w http.ResponseWriter) {
			_, _ = io.WriteString(w, "x")
			w.WriteHeader(http.StatusTeapot)
		}, status: http.StatusOK, written: 1},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			rec := NewRecorder(httptest.NewRecorder())
			tc.handler(rec)
			if rec.Status != tc.status || rec.Written != tc.written {
				t.Errorf("recorded %d, %d bytes; want %d, %d bytes", rec.Status, rec.Written, tc.status, tc.written)
			}
		})
	}
}

// A handler behind the recorder can still flush a streamed response.
func TestRecorderFlush(t *testing.T) {
	under := httptest.NewRecorder()
	rec := NewRecorder(under)
	_, _ = io.WriteString(rec, "part")
	if err := http.NewResponseController(rec).Flush(); err != nil {
		t.Fatalf("Flush through the recorder: %v", err)
	}
	if !under.Flushed {
		t.Error("the underlying writer was not flushed")
	}
}
