package configuration

import (
	"bytes"
	"slices"
	"strings"
	"testing"
)

func TestCheckSupported(t *testing.T) {
	stage1 := Support{StorageDrivers: []string{DriverFilesystem, DriverInMemory}}
	tests := map[string]struct {
		yaml    string
		support Support
		// want are substrings of the error; none means no error.
		want []string
	}{
		"registered driver": {
			yaml:    "version: 0.1\nstorage:\n  filesystem: {}\n",
			support: stage1,
		},
		"driver not registered": {
			yaml:    "version: 0.1\nstorage:\n  gcs: {bucket: b}\n",
			support: stage1,
			want:    []string{"storage.gcs: not supported yet"},
		},
		"driver registered later": {
			yaml:    "version: 0.1\nstorage:\n  gcs: {bucket: b}\n",
			support: Support{StorageDrivers: []string{DriverGCS}},
		},
		"feature by presence": {
			yaml:    "version: 0.1\nstorage:\n  inmemory:\nauth:\n  htpasswd: {realm: r, path: /p}\nproxy:\n  remoteurl: https://r.example.com\n",
			support: Support{StorageDrivers: []string{DriverInMemory}, Features: []string{"proxy"}},
			want:    []string{"auth.htpasswd: not supported yet"},
		},
		"feature by value": {
			yaml:    "version: 0.1\nstorage:\n  inmemory:\n  cache: {blobdescriptor: redis}\nredis: {addrs: [r:6379]}\n",
			support: Support{StorageDrivers: []string{DriverInMemory}, Features: []string{"storage.cache.blobdescriptor.inmemory"}},
			want:    []string{`storage.cache.blobdescriptor: "redis" not supported yet`},
		},
		"default values need no support": {
			yaml:    "version: 0.1\nlog: {formatter: text}\nstorage:\n  inmemory:\nhttp: {net: tcp}\nvalidation: {manifests: {indexes: {platforms: All}}}\n",
			support: stage1,
		},
		"switched off is not used": {
			yaml: "version: 0.1\nstorage:\n  inmemory:\n  maintenance:\n    uploadpurging: {enabled: false}\n" +
				"notifications:\n  endpoints:\n    - {name: a, url: 'https://x.example.com', disabled: true}\n" +
				"middleware:\n  storage:\n    - {name: cloudfront, disabled: true}\n",
			support: stage1,
		},
		"middleware by name": {
			yaml:    "version: 0.1\nstorage:\n  inmemory:\nmiddleware:\n  storage:\n    - name: redirect\n    - name: cloudfront\n",
			support: Support{StorageDrivers: []string{DriverInMemory}, Features: []string{"middleware.storage.redirect"}},
			want:    []string{`middleware.storage[1].name: "cloudfront" not supported yet`},
		},
		"every unsupported key is named": {
			yaml:    "version: 0.1\nstorage:\n  s3: {region: r, bucket: b}\n  delete: {enabled: true}\n  maintenance: {readonly: {enabled: true}}\nhttp:\n  h2c: {enabled: true}\n",
			support: stage1,
			want: []string{
				"storage.s3: not supported yet",
				"storage.delete: not supported yet",
				"storage.maintenance.readonly: not supported yet",
				"http.h2c: not supported yet",
			},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			c, err := ParseWithEnv(strings.NewReader(tc.yaml), nil)
			if err != nil {
				t.Fatal(err)
			}
			err = c.CheckSupported(tc.support)
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("no error, want %q", tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
		})
	}
}

// TestReferenceExampleFullySupported checks that FeatureKeys covers what the
// reference example uses: a daemon listing every key accepts it.
func TestReferenceExampleFullySupported(t *testing.T) {
	c := mustParse(t, "testdata/reference-example.yaml", nil)
	all := Support{StorageDrivers: DriverNames, Features: FeatureKeys()}
	for _, f := range c.Features() {
		if strings.HasPrefix(f.Key, "middleware.") {
			all.Features = append(all.Features, f.Key)
		}
	}
	if err := c.CheckSupported(all); err != nil {
		t.Fatalf("FeatureKeys misses a feature: %v", err)
	}
	keys := FeatureKeys()
	for _, want := range []string{"auth.token", "storage.cache.blobdescriptor.redis", "log.formatter.json", "http.net.unix", "validation.manifests.indexes.list"} {
		if !slices.Contains(keys, want) {
			t.Errorf("FeatureKeys lacks %q", want)
		}
	}
	if slices.Contains(keys, "log.formatter.text") {
		t.Error("the default formatter should need no feature key")
	}
}

// TestImplementedNamesKnownKeys keeps Implemented honest: a misspelt key
// would leave its feature refused while the list claims it.
func TestImplementedNamesKnownKeys(t *testing.T) {
	im := Implemented()
	keys := FeatureKeys()
	for _, f := range im.Features {
		if !slices.Contains(keys, f) && !strings.HasPrefix(f, "middleware.") {
			t.Errorf("Implemented lists %q, which is not a feature key", f)
		}
	}
	for _, d := range im.StorageDrivers {
		if !slices.Contains(DriverNames, d) {
			t.Errorf("Implemented lists storage driver %q, which is not a driver", d)
		}
	}
	// The embedded default is what `registryd serve` runs without a file.
	c, err := ParseWithEnv(bytes.NewReader(DefaultYAML()), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.CheckSupported(im); err != nil {
		t.Errorf("the default configuration is not supported: %v", err)
	}
}
