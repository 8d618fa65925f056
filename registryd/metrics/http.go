package metrics

import (
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/berth-dev/berth/registryd/internal/httpx"
	"github.com/berth-dev/berth/registryd/routes"
)

// Middleware counts and times every request served by next, labelled with
// the request's route (package routes; "other" for a path the handler does
// not serve). prefix is http.prefix.
func (m *Metrics) Middleware(prefix string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r, match := routes.Of(r, prefix)
		route := "other"
		if match.Served {
			route = match.Kind.String()
		}
		upload := (route == "blob_upload" || route == "blob_upload_chunk") &&
			(r.Method == http.MethodPost || r.Method == http.MethodPatch || r.Method == http.MethodPut)
		if upload {
			m.uploadsInFlight.Inc()
			defer m.uploadsInFlight.Dec()
		}
		body := &countingBody{ReadCloser: r.Body}
		if r.Body != nil && r.Body != http.NoBody {
			r.Body = body
		}
		rec := httpx.NewRecorder(w)
		start := time.Now()
		next.ServeHTTP(rec, r)
		method := normalizeMethod(r.Method)
		m.duration.WithLabelValues(route, method).Observe(time.Since(start).Seconds())
		m.requests.WithLabelValues(route, method, strconv.Itoa(rec.Status)).Inc()
		m.bytesIn.WithLabelValues(route).Add(float64(body.n))
		m.bytesOut.WithLabelValues(route).Add(float64(rec.Written))
	})
}

// normalizeMethod keeps the method label bounded.
func normalizeMethod(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut,
		http.MethodPatch, http.MethodDelete, http.MethodOptions:
		return m
	}
	return "other"
}

type countingBody struct {
	io.ReadCloser
	n int64
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n += int64(n)
	return n, err
}
