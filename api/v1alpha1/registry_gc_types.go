package v1alpha1

// GarbageCollectionPolicy schedules GarbageCollection runs and bounds
// how many finished runs are kept.
//
// +kubebuilder:validation:XValidation:rule="has(self.schedule) || !(has(self.suspend) || has(self.deleteUntagged) || has(self.dryRun) || has(self.timeout) || has(self.gracePeriod) || has(self.retention))",message="spec.garbageCollection.schedule: required when suspend, deleteUntagged, dryRun, timeout, gracePeriod or retention is set (they shape scheduled runs)"
type GarbageCollectionPolicy struct {
	// schedule in cron syntax (five fields, or @hourly, @daily, ...), in
	// the time zone of the kube-controller-manager. A CronJob creates a
	// GarbageCollection on this schedule; without a schedule there is no
	// CronJob and runs are created by hand.
	// +kubebuilder:validation:MaxLength=128
	// +kubebuilder:validation:Pattern=`^(@(yearly|annually|monthly|weekly|daily|midnight|hourly)|@every ([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+|(((\*|\?|[0-9]{1,2}(-[0-9]{1,2})?|[A-Za-z]{3}(-[A-Za-z]{3})?)(/[0-9]{1,2})?)(,((\*|\?|[0-9]{1,2}(-[0-9]{1,2})?|[A-Za-z]{3}(-[A-Za-z]{3})?)(/[0-9]{1,2})?))*)( +(((\*|\?|[0-9]{1,2}(-[0-9]{1,2})?|[A-Za-z]{3}(-[A-Za-z]{3})?)(/[0-9]{1,2})?)(,((\*|\?|[0-9]{1,2}(-[0-9]{1,2})?|[A-Za-z]{3}(-[A-Za-z]{3})?)(/[0-9]{1,2})?))*)){4})$`
	// +optional
	Schedule string `json:"schedule,omitempty"`
	// suspend stops the schedule from creating runs (the CronJob is
	// suspended); runs already created go on.
	// +optional
	Suspend bool `json:"suspend,omitempty"`
	// deleteUntagged makes scheduled runs also delete manifests no tag
	// reaches.
	// +optional
	DeleteUntagged bool `json:"deleteUntagged,omitempty"`
	// dryRun makes scheduled runs report what they would delete and delete
	// nothing.
	// +optional
	DryRun bool `json:"dryRun,omitempty"`
	// timeout of each scheduled run (GarbageCollection spec.timeout; 1h
	// when unset). At least 10s.
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('10s')",message="spec.garbageCollection.timeout must be at least 10s"
	// +optional
	Timeout *Duration `json:"timeout,omitempty"`
	// gracePeriod of each scheduled run (GarbageCollection
	// spec.gracePeriod; 1h when unset): content younger than this is never
	// deleted.
	// +optional
	GracePeriod *Duration `json:"gracePeriod,omitempty"`
	// retention is the tag retention policy of scheduled runs: an ordered
	// list of rules saying which tags to keep; each run deletes the tags
	// they do not keep, then collects what those tags held. Every
	// scheduled run (and `kubectl create job --from=cronjob/<name>-gc`)
	// carries a copy of the rules as they are when it is created, which
	// `kubectl get gc -o yaml` shows. Set dryRun to see what a policy
	// would delete before it deletes anything. See RetentionRule.
	// +kubebuilder:validation:MaxItems=32
	// +listType=atomic
	// +optional
	Retention []RetentionRule `json:"retention,omitempty"`
	// successfulRunsHistoryLimit is how many succeeded GarbageCollections
	// of this Registry are kept (scheduled and manual alike); older ones
	// are deleted with their collector Job and its logs.
	// +kubebuilder:default=3
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100
	// +optional
	SuccessfulRunsHistoryLimit *int32 `json:"successfulRunsHistoryLimit,omitempty"`
	// failedRunsHistoryLimit is how many failed GarbageCollections of this
	// Registry are kept.
	// +kubebuilder:default=1
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100
	// +optional
	FailedRunsHistoryLimit *int32 `json:"failedRunsHistoryLimit,omitempty"`
}
