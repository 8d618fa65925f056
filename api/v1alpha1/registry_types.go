package v1alpha1

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Condition types a Registry reports.
const (
	// ConditionReady is True when every desired replica serves.
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

// RegistrySpec is the desired state of a Registry.
//
// +kubebuilder:validation:XValidation:rule="!has(self.storage.filesystem) || !has(self.replicas) || self.replicas <= 1 || !has(self.storage.filesystem.accessModes) || !('ReadWriteOnce' in self.storage.filesystem.accessModes) || ('ReadWriteMany' in self.storage.filesystem.accessModes)",message="spec.replicas: a ReadWriteOnce filesystem volume allows at most 1 replica"
type RegistrySpec struct {
	// Replicas is the number of registryd pods.
	// +kubebuilder:default=1
	// +kubebuilder:validation:Minimum=0
	// +optional
	Replicas *int32 `json:"replicas,omitempty"`

	// Image overrides the registryd image the operator was started with.
	// +optional
	Image string `json:"image,omitempty"`

	// Storage says where the registry keeps blobs and manifests.
	Storage RegistryStorage `json:"storage"`

	// ReadOnly puts the registry in maintenance mode: every write is
	// refused, every read keeps working.
	// +optional
	ReadOnly bool `json:"readOnly,omitempty"`
}

// RegistryStorage selects exactly one storage backend.
//
// +kubebuilder:validation:XValidation:rule="[has(self.filesystem), has(self.emptyDir), has(self.inmemory)].filter(x, x).size() == 1",message="spec.storage: exactly one of filesystem, emptyDir or inmemory must be set"
type RegistryStorage struct {
	// Filesystem keeps data on a PersistentVolumeClaim the operator creates.
	// +optional
	Filesystem *FilesystemStorage `json:"filesystem,omitempty"`

	// EmptyDir keeps data in a pod-local emptyDir volume: lost with the pod.
	// +optional
	EmptyDir *EmptyDirStorage `json:"emptyDir,omitempty"`

	// InMemory keeps data in registryd's memory: for tests only.
	// +optional
	InMemory *InMemoryStorage `json:"inmemory,omitempty"`
}

// FilesystemStorage is registry storage on a PersistentVolumeClaim.
type FilesystemStorage struct {
	// Size of the volume.
	// +kubebuilder:default="10Gi"
	// +optional
	Size *resource.Quantity `json:"size,omitempty"`

	// StorageClassName of the claim; the cluster default when empty.
	// +optional
	StorageClassName *string `json:"storageClassName,omitempty"`

	// AccessModes of the claim. ReadWriteOnce limits the Registry to one replica.
	// +kubebuilder:default={"ReadWriteOnce"}
	// +optional
	AccessModes []corev1.PersistentVolumeAccessMode `json:"accessModes,omitempty"`
}

// EmptyDirStorage is registry storage in a pod-local emptyDir volume.
type EmptyDirStorage struct {
	// SizeLimit of the volume.
	// +optional
	SizeLimit *resource.Quantity `json:"sizeLimit,omitempty"`
}

// InMemoryStorage keeps everything in registryd's memory.
type InMemoryStorage struct{}

// RegistryStatus is the observed state of a Registry.
type RegistryStatus struct {
	// ObservedGeneration is the generation the status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// Conditions: Ready, Progressing, Degraded, ReadOnly, GarbageCollecting.
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// Replicas is the number of registryd pods.
	// +optional
	Replicas int32 `json:"replicas,omitempty"`

	// ReadyReplicas is the number of registryd pods that serve.
	// +optional
	ReadyReplicas int32 `json:"readyReplicas,omitempty"`

	// URL is where the registry is reached inside the cluster.
	// +optional
	URL string `json:"url,omitempty"`
}

// Registry is an OCI registry run by Berth.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=reg
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Replicas",type=integer,JSONPath=`.status.readyReplicas`
// +kubebuilder:printcolumn:name="URL",type=string,JSONPath=`.status.url`
// +kubebuilder:printcolumn:name="Read-Only",type=string,JSONPath=`.status.conditions[?(@.type=="ReadOnly")].status`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type Registry struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   RegistrySpec   `json:"spec,omitempty"`
	Status RegistryStatus `json:"status,omitempty"`
}

// RegistryList is a list of Registry.
//
// +kubebuilder:object:root=true
type RegistryList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Registry `json:"items"`
}

func init() {
	SchemeBuilder.Register(&Registry{}, &RegistryList{})
}
