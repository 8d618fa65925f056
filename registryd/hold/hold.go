// Package hold reads the read-only hold: how the operator makes every
// registryd replica of a Registry refuse writes for the length of one
// garbage-collection run, without touching the user's config.yml.
//
// A hold is a small JSON file, hold.json, carried in the Registry's
// ConfigMap beside config.yml:
//
//	{"id": "<the GC run's UID>", "holder": "GarbageCollection ns/name", "expires": "2026-03-01T12:00:00Z"}
//
// id and expires are required; holder is for people reading logs. Unknown
// fields are ignored, so an operator newer than the daemon can add some.
// A hold is active until expires; after that it is no hold at all, so a
// manager that dies mid-run never leaves a registry read-only past the
// run's timeout. `registryd serve --hold-file` refuses writes while the
// file holds an active hold (package server); `registryd garbage-collect
// --hold-file --hold-id` accepts an active hold with its run's id as proof
// that the registries are read-only, and stops deleting ExpiryMargin
// before the hold expires.
package hold

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"
)

// ExpiryMargin is how long before a hold expires the collector stops
// starting deletions. The hold expires on each registryd's clock, in other
// pods and possibly on other nodes, while the collector judges the
// deadline on its own: the margin covers the skew between node clocks
// (NTP keeps it well under a second), the last deletion already started
// when the deadline passes (a Delete of a large blob directory or an
// object-store round trip), and the file watch's debounce, so that no
// replica accepts a write while a deletion is still running.
const ExpiryMargin = 10 * time.Second

// Hold is a read-only hold.
type Hold struct {
	// ID identifies the run holding the registry (the GC run's UID).
	ID string `json:"id"`
	// Holder names the holder for people: "GarbageCollection ns/name".
	Holder string `json:"holder,omitempty"`
	// Expires is when the hold ends by itself.
	Expires time.Time `json:"expires"`
}

// Marshal encodes h as a hold file (expires in UTC, RFC 3339).
func (h Hold) Marshal() ([]byte, error) {
	return json.Marshal(struct {
		ID      string `json:"id"`
		Holder  string `json:"holder,omitempty"`
		Expires string `json:"expires"`
	}{h.ID, h.Holder, h.Expires.UTC().Format(time.RFC3339Nano)})
}

// Active reports whether h still holds at now.
func (h Hold) Active(now time.Time) bool { return now.Before(h.Expires) }

// ErrNoHold is returned by Read when the file does not exist.
var ErrNoHold = errors.New("no hold file")

// Parse decodes a hold file. The error names the field at fault.
func Parse(data []byte) (Hold, error) {
	var raw struct {
		ID      *string `json:"id"`
		Holder  string  `json:"holder"`
		Expires *string `json:"expires"`
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&raw); err != nil {
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) && typeErr.Field != "" {
			return Hold{}, fmt.Errorf("%s: want a %s, got a JSON %s", typeErr.Field, typeErr.Type, typeErr.Value)
		}
		return Hold{}, fmt.Errorf("not a JSON object: %w", err)
	}
	if dec.More() {
		return Hold{}, errors.New("more than one JSON value")
	}
	h := Hold{Holder: raw.Holder}
	switch {
	case raw.ID == nil:
		return Hold{}, errors.New("id: missing")
	case *raw.ID == "":
		return Hold{}, errors.New("id: empty")
	case raw.Expires == nil:
		return Hold{}, errors.New("expires: missing")
	}
	h.ID = *raw.ID
	t, err := time.Parse(time.RFC3339, *raw.Expires)
	if err != nil {
		return Hold{}, fmt.Errorf("expires: want an RFC 3339 time such as 2026-03-01T12:00:00Z, got %q", *raw.Expires)
	}
	h.Expires = t
	return h, nil
}

// Read reads and parses the hold file at path. A file that does not exist
// (a dangling symlink included: the kubelet removes a key's link when the
// key leaves the ConfigMap) returns ErrNoHold.
func Read(path string) (Hold, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return Hold{}, ErrNoHold
	}
	if err != nil {
		return Hold{}, err
	}
	h, err := Parse(data)
	if err != nil {
		return Hold{}, fmt.Errorf("%s: %w", path, err)
	}
	return h, nil
}
