// Package control is the wire format of what a registryd replica reports
// to the Berth operator: the status its debug server serves at StatusPath,
// and the name of the hold file beside config.yml (the hold file's own
// format is package hold). It depends on nothing but the standard library,
// so the operator reads it without importing the daemon (one schema, two
// users, like package configuration). See docs/registryd-live-state.md.
package control

import "time"

// HoldFileName is the hold file's name in the Registry's ConfigMap (and so
// in the directory registryd reads config.yml from).
const HoldFileName = "hold.json"

// StatusPath is where a replica's debug server reports its Status.
const StatusPath = "/berth/v1/status"

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
	// ReadOnlySince is when the replica began refusing writes; zero
	// (omitted) while it accepts them.
	ReadOnlySince time.Time `json:"readOnlySince,omitzero"`
	// WritableSince is when the replica last began accepting writes (its
	// start, if it started writable); zero (omitted) while it refuses
	// them.
	WritableSince time.Time `json:"writableSince,omitzero"`
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
