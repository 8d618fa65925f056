package v1alpha1

import (
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Condition types a Registry reports.
const (
	// ConditionReady is True when every desired replica serves the current spec.
	ConditionReady = "Ready"
	// ConditionProgressing is True while a rollout is under way.
	ConditionProgressing = "Progressing"
	// ConditionDegraded is True when the spec cannot be honoured; the reason says why.
	ConditionDegraded = "Degraded"
	// ConditionReadOnly is True while the registry refuses writes.
	ConditionReadOnly = "ReadOnly"
	// ConditionGarbageCollecting is True while a GarbageCollection runs.
	ConditionGarbageCollecting = "GarbageCollecting"
)

// Condition reasons a Registry reports.
const (
	ReasonAvailable          = "Available"
	ReasonNotAvailable       = "NotAvailable"
	ReasonRollingOut         = "RollingOut"
	ReasonRolledOut          = "RolledOut"
	ReasonRolloutStalled     = "RolloutStalled"
	ReasonAsExpected         = "AsExpected"
	ReasonSecretNotFound     = "SecretNotFound"
	ReasonSecretKeyNotFound  = "SecretKeyNotFound"
	ReasonInvalidStorage     = "InvalidStorage"
	ReasonInvalidConfig      = "InvalidConfig"
	ReasonUnsupportedConfig  = "UnsupportedConfig" // needs a feature registryd does not implement yet
	ReasonInvalidSchedule    = "InvalidSchedule"
	ReasonCertManagerMissing = "CertManagerMissing"
	ReasonSpecReadOnly       = "SpecReadOnly"
	ReasonReadWrite          = "ReadWrite"
	// ReasonGarbageCollection: a GarbageCollection holds the registry
	// read-only.
	ReasonGarbageCollection = "GarbageCollection"
	// ReasonConverging: the replicas do not all report the read-only state
	// the registry should be in yet.
	ReasonConverging = "Converging"
	// ReasonIdle: no GarbageCollection is running.
	ReasonIdle = "Idle"
	// ReasonManagerImageUnknown: a schedule needs the manager image for
	// its CronJob and the manager was started without one.
	ReasonManagerImageUnknown = "ManagerImageUnknown"
)

// SecretKeyRef names one key of a Secret in the Registry's namespace.
type SecretKeyRef struct {
	// name of the Secret.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +required
	Name string `json:"name"`
	// key in the Secret's data.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +required
	Key string `json:"key"`
}

// RegistrySpec is the desired state of a Registry.
//
// +kubebuilder:validation:XValidation:rule="!has(self.storage.filesystem) || !has(self.replicas) || self.replicas <= 1 || !has(self.storage.filesystem.accessModes) || !('ReadWriteOnce' in self.storage.filesystem.accessModes) || ('ReadWriteMany' in self.storage.filesystem.accessModes)",message="spec.replicas: a ReadWriteOnce filesystem volume allows at most 1 replica"
// +kubebuilder:validation:XValidation:rule="!(has(self.storage.emptyDir) || has(self.storage.inmemory)) || !has(self.replicas) || self.replicas <= 1",message="spec.replicas: emptyDir and inmemory storage belong to one pod, so at most 1 replica"
type RegistrySpec struct {
	// replicas is the number of registryd pods.
	// +kubebuilder:default=1
	// +kubebuilder:validation:Minimum=0
	// +optional
	Replicas *int32 `json:"replicas,omitempty"`

	// image overrides the registryd image the operator was started with.
	// +optional
	Image string `json:"image,omitempty"`

	// imagePullPolicy of the registryd container.
	// +kubebuilder:validation:Enum=Always;IfNotPresent;Never
	// +optional
	ImagePullPolicy corev1.PullPolicy `json:"imagePullPolicy,omitempty"`

	// imagePullSecrets for the registryd image.
	// +optional
	ImagePullSecrets []corev1.LocalObjectReference `json:"imagePullSecrets,omitempty"`

	// resources of the registryd container.
	// +optional
	Resources corev1.ResourceRequirements `json:"resources,omitempty"`

	// nodeSelector of the registryd pods.
	// +optional
	NodeSelector map[string]string `json:"nodeSelector,omitempty"`

	// tolerations of the registryd pods.
	// +optional
	Tolerations []corev1.Toleration `json:"tolerations,omitempty"`

	// affinity of the registryd pods.
	// +optional
	Affinity *corev1.Affinity `json:"affinity,omitempty"`

	// podAnnotations are added to the registryd pods.
	// +optional
	PodAnnotations map[string]string `json:"podAnnotations,omitempty"`

	// storage says where the registry keeps blobs and manifests, and how the
	// storage layer behaves.
	// +required
	Storage RegistryStorage `json:"storage"`

	// readOnly puts the registry in maintenance mode: every write is
	// refused, every read keeps working. registryd applies it live, without
	// restarting pods.
	// +optional
	ReadOnly bool `json:"readOnly,omitempty"`

	// auth selects how clients authenticate; anonymous when unset.
	// +optional
	Auth *RegistryAuth `json:"auth,omitempty"`

	// tls serves the registry over HTTPS.
	// +optional
	TLS *RegistryTLS `json:"tls,omitempty"`

	// http options of the registry server.
	// +optional
	HTTP *RegistryHTTP `json:"http,omitempty"`

	// log options of registryd.
	// +optional
	Log *RegistryLog `json:"log,omitempty"`

	// proxy turns the registry into a pull-through cache of a remote registry.
	// +optional
	Proxy *RegistryProxy `json:"proxy,omitempty"`

	// notifications sends registry events to HTTP endpoints.
	// +optional
	Notifications *RegistryNotifications `json:"notifications,omitempty"`

	// validation of pushed content.
	// +optional
	Validation *RegistryValidation `json:"validation,omitempty"`

	// health checks reported on /debug/health.
	// +optional
	Health *RegistryHealth `json:"health,omitempty"`

	// metrics exposes Prometheus metrics on the debug port.
	// +optional
	Metrics *RegistryMetrics `json:"metrics,omitempty"`

	// garbageCollection schedules garbage collection runs and keeps their
	// history bounded. Without it, runs are created by hand and the default
	// history limits (3 succeeded, 1 failed) apply.
	// +optional
	GarbageCollection *GarbageCollectionPolicy `json:"garbageCollection,omitempty"`

	// service exposes the registry in the cluster.
	// +kubebuilder:default={}
	// +optional
	Service RegistryService `json:"service,omitempty"`

	// extraConfig is the escape hatch for registryd configuration keys the
	// typed spec does not cover. It is a config.yml fragment (for example
	// {"health": {"tcp": [{"addr": "redis:6379"}]}}) deep-merged over the
	// rendered configuration: maps merge key by key, any other value
	// replaces. The result is parsed by registryd's own configuration
	// parser, so an unknown key or bad value is refused and reported as
	// Degraded/InvalidConfig naming the key. Credentials do not belong here:
	// it is rendered into a ConfigMap.
	// +kubebuilder:validation:Type=object
	// +kubebuilder:pruning:PreserveUnknownFields
	// +optional
	ExtraConfig *apiextensionsv1.JSON `json:"extraConfig,omitempty"`
}

// RegistryService exposes the registry.
type RegistryService struct {
	// type of the Service.
	// +kubebuilder:default=ClusterIP
	// +kubebuilder:validation:Enum=ClusterIP;NodePort;LoadBalancer
	// +optional
	Type corev1.ServiceType `json:"type,omitempty"`
	// port of the Service.
	// +kubebuilder:default=5000
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	// +optional
	Port int32 `json:"port,omitempty"`
	// nodePort with type NodePort or LoadBalancer.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	// +optional
	NodePort int32 `json:"nodePort,omitempty"`
	// annotations of the Service.
	// +optional
	Annotations map[string]string `json:"annotations,omitempty"`
}

// RegistryStatus is the observed state of a Registry.
type RegistryStatus struct {
	// observedGeneration is the generation the status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// conditions: Ready, Progressing, Degraded, ReadOnly, GarbageCollecting.
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// replicas is the number of registryd pods.
	// +optional
	Replicas int32 `json:"replicas,omitempty"`

	// readyReplicas is the number of registryd pods that serve.
	// +optional
	ReadyReplicas int32 `json:"readyReplicas,omitempty"`

	// url is where the registry is reached inside the cluster.
	// +optional
	URL string `json:"url,omitempty"`

	// storage is the kind of storage in use (filesystem, emptyDir, ...).
	// +optional
	Storage string `json:"storage,omitempty"`

	// readOnly is whether the registry should refuse writes now
	// (spec.readOnly, or a GarbageCollection's hold); the ReadOnly
	// condition says what the replicas report.
	// +optional
	ReadOnly bool `json:"readOnly,omitempty"`

	// lastGarbageCollection summarises the last finished run.
	// +optional
	LastGarbageCollection *LastGarbageCollection `json:"lastGarbageCollection,omitempty"`
}

// LastGarbageCollection summarises a finished GarbageCollection.
type LastGarbageCollection struct {
	// name of the GarbageCollection.
	// +required
	Name string `json:"name"`
	// phase it finished in: Succeeded or Failed.
	// +required
	Phase GarbageCollectionPhase `json:"phase"`
	// completionTime of the run.
	// +optional
	CompletionTime *metav1.Time `json:"completionTime,omitempty"`
	// bytesFreed by the run (0 for a dry run).
	// +optional
	BytesFreed int64 `json:"bytesFreed,omitempty"`
	// tagsDeleted by the run's retention rules (0 for a dry run).
	// +optional
	TagsDeleted int64 `json:"tagsDeleted,omitempty"`
	// writeOutage is how long writes were refused, e.g. "4.2s".
	// +optional
	WriteOutage string `json:"writeOutage,omitempty"`
	// reason the run failed.
	// +optional
	Reason string `json:"reason,omitempty"`
}

// Registry is an OCI registry run by Berth.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=reg
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Replicas",type=integer,JSONPath=`.status.readyReplicas`
// +kubebuilder:printcolumn:name="Storage",type=string,JSONPath=`.status.storage`
// +kubebuilder:printcolumn:name="URL",type=string,JSONPath=`.status.url`
// +kubebuilder:printcolumn:name="Read-Only",type=string,JSONPath=`.status.conditions[?(@.type=="ReadOnly")].status`
// +kubebuilder:printcolumn:name="Last-GC",type=date,JSONPath=`.status.lastGarbageCollection.completionTime`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type Registry struct {
	metav1.TypeMeta `json:",inline"`
	// metadata is the standard object metadata.
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is the desired state of the Registry.
	// +optional
	Spec RegistrySpec `json:"spec,omitempty"`
	// status is the observed state of the Registry.
	// +optional
	Status RegistryStatus `json:"status,omitempty"`
}

// RegistryList is a list of Registry.
//
// +kubebuilder:object:root=true
type RegistryList struct {
	metav1.TypeMeta `json:",inline"`
	// metadata is the standard list metadata.
	// +optional
	metav1.ListMeta `json:"metadata,omitempty"`

	// items are the listed Registry objects.
	// +required
	Items []Registry `json:"items"`
}

func init() {
	SchemeBuilder.Register(&Registry{}, &RegistryList{})
}
