package v1alpha1

// RegistryLog configures logging.
type RegistryLog struct {
	// level is error, warn, info or debug.
	// +kubebuilder:validation:Enum=error;warn;info;debug
	// +optional
	Level string `json:"level,omitempty"`
	// formatter is text, json or logstash.
	// +kubebuilder:validation:Enum=text;json;logstash
	// +optional
	Formatter string `json:"formatter,omitempty"`
	// accessLogDisabled turns the access log off.
	// +optional
	AccessLogDisabled bool `json:"accessLogDisabled,omitempty"`
}

// RegistryHealth configures health checks.
type RegistryHealth struct {
	// storageDriver checks the storage backend periodically.
	// +optional
	StorageDriver *StorageDriverHealth `json:"storageDriver,omitempty"`
}

// StorageDriverHealth checks the storage backend.
type StorageDriverHealth struct {
	// enabled turns the check on.
	// +required
	Enabled bool `json:"enabled"`
	// interval between checks (default 10s).
	// +optional
	Interval *Duration `json:"interval,omitempty"`
	// threshold of failures before unhealthy.
	// +kubebuilder:validation:Minimum=0
	// +optional
	Threshold *int32 `json:"threshold,omitempty"`
}

// RegistryMetrics exposes Prometheus metrics.
type RegistryMetrics struct {
	// enabled serves /metrics on the debug port.
	// +required
	Enabled bool `json:"enabled"`
	// serviceMonitor creates a prometheus-operator ServiceMonitor when its
	// CRD exists.
	// +optional
	ServiceMonitor *ServiceMonitorSpec `json:"serviceMonitor,omitempty"`
}

// ServiceMonitorSpec configures the ServiceMonitor.
type ServiceMonitorSpec struct {
	// enabled creates the ServiceMonitor.
	// +required
	Enabled bool `json:"enabled"`
	// interval of scrapes, e.g. 30s.
	// +kubebuilder:validation:Pattern=`^([0-9]+(ms|s|m|h))+$`
	// +optional
	Interval string `json:"interval,omitempty"`
	// labels of the ServiceMonitor (to match a Prometheus selector).
	// +optional
	Labels map[string]string `json:"labels,omitempty"`
}
