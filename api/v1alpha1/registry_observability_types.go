package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// RegistryLog configures logging.
type RegistryLog struct {
	// Level is error, warn, info or debug.
	// +kubebuilder:validation:Enum=error;warn;info;debug
	// +optional
	Level string `json:"level,omitempty"`
	// Formatter is text, json or logstash.
	// +kubebuilder:validation:Enum=text;json;logstash
	// +optional
	Formatter string `json:"formatter,omitempty"`
	// AccessLogDisabled turns the access log off.
	// +optional
	AccessLogDisabled bool `json:"accessLogDisabled,omitempty"`
}

// RegistryHealth configures health checks.
type RegistryHealth struct {
	// StorageDriver checks the storage backend periodically.
	// +optional
	StorageDriver *StorageDriverHealth `json:"storageDriver,omitempty"`
}

// StorageDriverHealth checks the storage backend.
type StorageDriverHealth struct {
	// Enabled turns the check on.
	Enabled bool `json:"enabled"`
	// Interval between checks (default 10s).
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$`
	// +optional
	Interval *metav1.Duration `json:"interval,omitempty"`
	// Threshold of failures before unhealthy.
	// +kubebuilder:validation:Minimum=0
	// +optional
	Threshold *int32 `json:"threshold,omitempty"`
}

// RegistryMetrics exposes Prometheus metrics.
type RegistryMetrics struct {
	// Enabled serves /metrics on the debug port.
	Enabled bool `json:"enabled"`
	// ServiceMonitor creates a prometheus-operator ServiceMonitor when its
	// CRD exists.
	// +optional
	ServiceMonitor *ServiceMonitorSpec `json:"serviceMonitor,omitempty"`
}

// ServiceMonitorSpec configures the ServiceMonitor.
type ServiceMonitorSpec struct {
	// Enabled creates the ServiceMonitor.
	Enabled bool `json:"enabled"`
	// Interval of scrapes, e.g. 30s.
	// +kubebuilder:validation:Pattern=`^([0-9]+(ms|s|m|h))+$`
	// +optional
	Interval string `json:"interval,omitempty"`
	// Labels of the ServiceMonitor (to match a Prometheus selector).
	// +optional
	Labels map[string]string `json:"labels,omitempty"`
}
