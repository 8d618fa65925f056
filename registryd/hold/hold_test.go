package hold

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParse(t *testing.T) {
	expires := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	tests := map[string]struct {
		in      string
		want    Hold
		wantErr string
	}{
		"complete": {
			in:   `{"id":"6f1c","holder":"GarbageCollection ns/gc-1","expires":"2026-03-01T12:00:00Z"}`,
			want: Hold{ID: "6f1c", Holder: "GarbageCollection ns/gc-1", Expires: expires},
		},
		"offset and fraction": {
			in:   `{"id":"a","expires":"2026-03-01T13:00:00.5+01:00"}`,
			want: Hold{ID: "a", Expires: expires.Add(500 * time.Millisecond)},
		},
		"unknown fields are ignored": {
			in:   `{"id":"a","expires":"2026-03-01T12:00:00Z","phase":"Collecting"}`,
			want: Hold{ID: "a", Expires: expires},
		},
		"no id":          {in: `{"expires":"2026-03-01T12:00:00Z"}`, wantErr: "id: missing"},
		"empty id":       {in: `{"id":"","expires":"2026-03-01T12:00:00Z"}`, wantErr: "id: empty"},
		"no expires":     {in: `{"id":"a"}`, wantErr: "expires: missing"},
		"bad expires":    {in: `{"id":"a","expires":"tomorrow"}`, wantErr: "expires: want an RFC 3339 time"},
		"number id":      {in: `{"id":7,"expires":"2026-03-01T12:00:00Z"}`, wantErr: "id: want a string"},
		"not json":       {in: `id: a`, wantErr: "not a JSON object"},
		"empty":          {in: ``, wantErr: "not a JSON object"},
		"two values":     {in: `{"id":"a","expires":"2026-03-01T12:00:00Z"} {}`, wantErr: "more than one JSON value"},
		"a JSON array":   {in: `[]`, wantErr: "not a JSON object"},
		"expires number": {in: `{"id":"a","expires":1}`, wantErr: "expires: want a string"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := Parse([]byte(tc.in))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Parse = %+v, %v; want an error containing %q", got, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.ID != tc.want.ID || got.Holder != tc.want.Holder || !got.Expires.Equal(tc.want.Expires) {
				t.Errorf("Parse = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestActive(t *testing.T) {
	h := Hold{ID: "a", Expires: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	if !h.Active(h.Expires.Add(-time.Nanosecond)) || h.Active(h.Expires) || h.Active(h.Expires.Add(time.Second)) {
		t.Error("a hold is active strictly before its expiry")
	}
}

func TestRead(t *testing.T) {
	dir := t.TempDir()
	if _, err := Read(filepath.Join(dir, "absent.json")); !errors.Is(err, ErrNoHold) {
		t.Errorf("missing file: %v, want ErrNoHold", err)
	}
	// The kubelet's layout after the key left the ConfigMap's new version.
	if err := os.Symlink("..data/hold.json", filepath.Join(dir, "hold.json")); err != nil {
		t.Fatal(err)
	}
	if _, err := Read(filepath.Join(dir, "hold.json")); !errors.Is(err, ErrNoHold) {
		t.Errorf("dangling symlink: %v, want ErrNoHold", err)
	}
	p := filepath.Join(dir, "bad.json")
	if err := os.WriteFile(p, []byte(`{"id":"a"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Read(p); err == nil || errors.Is(err, ErrNoHold) || !strings.Contains(err.Error(), p+": expires: missing") {
		t.Errorf("invalid file: %v", err)
	}
}
