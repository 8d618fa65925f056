// Package metrics defines registryd's Prometheus metrics, served on the
// debug server when http.debug.prometheus.enabled is set:
//
//	registryd_http_requests_total{route,method,code}          counter
//	registryd_http_request_duration_seconds{route,method}     histogram
//	registryd_http_request_bytes_total{route}                 counter (request bodies read)
//	registryd_http_response_bytes_total{route}                counter (response bodies written)
//	registryd_http_uploads_in_flight                          gauge   (upload requests being served)
//	registryd_storage_operation_duration_seconds{driver,operation} histogram
//	registryd_storage_operation_errors_total{driver,operation}     counter (not-found excluded)
//	registryd_notifications_pending{endpoint}                 gauge
//	registryd_notifications_events_total{endpoint,outcome}    counter (delivered, dropped)
//	registryd_notifications_failures_total{endpoint}          counter (failed attempts)
//	registryd_notifications_status_total{endpoint,code}       counter
//	registryd_upload_purge_deleted_total                      counter
//
// route is the API route (routes.Kind: base, catalog, tags, blob,
// blob_upload, blob_upload_chunk, manifest, referrers) or "other", so the
// label never carries repository names. Go runtime and process collectors
// are included. Each Metrics has its own registry: nothing is global, so
// several servers (or tests) in one process do not share counters.
package metrics

import (
	"net/http"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/berth-dev/berth/registryd/notifications"
)

const namespace = "registryd"

// Metrics is one set of registryd metrics and the registry serving them.
type Metrics struct {
	reg *prometheus.Registry

	requests        *prometheus.CounterVec
	duration        *prometheus.HistogramVec
	bytesIn         *prometheus.CounterVec
	bytesOut        *prometheus.CounterVec
	uploadsInFlight prometheus.Gauge
	storageDuration *prometheus.HistogramVec
	storageErrors   *prometheus.CounterVec
	// PurgedUploads counts upload directories removed by upload purging.
	PurgedUploads prometheus.Counter
}

// New returns a Metrics with every collector registered.
func New() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Subsystem: "http", Name: "requests_total",
			Help: "HTTP requests served, by API route, method and status code.",
		}, []string{"route", "method", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Subsystem: "http", Name: "request_duration_seconds",
			Help:    "Time to serve an HTTP request, by API route and method.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300},
		}, []string{"route", "method"}),
		bytesIn: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Subsystem: "http", Name: "request_bytes_total",
			Help: "Request body bytes read, by API route.",
		}, []string{"route"}),
		bytesOut: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Subsystem: "http", Name: "response_bytes_total",
			Help: "Response body bytes written, by API route.",
		}, []string{"route"}),
		uploadsInFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace, Subsystem: "http", Name: "uploads_in_flight",
			Help: "Blob upload requests (POST, PATCH, PUT on upload routes) being served.",
		}),
		storageDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Subsystem: "storage", Name: "operation_duration_seconds",
			Help:    "Latency of storage driver operations, by driver and operation.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"driver", "operation"}),
		storageErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Subsystem: "storage", Name: "operation_errors_total",
			Help: "Storage driver operations that failed (path not found excluded), by driver and operation.",
		}, []string{"driver", "operation"}),
		PurgedUploads: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: namespace, Subsystem: "upload_purge", Name: "deleted_total",
			Help: "Abandoned upload directories removed by upload purging.",
		}),
	}
	m.reg.MustRegister(m.requests, m.duration, m.bytesIn, m.bytesOut, m.uploadsInFlight,
		m.storageDuration, m.storageErrors, m.PurgedUploads,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Registry is the Prometheus registry holding the metrics.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the metrics in the Prometheus exposition format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// ObserveNotifications exports the counters of endpoints.
func (m *Metrics) ObserveNotifications(endpoints []*notifications.Endpoint) {
	if len(endpoints) > 0 {
		m.reg.MustRegister(&notificationCollector{endpoints: endpoints})
	}
}

var (
	pendingDesc = prometheus.NewDesc(namespace+"_notifications_pending",
		"Events queued for an endpoint, including the one being delivered.", []string{"endpoint"}, nil)
	eventsDesc = prometheus.NewDesc(namespace+"_notifications_events_total",
		"Events that left an endpoint's queue: delivered, or dropped (queue full, or abandoned at shutdown).",
		[]string{"endpoint", "outcome"}, nil)
	failuresDesc = prometheus.NewDesc(namespace+"_notifications_failures_total",
		"Failed delivery attempts (transport errors and unaccepted statuses).", []string{"endpoint"}, nil)
	statusDesc = prometheus.NewDesc(namespace+"_notifications_status_total",
		"HTTP status codes answered by an endpoint.", []string{"endpoint", "code"}, nil)
)

// notificationCollector reads endpoint counters at scrape time.
type notificationCollector struct{ endpoints []*notifications.Endpoint }

func (c *notificationCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- pendingDesc
	ch <- eventsDesc
	ch <- failuresDesc
	ch <- statusDesc
}

func (c *notificationCollector) Collect(ch chan<- prometheus.Metric) {
	for _, e := range c.endpoints {
		s := e.Stats()
		name := e.Name()
		ch <- prometheus.MustNewConstMetric(pendingDesc, prometheus.GaugeValue, float64(s.Pending), name)
		ch <- prometheus.MustNewConstMetric(eventsDesc, prometheus.CounterValue, float64(s.Delivered), name, "delivered")
		ch <- prometheus.MustNewConstMetric(eventsDesc, prometheus.CounterValue, float64(s.Dropped), name, "dropped")
		ch <- prometheus.MustNewConstMetric(failuresDesc, prometheus.CounterValue, float64(s.Failures), name)
		for code, n := range s.Statuses {
			ch <- prometheus.MustNewConstMetric(statusDesc, prometheus.CounterValue, float64(n), name, strconv.Itoa(code))
		}
	}
}
