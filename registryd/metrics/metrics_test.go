package metrics

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/berth-dev/berth/registryd/notifications"
	"github.com/berth-dev/berth/registryd/storage/driver/inmemory"
)

// value reads a counter or gauge.
func value(t *testing.T, c prometheus.Metric) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	if m.Counter != nil {
		return m.Counter.GetValue()
	}
	return m.Gauge.GetValue()
}

// series counts the series of the metric family name in m's registry, and
// returns the value of the one whose labels include want.
func series(t *testing.T, m *Metrics, name string, want map[string]string) (int, float64) {
	t.Helper()
	fams, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
		var v float64
	outer:
		for _, s := range f.GetMetric() {
			for _, l := range s.GetLabel() {
				if w, ok := want[l.GetName()]; ok && w != l.GetValue() {
					continue outer
				}
			}
			v = s.GetCounter().GetValue() + s.GetGauge().GetValue() + float64(s.GetHistogram().GetSampleCount())
		}
		return len(f.GetMetric()), v
	}
	return 0, 0
}

func TestMiddleware(t *testing.T) {
	m := New()
	inflight := -1.0
	h := m.Middleware("/reg/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPatch {
			inflight = value(t, m.uploadsInFlight)
		}
		buf := make([]byte, 64)
		n, _ := r.Body.Read(buf)
		w.WriteHeader(http.StatusAccepted)
		_, _ = w.Write(buf[:n])
	}))
	for _, rq := range []struct{ method, path, body string }{
		{http.MethodPatch, "/reg/v2/a/b/blobs/uploads/123", "12345"},
		{http.MethodGet, "/reg/v2/a/manifests/latest", ""},
		{http.MethodGet, "/elsewhere", ""},
		{"BREW", "/reg/v2/", ""},
	} {
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(rq.method, rq.path, strings.NewReader(rq.body)))
	}
	if inflight != 1 {
		t.Errorf("uploads in flight during PATCH = %v, want 1", inflight)
	}
	if v := value(t, m.uploadsInFlight); v != 0 {
		t.Errorf("uploads in flight after = %v", v)
	}
	for labels, want := range map[[3]string]float64{
		{"blob_upload_chunk", "PATCH", "202"}: 1,
		{"manifest", "GET", "202"}:            1,
		{"other", "GET", "202"}:               1,
		{"base", "other", "202"}:              1,
	} {
		if got := value(t, m.requests.WithLabelValues(labels[:]...)); got != want {
			t.Errorf("requests%v = %v, want %v", labels, got, want)
		}
	}
	if got := value(t, m.bytesIn.WithLabelValues("blob_upload_chunk")); got != 5 {
		t.Errorf("bytes in = %v, want 5", got)
	}
	if got := value(t, m.bytesOut.WithLabelValues("blob_upload_chunk")); got != 5 {
		t.Errorf("bytes out = %v, want 5", got)
	}
}

func TestInstrumentDriver(t *testing.T) {
	m := New()
	d := m.InstrumentDriver(inmemory.New())
	ctx := context.Background()
	if err := d.PutContent(ctx, "/a", []byte("x")); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Stat(ctx, "/missing"); err == nil {
		t.Fatal("stat of a missing path succeeded")
	}
	w, err := d.Writer(ctx, "/b", false)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	w.Close()
	if n, _ := series(t, m, "registryd_storage_operation_duration_seconds", nil); n != 4 {
		t.Errorf("storage histograms = %d, want PutContent, Stat, Writer, Commit", n)
	}
	if n, _ := series(t, m, "registryd_storage_operation_errors_total", nil); n != 0 {
		t.Errorf("not-found counted as an error")
	}
}

func TestNotificationMetrics(t *testing.T) {
	m := New()
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer srv.Close()
	e := notifications.NewEndpoint(notifications.EndpointConfig{Name: "hook", URL: srv.URL})
	m.ObserveNotifications([]*notifications.Endpoint{e})
	e.Write(notifications.Event{ID: "1", Action: notifications.ActionPush})
	if err := e.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"registryd_notifications_events_total", map[string]string{"endpoint": "hook", "outcome": "delivered"}, 1},
		{"registryd_notifications_events_total", map[string]string{"endpoint": "hook", "outcome": "dropped"}, 0},
		{"registryd_notifications_pending", map[string]string{"endpoint": "hook"}, 0},
		{"registryd_notifications_status_total", map[string]string{"endpoint": "hook", "code": "200"}, 1},
	} {
		if n, v := series(t, m, c.name, c.labels); n == 0 || v != c.want {
			t.Errorf("%s%v = %v (%d series), want %v", c.name, c.labels, v, n, c.want)
		}
	}
}
