package controllers

import (
	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	berthv1alpha1 "github.com/berth-dev/berth/api/v1alpha1"
)

// Metrics of garbage collection runs, on the manager's metrics endpoint.
var (
	gcRunsTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "berth_garbage_collection_runs_total",
		Help: "Garbage collection runs finished, by result (succeeded, failed) and, for failures, reason.",
	}, []string{"result", "reason"})
	gcRunDuration = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "berth_garbage_collection_duration_seconds",
		Help:    "Duration of finished garbage collection runs, from leaving Pending to the end.",
		Buckets: prometheus.ExponentialBuckets(1, 2, 14),
	})
	gcBytesFreed = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "berth_garbage_collection_bytes_freed_total",
		Help: "Bytes of blobs deleted by garbage collection runs (dry runs excluded).",
	})
	gcTagsDeleted = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "berth_garbage_collection_tags_deleted_total",
		Help: "Tags deleted by the retention rules of garbage collection runs (dry runs excluded).",
	})
	gcWriteOutage = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "berth_garbage_collection_write_outage_seconds",
		Help:    "Time writes were refused because of a run: first replica refusing to last replica accepting again.",
		Buckets: prometheus.ExponentialBuckets(0.5, 2, 14),
	})
)

func init() {
	metrics.Registry.MustRegister(gcRunsTotal, gcRunDuration, gcBytesFreed, gcTagsDeleted, gcWriteOutage)
}

// recordRunMetrics counts a run that just finished.
func recordRunMetrics(gc *berthv1alpha1.GarbageCollection) {
	st := &gc.Status
	if st.Phase == berthv1alpha1.GCSucceeded {
		gcRunsTotal.WithLabelValues("succeeded", "").Inc()
	} else {
		gcRunsTotal.WithLabelValues("failed", st.Reason).Inc()
	}
	if st.StartTime != nil && st.CompletionTime != nil {
		gcRunDuration.Observe(st.CompletionTime.Sub(st.StartTime.Time).Seconds())
	}
	if st.Summary != nil && !gc.Spec.DryRun {
		gcBytesFreed.Add(float64(st.Summary.BytesFreed))
		if r := st.Summary.Retention; r != nil {
			gcTagsDeleted.Add(float64(r.TagsDeleted))
		}
	}
	if o := st.WriteOutage; o != nil && o.Start != nil && o.End != nil {
		gcWriteOutage.Observe(o.End.Sub(o.Start.Time).Seconds())
	}
}
