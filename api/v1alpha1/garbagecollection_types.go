package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// GarbageCollectionPhase is where a run is in its state machine
// (DESIGN.md, "Garbage collection").
// +kubebuilder:validation:Enum=Pending;EnteringReadOnly;Collecting;LeavingReadOnly;Succeeded;Failed
type GarbageCollectionPhase string

// The phases of a garbage collection run.
const (
	GCPending          GarbageCollectionPhase = "Pending"
	GCEnteringReadOnly GarbageCollectionPhase = "EnteringReadOnly"
	GCCollecting       GarbageCollectionPhase = "Collecting"
	GCLeavingReadOnly  GarbageCollectionPhase = "LeavingReadOnly"
	GCSucceeded        GarbageCollectionPhase = "Succeeded"
	GCFailed           GarbageCollectionPhase = "Failed"
)

// GarbageCollectionSpec describes one garbage collection run.
type GarbageCollectionSpec struct {
	// RegistryName is the Registry, in the same namespace, to collect.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="spec.registryName is immutable"
	RegistryName string `json:"registryName"`

	// DeleteUntagged also deletes manifests no tag reaches (referrers of
	// live manifests are kept).
	// +optional
	DeleteUntagged bool `json:"deleteUntagged,omitempty"`

	// DryRun reports what would be deleted and deletes nothing.
	// +optional
	DryRun bool `json:"dryRun,omitempty"`

	// Timeout bounds the whole run; on expiry the registry is put back to
	// read-write and the run fails.
	// +kubebuilder:default="1h"
	// +optional
	Timeout *metav1.Duration `json:"timeout,omitempty"`
}

// GarbageCollectionSummary is what the collector reports.
type GarbageCollectionSummary struct {
	ManifestsDeleted int64  `json:"manifestsDeleted,omitempty"`
	BlobsDeleted     int64  `json:"blobsDeleted,omitempty"`
	BytesFreed       int64  `json:"bytesFreed,omitempty"`
	Duration         string `json:"duration,omitempty"`
}

// GarbageCollectionStatus is the observed state of a run.
type GarbageCollectionStatus struct {
	// Phase of the run.
	// +optional
	Phase GarbageCollectionPhase `json:"phase,omitempty"`

	// Conditions of the run.
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// StartTime is when the run left Pending.
	// +optional
	StartTime *metav1.Time `json:"startTime,omitempty"`

	// CompletionTime is when the run reached Succeeded or Failed.
	// +optional
	CompletionTime *metav1.Time `json:"completionTime,omitempty"`

	// Summary of the collection.
	// +optional
	Summary *GarbageCollectionSummary `json:"summary,omitempty"`
}

// GarbageCollection is one garbage collection run against a Registry.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=gc
// +kubebuilder:printcolumn:name="Registry",type=string,JSONPath=`.spec.registryName`
// +kubebuilder:printcolumn:name="Phase",type=string,JSONPath=`.status.phase`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type GarbageCollection struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   GarbageCollectionSpec   `json:"spec,omitempty"`
	Status GarbageCollectionStatus `json:"status,omitempty"`
}

// GarbageCollectionList is a list of GarbageCollection.
//
// +kubebuilder:object:root=true
type GarbageCollectionList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []GarbageCollection `json:"items"`
}

func init() {
	SchemeBuilder.Register(&GarbageCollection{}, &GarbageCollectionList{})
}
