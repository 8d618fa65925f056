package configuration

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the current output")

// TestGolden parses each testdata/*.yaml (no environment), marshals the
// result and compares it with the .golden file beside it. The golden output
// must itself parse back to the same configuration.
func TestGolden(t *testing.T) {
	inputs, err := filepath.Glob("testdata/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(inputs) == 0 {
		t.Fatal("no testdata/*.yaml")
	}
	for _, in := range inputs {
		name := strings.TrimSuffix(filepath.Base(in), ".yaml")
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(in)
			if err != nil {
				t.Fatal(err)
			}
			c, err := ParseWithEnv(bytes.NewReader(data), nil)
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			got, err := Marshal(c)
			if err != nil {
				t.Fatalf("marshal: %v", err)
			}
			golden := strings.TrimSuffix(in, ".yaml") + ".golden"
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("output differs from %s (run go test -update to accept):\n%s", golden, got)
			}
			assertRoundTrip(t, c)
		})
	}
}

func assertRoundTrip(t *testing.T, c *Configuration) {
	t.Helper()
	out, err := Marshal(c)
	if err != nil {
		t.Fatalf("marshal: %v", err)
	}
	again, err := ParseWithEnv(bytes.NewReader(out), nil)
	if err != nil {
		t.Fatalf("parsing marshalled output: %v\n%s", err, out)
	}
	if !reflect.DeepEqual(c, again) {
		t.Errorf("round trip changed the configuration:\nfirst:  %+v\nsecond: %+v", c, again)
	}
	out2, err := Marshal(again)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out, out2) {
		t.Errorf("marshal is not stable:\n%s\n---\n%s", out, out2)
	}
}

func TestReferenceExampleFields(t *testing.T) {
	c := mustParse(t, "testdata/reference-example.yaml", nil)
	tests := map[string]struct {
		got, want any
	}{
		"s3 region":             {c.Storage.S3.Region, "us-west-1"},
		"s3 secure":             {*c.Storage.S3.Secure, true},
		"s3 chunksize":          {c.Storage.S3.ChunkSize, int64(5242880)},
		"purging age":           {c.Storage.Maintenance.UploadPurging.Age, 168 * time.Hour},
		"blobdescriptor":        {c.Storage.Cache.Kind(), "redis"},
		"blobdescriptorsize":    {*mustParse(t, "testdata/driver-inmemory.yaml", nil).Storage.Cache.BlobDescriptorSize, 10000},
		"token algorithms":      {c.Auth.Token.SigningAlgorithms, []string{"EdDSA", "HS256"}},
		"cloudfront options":    {c.Middleware.Storage[0].Options["duration"], "3000s"},
		"storage middleware":    {len(c.Middleware.Storage), 2},
		"draintimeout":          {c.HTTP.DrainTimeout, time.Minute},
		"headers":               {c.HTTP.Headers["X-Content-Type-Options"], []string{"nosniff"}},
		"letsencrypt hosts":     {c.HTTP.TLS.LetsEncrypt.Hosts, []string{"myregistryaddress.org"}},
		"endpoint backoff":      {c.Notifications.Endpoints[0].Backoff, time.Second},
		"ignore actions":        {c.Notifications.Endpoints[0].Ignore.Actions, []string{"pull"}},
		"redis connmaxidletime": {c.Redis.ConnMaxIdleTime, 300 * time.Second},
		"redis clientcas":       {c.Redis.TLS.ClientCAs, []string{"/path/to/ca.pem"}},
		"health http status":    {c.Health.HTTP[0].StatusCode, 200},
		"proxy ttl":             {*mustParse(t, "testdata/proxy.yaml", nil).Proxy.TTL, 168 * time.Hour},
		"platforms":             {c.Validation.Manifests.Indexes.Platforms, "List"},
		"log fields":            {c.Log.Fields["environment"], "staging"},
		"deprecated loglevel":   {c.Loglevel, Loglevel("debug")},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if !reflect.DeepEqual(tc.got, tc.want) {
				t.Errorf("got %#v, want %#v", tc.got, tc.want)
			}
		})
	}
}

func mustParse(t *testing.T, path string, env []string) *Configuration {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	c, err := ParseWithEnv(bytes.NewReader(data), env)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestDefault(t *testing.T) {
	c := Default()
	if err := c.Validate(); err != nil {
		t.Fatalf("default does not validate: %v", err)
	}
	if got := c.Storage.Driver(); got != DriverFilesystem {
		t.Errorf("driver = %q, want filesystem", got)
	}
	if c.Storage.Filesystem.RootDirectory != DefaultRootDirectory {
		t.Errorf("rootdirectory = %q", c.Storage.Filesystem.RootDirectory)
	}
	if c.HTTP.Addr != ":5000" {
		t.Errorf("addr = %q", c.HTTP.Addr)
	}
	if err := c.CheckSupported(Support{StorageDrivers: []string{DriverFilesystem, DriverInMemory}, Features: []string{"http.headers"}}); err != nil {
		t.Errorf("default needs more than filesystem storage and headers: %v", err)
	}
	assertRoundTrip(t, c)

	// The root directory is overridable from the environment.
	c, err := ParseWithEnv(bytes.NewReader(DefaultYAML()), []string{"REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY=/data"})
	if err != nil {
		t.Fatal(err)
	}
	if c.Storage.Filesystem.RootDirectory != "/data" {
		t.Errorf("rootdirectory = %q, want /data", c.Storage.Filesystem.RootDirectory)
	}
}

// TestMarshalFilled checks the operator's direction: structs filled in Go,
// rendered, parsed back.
func TestMarshalFilled(t *testing.T) {
	enabled := false
	ttl := 2 * time.Hour
	c := &Configuration{
		Version: CurrentVersion,
		Storage: Storage{
			S3:          &S3{Region: "eu-west-1", Bucket: "b"},
			Maintenance: Maintenance{UploadPurging: &UploadPurging{Enabled: &enabled}, ReadOnly: ReadOnly{Enabled: true}},
		},
		Auth:  Auth{Htpasswd: &HtpasswdAuth{Realm: "r", Path: "/auth/htpasswd"}},
		HTTP:  HTTP{Addr: ":5000", Headers: Header{"X-Content-Type-Options": {"nosniff"}}},
		Proxy: &Proxy{RemoteURL: "https://mirror.example.com", TTL: &ttl},
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	out, err := Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"version: \"0.1\"", "readonly:\n      enabled: true", "enabled: false", "ttl: 2h0m0s"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(string(out), "secret") {
		t.Errorf("output invents a secret:\n%s", out)
	}
	assertRoundTrip(t, c)
}
