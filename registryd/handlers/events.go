package handlers

import (
	"net/http"
	"time"

	"github.com/google/uuid"
	"github.com/opencontainers/go-digest"

	"github.com/berth-dev/berth/registryd/notifications"
	"github.com/berth-dev/berth/registryd/storage"
)

// Events. With WithEventSink the handler reports what it did, after it
// succeeded, in Distribution's notification events:
//
//   - push: a manifest stored (with the tag when pushed by tag), a blob
//     committed from an upload (monolithic or chunked);
//   - mount: a blob linked from another repository (fromRepository set);
//   - pull: a manifest or blob served, on GET and on HEAD, as Distribution
//     does (a 304 Not Modified manifest answer counts as a pull too);
//   - delete: a manifest by digest, a tag (target carries repository and
//     tag only), a blob unlinked from a repository.
//
// Blob targets have media type notifications.BlobMediaType. Manifest
// targets carry the stored media type, digest and size, and the
// descriptors the manifest references when includeReferences is set.

// EventOptions complete the events the handler emits.
type EventOptions struct {
	// IncludeReferences adds a manifest's references to its events
	// (notifications.events.includereferences).
	IncludeReferences bool
	// Source identifies this registry instance.
	Source notifications.Source
	// Actor returns the name of the user behind a request ("" when
	// anonymous). Nil means events carry no actor.
	Actor func(r *http.Request) string
}

// eventConfig is the handler's event state; sink is nil when events are off.
type eventConfig struct {
	sink notifications.Sink
	EventOptions
}

// WithEventSink makes the handler write an event to sink for every
// manifest and blob push, pull, mount and delete.
func WithEventSink(sink notifications.Sink, o EventOptions) Option {
	return func(opts *options) { opts.events = eventConfig{sink: sink, EventOptions: o} }
}

// emit writes an event for action on target, completing it from r.
func (h *handler) emit(r *http.Request, action string, target notifications.Target) {
	ev := h.events
	if ev.sink == nil {
		return
	}
	reqID := r.Header.Get("X-Request-Id")
	if reqID == "" {
		reqID = uuid.NewString()
	}
	e := notifications.Event{
		ID:        uuid.NewString(),
		Timestamp: time.Now().UTC(),
		Action:    action,
		Target:    target,
		Request: notifications.Request{
			ID:        reqID,
			Addr:      r.RemoteAddr,
			Host:      r.Host,
			Method:    r.Method,
			UserAgent: r.UserAgent(),
		},
		Source: ev.Source,
	}
	if ev.Actor != nil {
		e.Actor.Name = ev.Actor(r)
	}
	ev.sink.Write(e)
}

// emitBlob reports a blob action; from is the source repository of a mount.
func (h *handler) emitBlob(r *http.Request, action, name, from string, desc storage.Descriptor) {
	if h.events.sink == nil {
		return
	}
	h.emit(r, action, notifications.Target{
		MediaType:      notifications.BlobMediaType,
		Digest:         desc.Digest,
		Size:           desc.Size,
		Length:         desc.Size,
		Repository:     name,
		FromRepository: from,
		URL:            h.absURL(r, "/v2/"+name+"/blobs/"+desc.Digest.String()),
	})
}

// emitManifest reports a manifest push or pull.
func (h *handler) emitManifest(r *http.Request, action, name, tag string, d digest.Digest, mediaType string, content []byte) {
	if h.events.sink == nil {
		return
	}
	t := notifications.Target{
		MediaType:  mediaType,
		Digest:     d,
		Size:       int64(len(content)),
		Length:     int64(len(content)),
		Repository: name,
		URL:        h.absURL(r, "/v2/"+name+"/manifests/"+d.String()),
		Tag:        tag,
	}
	if h.events.IncludeReferences {
		if m, _, err := storage.ParseManifest(content, mediaType); err == nil {
			t.References = m.References()
		}
	}
	h.emit(r, action, t)
}

// emitDelete reports the deletion of a manifest or blob by digest, or of a
// tag.
func (h *handler) emitDelete(r *http.Request, name, tag string, d digest.Digest) {
	h.emit(r, notifications.ActionDelete, notifications.Target{Repository: name, Tag: tag, Digest: d})
}
