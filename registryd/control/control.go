// Package control is the wire format between the Berth operator and
// registryd for maintenance: the hold file that puts a replica in
// read-only mode for a garbage collection run, and the status a replica
// reports on its debug server. It depends on nothing but the standard
// library, so the operator can import it without the daemon (one schema,
// two users, like package configuration).
//
// A hold is a JSON file (HoldFileName, beside config.yml in the Registry's
// ConfigMap) naming the run that holds the registry and when the hold
// expires:
//
//	{"id": "<run UID>", "holder": "GarbageCollection ns/name", "expires": "2026-11-25T17:00:00Z"}
//
// A replica refuses writes while a hold it can read has not expired; an
// expired, unreadable or absent hold is no hold. The expiry is what makes a
// hold safe to take: if the operator disappears mid-run, every replica
// becomes writable again by itself at the run's deadline.
package control

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// HoldFileName is the hold file's name in the Registry's ConfigMap (and so
// in the directory registryd reads config.yml from).
const HoldFileName = "hold.json"

// StatusPath is where a replica's debug server reports its Status.
const StatusPath = "/berth/v1/status"

// Hold is the content of the hold file.
type Hold struct {
	// ID names the run holding the registry (a GarbageCollection's UID).
	ID string `json:"id"`
	// Holder describes the run for people and logs.
	Holder string `json:"holder,omitempty"`
	// Expires is when the hold ends by itself.
	Expires time.Time `json:"expires"`
}

// ParseHold decodes a hold file; it fails on anything but a JSON object
// with an id and an expiry.
func ParseHold(data []byte) (*Hold, error) {
	var h Hold
	if err := json.Unmarshal(data, &h); err != nil {
		return nil, fmt.Errorf("hold file: %w", err)
	}
	switch {
	case h.ID == "":
		return nil, errors.New("hold file: no id")
	case h.Expires.IsZero():
		return nil, errors.New("hold file: no expires")
	}
	return &h, nil
}

// Marshal encodes h as a hold file.
func (h *Hold) Marshal() ([]byte, error) {
	return json.Marshal(h)
}

// Active reports whether h still holds at now.
func (h *Hold) Active(now time.Time) bool {
	return h != nil && now.Before(h.Expires)
}

// HoldRef is the active hold as a replica reports it.
type HoldRef struct {
	ID      string    `json:"id"`
	Expires time.Time `json:"expires"`
}

// Status is what a replica reports at StatusPath. Times are the replica's
// own clock.
type Status struct {
	// ReadOnly: the replica refuses writes and every write admitted before
	// it began refusing has finished, so none reaches storage any more.
	ReadOnly bool `json:"readOnly"`
	// ReadOnlyConfigured: the replica refuses new writes (configuration
	// flag or an active hold); ReadOnly follows once in-flight writes end.
	ReadOnlyConfigured bool `json:"readOnlyConfigured"`
	// ReadOnlySince is when the replica began refusing writes; nil while
	// it accepts them.
	ReadOnlySince *time.Time `json:"readOnlySince,omitempty"`
	// WritableSince is when the replica last began accepting writes (its
	// start, if it started writable); nil while it refuses them.
	WritableSince *time.Time `json:"writableSince,omitempty"`
	// Hold is the active hold, if any.
	Hold *HoldRef `json:"hold,omitempty"`
	// HoldInvalid: a hold file exists but cannot be used.
	HoldInvalid bool `json:"holdInvalid,omitempty"`
	// ConfigGeneration counts the configurations applied since start.
	ConfigGeneration uint64 `json:"configGeneration"`
	// ConfigHash is the SHA-256 of the configuration file bytes last
	// applied.
	ConfigHash string `json:"configHash"`
	// ReloadFailed: the configuration file on disk could not be applied
	// (the reason is in the replica's log, never here).
	ReloadFailed bool `json:"reloadFailed,omitempty"`
}

// HeldBy reports whether the replica refuses writes under the hold id and
// every write admitted before has drained.
func (s *Status) HeldBy(id string) bool {
	return s.ReadOnly && s.Hold != nil && s.Hold.ID == id
}
