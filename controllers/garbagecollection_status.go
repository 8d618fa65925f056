package controllers

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	berthv1alpha1 "github.com/berth-dev/berth/api/v1alpha1"
	"github.com/berth-dev/berth/controllers/builders"
	registrydgc "github.com/berth-dev/berth/registryd/gc"
)

// setGCCondition sets a condition of the run (keeping its transition time
// unless the status flips) and reports whether anything changed.
func setGCCondition(gc *berthv1alpha1.GarbageCollection, typ string, status metav1.ConditionStatus, reason, message string) bool {
	return meta.SetStatusCondition(&gc.Status.Conditions, metav1.Condition{
		Type: typ, Status: status, Reason: reason, Message: message, ObservedGeneration: gc.Generation,
	})
}

func findGCCondition(gc *berthv1alpha1.GarbageCollection, typ string) *metav1.Condition {
	return meta.FindStatusCondition(gc.Status.Conditions, typ)
}

// collectorSummary is the part of `registryd garbage-collect --json`'s
// summary (the collector pod's termination message) the run reports; its
// retention part is registryd's own type.
type collectorSummary struct {
	DryRun             bool                          `json:"dryRun"`
	ManifestsDeleted   int64                         `json:"manifestsDeleted"`
	BlobsDeleted       int64                         `json:"blobsDeleted"`
	BytesFreed         int64                         `json:"bytesFreed"`
	BlobsKeptYoung     int64                         `json:"blobsKeptYoung"`
	ManifestsKeptYoung int64                         `json:"manifestsKeptYoung"`
	DurationSeconds    float64                       `json:"durationSeconds"`
	ErrorCount         int64                         `json:"errorCount"`
	Error              string                        `json:"error"`
	Retention          *registrydgc.RetentionSummary `json:"retention"`
}

// maxRetentionRepositories bounds status.summary.retention.byRepository.
const maxRetentionRepositories = 16

// parseCollectorSummary decodes a termination message.
func parseCollectorSummary(msg string) (*collectorSummary, error) {
	if strings.TrimSpace(msg) == "" {
		return nil, fmt.Errorf("the collector left no termination message")
	}
	var s collectorSummary
	if err := json.Unmarshal([]byte(msg), &s); err != nil {
		return nil, fmt.Errorf("the collector's termination message is not its summary: %w", err)
	}
	return &s, nil
}

// status is the summary as the run's status reports it.
func (s *collectorSummary) status() *berthv1alpha1.GarbageCollectionSummary {
	return &berthv1alpha1.GarbageCollectionSummary{
		ManifestsDeleted:           s.ManifestsDeleted,
		BlobsDeleted:               s.BlobsDeleted,
		BytesFreed:                 s.BytesFreed,
		Freed:                      builders.HumanBytes(s.BytesFreed),
		BlobsKeptByGracePeriod:     s.BlobsKeptYoung,
		ManifestsKeptByGracePeriod: s.ManifestsKeptYoung,
		Duration:                   (time.Duration(s.DurationSeconds * float64(time.Second))).Round(time.Millisecond).String(),
		Retention:                  retentionStatus(s.Retention),
	}
}

// retentionStatus is what retention did as the run's status reports it:
// the repositories with the most tags deleted, the others counted.
func retentionStatus(r *registrydgc.RetentionSummary) *berthv1alpha1.RetentionSummary {
	if r == nil {
		return nil
	}
	out := &berthv1alpha1.RetentionSummary{
		TagsDeleted:            int64(r.TagsDeleted),
		Repositories:           int64(r.Repositories),
		TagsKeptByLastTagGuard: int64(r.TagsKeptByLastTagGuard),
		RepositoriesOmitted:    int64(r.RepositoriesOmitted),
		EventsDropped:          int64(r.EventsDropped),
	}
	for i, repo := range r.ByRepository {
		if i == maxRetentionRepositories {
			out.RepositoriesOmitted += int64(len(r.ByRepository) - i)
			break
		}
		out.ByRepository = append(out.ByRepository, berthv1alpha1.RepositoryTagsDeleted{Repository: repo.Repository, TagsDeleted: int64(repo.TagsDeleted)})
	}
	return out
}

// describe says what the collector did, for the run's message and events.
func (s *collectorSummary) describe() string {
	verb := "Deleted"
	if s.DryRun {
		verb = "Dry run: would delete"
	}
	msg := fmt.Sprintf("%s %d manifests and %d blobs (%s)", verb, s.ManifestsDeleted, s.BlobsDeleted, builders.HumanBytes(s.BytesFreed))
	if r := s.Retention; r != nil {
		msg = fmt.Sprintf("%s %d tags, %d manifests and %d blobs (%s)", verb, r.TagsDeleted, s.ManifestsDeleted, s.BlobsDeleted, builders.HumanBytes(s.BytesFreed))
	}
	if kept := s.BlobsKeptYoung + s.ManifestsKeptYoung; kept > 0 {
		msg += fmt.Sprintf("; kept %d blobs and %d manifests younger than the grace period", s.BlobsKeptYoung, s.ManifestsKeptYoung)
	}
	if r := s.Retention; r != nil && r.TagsKeptByLastTagGuard > 0 {
		msg += fmt.Sprintf("; the last-tag guard kept %d tags", r.TagsKeptByLastTagGuard)
	}
	if r := s.Retention; r != nil && r.EventsDropped > 0 {
		msg += fmt.Sprintf("; %d tag delete events were not delivered", r.EventsDropped)
	}
	return msg
}
