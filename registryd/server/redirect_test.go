package server

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/berth-dev/berth/registryd/configuration"
	"github.com/berth-dev/berth/registryd/storage/driver"
	"github.com/berth-dev/berth/registryd/storage/driver/inmemory"
)

// TestRedirectMiddlewareOptions: the redirect storage middleware takes one
// option, baseurl, an http or https URL; anything else stops the start
// with the key named. A disabled entry is ignored, and redirect.disable
// wins over the middleware.
func TestRedirectMiddlewareOptions(t *testing.T) {
	const blob = "/docker/registry/v2/blobs/sha256/ab/abcd/data"
	tests := map[string]struct {
		disable bool
		entry   configuration.MiddlewareEntry
		want    string // error substring, or the GET redirect when no error
	}{
		"baseurl":          {entry: configuration.MiddlewareEntry{Name: "redirect", Options: map[string]any{"baseurl": "https://cdn.example.com/r/"}}, want: "https://cdn.example.com/r" + blob},
		"disabled entry":   {entry: configuration.MiddlewareEntry{Name: "redirect", Disabled: true}, want: ""},
		"redirect.disable": {disable: true, entry: configuration.MiddlewareEntry{Name: "redirect", Options: map[string]any{"baseurl": "https://cdn.example.com/"}}, want: ""},
		"no baseurl":       {entry: configuration.MiddlewareEntry{Name: "redirect"}, want: "middleware.storage[0].options.baseurl: required key is missing"},
		"not a URL":        {entry: configuration.MiddlewareEntry{Name: "redirect", Options: map[string]any{"baseurl": "cdn.example.com"}}, want: `middleware.storage[0].options.baseurl: "cdn.example.com" is not an http or https URL`},
		"not a string":     {entry: configuration.MiddlewareEntry{Name: "redirect", Options: map[string]any{"baseurl": 3}}, want: "middleware.storage[0].options.baseurl: want a URL string"},
		"unknown option":   {entry: configuration.MiddlewareEntry{Name: "redirect", Options: map[string]any{"baseurl": "https://cdn.example.com/", "duration": "20m"}}, want: "middleware.storage[0].options.duration: unknown option"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			cfg := &configuration.Configuration{}
			cfg.Storage.Redirect.Disable = tt.disable
			cfg.Middleware.Storage = []configuration.MiddlewareEntry{tt.entry}
			d, err := withRedirects(cfg, inmemory.New())
			if strings.Contains(tt.want, ": ") && !strings.HasPrefix(tt.want, "https://") {
				if err == nil || !strings.Contains(err.Error(), tt.want) {
					t.Fatalf("withRedirects = %v, want an error containing %q", err, tt.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, method := range []string{http.MethodGet, http.MethodHead} {
				u, err := d.RedirectURL(context.Background(), method, blob)
				if err != nil || u != tt.want {
					t.Errorf("RedirectURL(%s) = %q, %v; want %q", method, u, err, tt.want)
				}
			}
			if u, _ := d.RedirectURL(context.Background(), http.MethodPut, blob); u != "" {
				t.Errorf("RedirectURL(PUT) = %q, want none", u)
			}
			// The filesystem driver's batched writes (a manifest PUT's
			// fsyncs overlapped) stay reachable through the wrapper.
			if _, ok := d.(driver.BatchPutter); !ok {
				t.Errorf("%T hides driver.BatchPutter", d)
			}
		})
	}
}
