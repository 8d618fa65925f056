// Package notifications delivers registry events to HTTP listeners in
// Distribution's notification format, so that a listener written for the
// CNCF Distribution registry works unchanged against registryd.
//
// # Wire format
//
// Each delivery is one POST with Content-Type EventsMediaType
// ("application/vnd.docker.distribution.events.v2+json") whose body is an
// Envelope, {"events": [...]}, holding exactly one Event, as Distribution
// v3 sends them. An Event carries id, timestamp, action (push, pull, mount
// or delete), target (mediaType, size, digest, length, repository,
// fromRepository for mounts, url, tag, and references when
// notifications.events.includereferences is set), request (id, addr,
// host, method, useragent), actor (name) and source (addr, instanceID).
// Any 2xx or 3xx answer is a delivery; anything else, or a transport
// error, is a failure.
//
// # Delivery
//
// Every configured endpoint has its own Endpoint: a bounded in-memory
// queue and one goroutine delivering events in order. Writing to an
// endpoint never blocks the request that produced the event; when the
// queue is full the event is dropped and counted (Distribution's queue is
// unbounded, which trades memory for completeness; registryd bounds it so
// that a dead listener cannot exhaust the daemon). A failing event is
// retried: at once while fewer than threshold consecutive attempts have
// failed, then once per backoff, until it is delivered or the endpoint is
// closed. Defaults are Distribution's: timeout 1s, threshold 10, backoff
// 1s.
//
// On shutdown, Close stops accepting events and keeps delivering what is
// queued until its context ends; what is left then is dropped and counted.
package notifications

import (
	"time"

	"github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"
)

// EventsMediaType is the Content-Type of a notification request.
const EventsMediaType = "application/vnd.docker.distribution.events.v2+json"

// Event actions.
const (
	ActionPull   = "pull"
	ActionPush   = "push"
	ActionMount  = "mount"
	ActionDelete = "delete"
)

// Actions lists every event action.
var Actions = []string{ActionPull, ActionPush, ActionMount, ActionDelete}

// BlobMediaType is the target media type of blob events. Blobs carry no
// media type of their own in storage; Distribution reports this one, which
// is why listeners commonly ignore it to receive manifest events only.
const BlobMediaType = "application/octet-stream"

// Envelope is the body of one notification request.
type Envelope struct {
	Events []Event `json:"events"`
}

// Event is one registry action.
type Event struct {
	// ID is unique per event; a retried delivery repeats it.
	ID        string    `json:"id"`
	Timestamp time.Time `json:"timestamp"`
	Action    string    `json:"action"`
	Target    Target    `json:"target"`
	Request   Request   `json:"request"`
	Actor     Actor     `json:"actor"`
	Source    Source    `json:"source"`
}

// Target is what the action was applied to.
type Target struct {
	MediaType string        `json:"mediaType,omitempty"`
	Digest    digest.Digest `json:"digest,omitempty"`
	// Size is always present, 0 for deletes, as in Distribution's
	// descriptor-shaped target.
	Size int64 `json:"size"`
	// Length repeats Size, for listeners written against older
	// registries.
	Length     int64  `json:"length,omitempty"`
	Repository string `json:"repository,omitempty"`
	// FromRepository is the source repository of a mount.
	FromRepository string `json:"fromRepository,omitempty"`
	// URL fetches the target (absolute unless http.relativeurls).
	URL string `json:"url,omitempty"`
	// Tag is set for manifest pushes and pulls by tag and tag deletes.
	Tag string `json:"tag,omitempty"`
	// References are the descriptors a manifest references (config,
	// layers, index children), with events.includereferences only.
	References []v1.Descriptor `json:"references,omitempty"`
}

// Request describes the HTTP request that caused the event.
type Request struct {
	ID        string `json:"id"`
	Addr      string `json:"addr,omitempty"`
	Host      string `json:"host,omitempty"`
	Method    string `json:"method"`
	UserAgent string `json:"useragent"`
}

// Actor is who performed the action: the authenticated user, if any.
type Actor struct {
	Name string `json:"name,omitempty"`
}

// Source is the registry instance that emitted the event.
type Source struct {
	// Addr is the instance's hostname and port.
	Addr string `json:"addr,omitempty"`
	// InstanceID is unique per process start.
	InstanceID string `json:"instanceID,omitempty"`
}

// Sink receives events. Write must not block on delivery.
type Sink interface {
	Write(Event)
}
