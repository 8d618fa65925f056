package server

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/berth-dev/berth/registryd/configuration"
)

// TestHTTPPrefixAndHost checks that http.prefix and http.host from a
// config.yml reach the handler.
func TestHTTPPrefixAndHost(t *testing.T) {
	tests := map[string]struct {
		http         string
		path         string
		wantCode     int
		wantLocation string // prefix of the Location header
	}{
		"prefix serves under it": {
			http:         "prefix: /registry/",
			path:         "/registry/v2/r/blobs/uploads/",
			wantCode:     http.StatusAccepted,
			wantLocation: "http://example.com/registry/v2/r/blobs/uploads/",
		},
		"prefix hides the root": {
			http:     "prefix: /registry/",
			path:     "/v2/r/blobs/uploads/",
			wantCode: http.StatusNotFound,
		},
		"host sets scheme and host": {
			http:         "host: https://registry.example.org:8443",
			path:         "/v2/r/blobs/uploads/",
			wantCode:     http.StatusAccepted,
			wantLocation: "https://registry.example.org:8443/v2/r/blobs/uploads/",
		},
		"host path with prefix": {
			http:         "{prefix: /registry/, host: \"https://registry.example.org/registry/\", relativeurls: true}",
			path:         "/registry/v2/r/blobs/uploads/",
			wantCode:     http.StatusAccepted,
			wantLocation: "https://registry.example.org/registry/v2/r/blobs/uploads/",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			httpSection := tc.http
			if !strings.HasPrefix(httpSection, "{") {
				httpSection = "{" + httpSection + "}"
			}
			yml := "version: 0.1\nstorage: {inmemory: {}}\nhttp: " + httpSection + "\n"
			cfg, err := configuration.Parse(strings.NewReader(yml))
			if err != nil {
				t.Fatal(err)
			}
			srv, err := New(cfg, Options{Logger: slog.New(slog.DiscardHandler), AccessLog: io.Discard})
			if err != nil {
				t.Fatal(err)
			}
			rec := httptest.NewRecorder()
			srv.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodPost, tc.path, nil))
			if rec.Code != tc.wantCode {
				t.Fatalf("POST %s = %d, want %d: %s", tc.path, rec.Code, tc.wantCode, rec.Body)
			}
			if loc := rec.Header().Get("Location"); !strings.HasPrefix(loc, tc.wantLocation) {
				t.Errorf("Location = %q, want prefix %q", loc, tc.wantLocation)
			}
		})
	}
}
