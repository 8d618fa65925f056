package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// GarbageCollectionPhase is where a run is in its state machine
// (docs/garbage-collection.md).
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

// Condition types a GarbageCollection reports.
const (
	// GCConditionQueued is True while the run waits for an earlier run of
	// the same Registry.
	GCConditionQueued = "Queued"
	// GCConditionReadOnlyVerified is True while every running replica of
	// the Registry has reported that it refuses writes under this run's
	// hold.
	GCConditionReadOnlyVerified = "ReadOnlyVerified"
	// GCConditionComplete is True once the run succeeded.
	GCConditionComplete = "Complete"
	// GCConditionFailed is True once the run failed; the reason says why.
	GCConditionFailed = "Failed"
)

// Reasons a GarbageCollection reports (conditions, events, status.reason).
const (
	GCReasonWaiting            = "WaitingForEarlierRun"
	GCReasonStarted            = "Started"
	GCReasonReplicasWritable   = "ReplicasStillWritable"
	GCReasonAllReadOnly        = "AllReplicasReadOnly"
	GCReasonCollected          = "Collected"
	GCReasonSucceeded          = "Succeeded"
	GCReasonJobFailed          = "CollectorFailed"
	GCReasonTimeout            = "Timeout"
	GCReasonRegistryNotFound   = "RegistryNotFound"
	GCReasonRegistryDeleted    = "RegistryDeleted"
	GCReasonStorageChanged     = "StorageChanged"
	GCReasonUnsupportedStorage = "UnsupportedStorage"
	GCReasonNotConfigured      = "RegistryNotConfigured"
	GCReasonInvalidRetention   = "InvalidRetention"
	GCReasonReadWriteRestored  = "ReadWriteRestored"
)

// GarbageCollectionSpec describes one garbage collection run. It is fixed
// once created: a run is a record of what was asked.
//
// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="spec is immutable; create a new GarbageCollection instead"
type GarbageCollectionSpec struct {
	// registryName is the Registry, in the same namespace, to collect.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +required
	RegistryName string `json:"registryName"`

	// deleteUntagged also deletes manifests no tag reaches (index children
	// and referrers of live manifests are kept).
	// +optional
	DeleteUntagged bool `json:"deleteUntagged,omitempty"`

	// dryRun reports what would be deleted and deletes nothing. The
	// registry is still held read-only while the collector runs, so the
	// report is exactly what a real run would delete.
	// +optional
	DryRun bool `json:"dryRun,omitempty"`

	// timeout bounds the whole run from the moment it leaves Pending: the
	// hold that keeps the replicas read-only expires by itself at
	// startTime + timeout (even if the operator is gone), the collector
	// stops deleting before that, and the run fails with reason Timeout.
	// At least 10s.
	// +kubebuilder:default="1h"
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('10s')",message="spec.timeout must be at least 10s"
	// +optional
	Timeout *Duration `json:"timeout,omitempty"`

	// gracePeriod protects recent content: blobs, and with deleteUntagged
	// untagged manifests, written less than gracePeriod before the
	// collector starts are never deleted. It covers pushes that straddle
	// the run (layers uploaded before the hold whose manifest is pushed
	// after it). 0s turns it off.
	// +kubebuilder:default="1h"
	// +optional
	GracePeriod *Duration `json:"gracePeriod,omitempty"`

	// retention are the tag retention rules the run applies, in order:
	// the tags they do not keep are deleted first (in a dry run, reported
	// and kept), then the collection frees what only those tags held,
	// with or without deleteUntagged. A run the Registry's schedule
	// creates carries a copy of the Registry's
	// spec.garbageCollection.retention as it was then; a run created by
	// hand applies exactly the rules it carries, none when unset (it
	// never picks up the Registry's). See RetentionRule.
	// +kubebuilder:validation:MaxItems=32
	// +listType=atomic
	// +optional
	Retention []RetentionRule `json:"retention,omitempty"`
}

// GarbageCollectionSummary is what the collector reports.
type GarbageCollectionSummary struct {
	// manifestsDeleted counts the manifest revisions deleted (or, in a dry
	// run, that would be).
	// +optional
	ManifestsDeleted int64 `json:"manifestsDeleted,omitempty"`
	// blobsDeleted counts the blobs deleted (or that would be).
	// +optional
	BlobsDeleted int64 `json:"blobsDeleted,omitempty"`
	// bytesFreed is the size of the blobs deleted (or that would be).
	// +optional
	BytesFreed int64 `json:"bytesFreed,omitempty"`
	// freed is bytesFreed for people, e.g. "12.5 MiB".
	// +optional
	Freed string `json:"freed,omitempty"`
	// blobsKeptByGracePeriod counts unreferenced blobs kept because they
	// are younger than the grace period.
	// +optional
	BlobsKeptByGracePeriod int64 `json:"blobsKeptByGracePeriod,omitempty"`
	// manifestsKeptByGracePeriod counts untagged manifests kept because
	// they are younger than the grace period.
	// +optional
	ManifestsKeptByGracePeriod int64 `json:"manifestsKeptByGracePeriod,omitempty"`
	// duration is how long the collector itself ran, e.g. "1.2s".
	// +optional
	Duration string `json:"duration,omitempty"`
	// retention is what the run's retention rules did; absent for a run
	// without rules.
	// +optional
	Retention *RetentionSummary `json:"retention,omitempty"`
}

