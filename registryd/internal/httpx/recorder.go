// Package httpx holds the small HTTP pieces more than one registryd
// middleware needs.
package httpx

import "net/http"

// Recorder is a ResponseWriter that remembers the status and the number of
// body bytes of the response written through it, for the request metrics
// and the access log. The status is 200 until a handler sets another, as
// net/http sends it; only the first WriteHeader counts.
type Recorder struct {
	http.ResponseWriter
	Status      int
	Written     int64
	wroteHeader bool
}

// NewRecorder records what is written to w.
func NewRecorder(w http.ResponseWriter) *Recorder {
	return &Recorder{ResponseWriter: w, Status: http.StatusOK}
}

func (r *Recorder) WriteHeader(code int) {
	if !r.wroteHeader {
		r.Status, r.wroteHeader = code, true
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *Recorder) Write(b []byte) (int, error) {
	r.wroteHeader = true
	n, err := r.ResponseWriter.Write(b)
	r.Written += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController reach the underlying writer (Flush,
// deadlines) through the recorder.
func (r *Recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }
