package builders

import (
	"errors"
	"slices"
	"testing"

	"github.com/berth-dev/berth/registryd/configuration"
)

// TestCheckSupported runs the rendered config of each golden case through
// the support gate: Render stays schema-level, CheckSupported says whether
// a registryd release runs the result.
func TestCheckSupported(t *testing.T) {
	// stage is a fixed release, so the table does not change each time
	// registryd implements something: filesystem and inmemory storage and
	// everything the golden cases use except proxy, storage.tag and the
	// blob-descriptor cache.
	stage := configuration.Support{
		StorageDrivers: []string{configuration.DriverFilesystem, configuration.DriverInMemory},
		Features: []string{"auth.htpasswd", "auth.token", "http.tls", "http.tls.clientcas", "http.debug",
			"http.debug.prometheus", "http.headers", "notifications.endpoints", "storage.delete", "storage.redirect",
			"storage.maintenance.readonly", "storage.maintenance.uploadpurging", "log.formatter.json", "health.tcp"},
	}
	all := configuration.Support{StorageDrivers: configuration.DriverNames, Features: configuration.FeatureKeys()}
	tests := map[string]struct {
		support configuration.Support
		want    []string // the refused keys; none means supported
	}{
		"filesystem-pvc": {support: stage},
		"htpasswd-users": {support: stage},
		"token":          {support: stage},
		"tls-client-ca":  {support: stage},
		"notifications":  {support: stage},
		"read-only":      {support: stage},
		"s3": {support: stage, want: []string{
			"storage.s3: not supported yet",
			`storage.cache.blobdescriptor: "inmemory" not supported yet`,
		}},
		"azure":        {support: stage, want: []string{"storage.azure: not supported yet"}},
		"gcs":          {support: stage, want: []string{"storage.gcs: not supported yet"}},
		"proxy":        {support: stage, want: []string{"proxy: not supported yet"}},
		"extra-config": {support: stage, want: []string{"storage.tag: not supported yet"}},
		// A release that implements everything runs every case.
		"s3 when implemented":    {support: all},
		"proxy when implemented": {support: all},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			spec, ok := goldenCases[name]
			if !ok {
				spec = goldenCases[name[:len(name)-len(" when implemented")]]
			}
			rendered, err := Render(registry(spec), false)
			if err != nil {
				t.Fatal(err)
			}
			err = CheckSupported(rendered, tt.support)
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			var unsupported *UnsupportedConfigError
			if !errors.As(err, &unsupported) {
				t.Fatalf("err = %v, want an *UnsupportedConfigError", err)
			}
			if !slices.Equal(unsupported.Keys, tt.want) {
				t.Errorf("keys = %q, want %q", unsupported.Keys, tt.want)
			}
		})
	}
}

// TestImplementedRunsTheEverydayCases pins what this release's registryd
// runs among the golden cases, so a change to configuration.Implemented
// that drops one is noticed here as well as in registryd.
func TestImplementedRunsTheEverydayCases(t *testing.T) {
	for _, name := range []string{"filesystem-pvc", "htpasswd-users", "token", "tls-client-ca", "notifications", "read-only", "proxy", "extra-config", "azure", "gcs", "s3"} {
		rendered, err := Render(registry(goldenCases[name]), true)
		if err != nil {
			t.Fatal(err)
		}
		if err := CheckSupported(rendered, configuration.Implemented()); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}