// WriteOutage is the time the registry refused writes because of a run:
// from the moment the first replica began refusing writes to the moment
// the last one accepted them again, by the replicas' own clocks.
type WriteOutage struct {
	// start is when the first replica began refusing writes (microsecond
	// precision: outages last seconds).
	// +optional
	Start *metav1.MicroTime `json:"start,omitempty"`
	// end is when the last replica accepted writes again (unset while the
	// run holds the registry, and when spec.readOnly keeps it read-only).
	// +optional
	End *metav1.MicroTime `json:"end,omitempty"`
	// duration is end - start, e.g. "4.2s".
	// +optional
	Duration string `json:"duration,omitempty"`
}

// GarbageCollectionStatus is the observed state of a run.
type GarbageCollectionStatus struct {
	// phase of the run.
	// +optional
	Phase GarbageCollectionPhase `json:"phase,omitempty"`

	// conditions: Queued, ReadOnlyVerified, Complete, Failed.
	// +listType=map
	// +listMapKey=type
	// +kubebuilder:validation:MaxItems=8
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// startTime is when the run left Pending.
	// +optional
	StartTime *metav1.Time `json:"startTime,omitempty"`

	// holdExpires is when the read-only hold of this run expires by
	// itself (startTime + timeout).
	// +optional
	HoldExpires *metav1.Time `json:"holdExpires,omitempty"`

	// completionTime is when the run reached Succeeded or Failed.
	// +optional
	CompletionTime *metav1.Time `json:"completionTime,omitempty"`

	// duration is completionTime - startTime, e.g. "35s".
	// +optional
	Duration string `json:"duration,omitempty"`

	// registryUID is the UID of the Registry when the run started; a
	// Registry deleted and created again under the same name is another
	// registry, and fails the run.
	// +optional
	RegistryUID string `json:"registryUID,omitempty"`

	// storageHash fingerprints the Registry's storage spec when the run
	// started; a change fails the run.
	// +optional
	StorageHash string `json:"storageHash,omitempty"`

	// verifiedReplicas names the registryd pods that reported refusing
	// writes under this run's hold before the collector started (and any
	// that started during the run and were verified after).
	// +listType=set
	// +kubebuilder:validation:MaxItems=256
	// +optional
	VerifiedReplicas []string `json:"verifiedReplicas,omitempty"`

	// jobName is the collector Job.
	// +optional
	JobName string `json:"jobName,omitempty"`

	// writeOutage is how long writes were refused because of this run.
	// +optional
	WriteOutage *WriteOutage `json:"writeOutage,omitempty"`

	// summary of the collection.
	// +optional
	Summary *GarbageCollectionSummary `json:"summary,omitempty"`

	// reason is why the run failed (set from the moment the failure is
	// known, while read-write is being restored).
	// +optional
	Reason string `json:"reason,omitempty"`

	// message says what happened, for people.
	// +optional
	Message string `json:"message,omitempty"`
}

// GarbageCollection is one garbage collection run against a Registry:
// created by hand (kubectl create -f) or by the Registry's schedule.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=gc
// +kubebuilder:printcolumn:name="Registry",type=string,JSONPath=`.spec.registryName`
// +kubebuilder:printcolumn:name="Phase",type=string,JSONPath=`.status.phase`
// +kubebuilder:printcolumn:name="Tags-Deleted",type=integer,JSONPath=`.status.summary.retention.tagsDeleted`
// +kubebuilder:printcolumn:name="Freed",type=string,JSONPath=`.status.summary.freed`
// +kubebuilder:printcolumn:name="Writes-Blocked",type=string,JSONPath=`.status.writeOutage.duration`
// +kubebuilder:printcolumn:name="Duration",type=string,JSONPath=`.status.duration`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type GarbageCollection struct {
	metav1.TypeMeta `json:",inline"`
	// metadata is the standard object metadata.
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec describes the run. It is fixed once created: a run is a record
	// of what was asked.
	// +optional
	Spec GarbageCollectionSpec `json:"spec,omitempty"`
	// status is the observed state of the GarbageCollection.
	// +optional
	Status GarbageCollectionStatus `json:"status,omitempty"`
}

// Finished reports whether the run reached Succeeded or Failed.
func (gc *GarbageCollection) Finished() bool {
	return gc.Status.Phase == GCSucceeded || gc.Status.Phase == GCFailed
}

// Active reports whether the run holds (or is taking or releasing a hold
// on) its Registry.
func (gc *GarbageCollection) Active() bool {
	switch gc.Status.Phase {
	case GCEnteringReadOnly, GCCollecting, GCLeavingReadOnly:
		return true
	}
	return false
}

// GarbageCollectionList is a list of GarbageCollection.
//
// +kubebuilder:object:root=true
type GarbageCollectionList struct {
	metav1.TypeMeta `json:",inline"`
	// metadata is the standard list metadata.
	// +optional
	metav1.ListMeta `json:"metadata,omitempty"`

	// items are the listed GarbageCollection objects.
	// +required
	Items []GarbageCollection `json:"items"`
}

func init() {
	SchemeBuilder.Register(&GarbageCollection{}, &GarbageCollectionList{})
}
