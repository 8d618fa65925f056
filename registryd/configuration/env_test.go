package configuration

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

const envBase = `
version: 0.1
log:
  level: info
  fields:
    service: registry
storage:
  filesystem:
    rootdirectory: /var/lib/registry
  delete:
    enabled: true
http:
  addr: :5000
  headers:
    X-Content-Type-Options: [nosniff]
notifications:
  endpoints:
    - name: first
      url: https://one.example.com/events
`

func TestEnvOverrides(t *testing.T) {
	tests := map[string]struct {
		env   []string
		check func(t *testing.T, c *Configuration)
	}{
		"nested string": {
			env: []string{"REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY=/somewhere"},
			check: func(t *testing.T, c *Configuration) {
				equal(t, c.Storage.Filesystem.RootDirectory, "/somewhere")
			},
		},
		"new key in a struct": {
			env: []string{"REGISTRY_HTTP_SECRET=s3cr3t"},
			check: func(t *testing.T, c *Configuration) {
				equal(t, c.HTTP.Secret, "s3cr3t")
			},
		},
		"bool creates parent sections": {
			env: []string{"REGISTRY_STORAGE_MAINTENANCE_READONLY_ENABLED=true"},
			check: func(t *testing.T, c *Configuration) {
				equal(t, c.Storage.Maintenance.ReadOnly.Enabled, true)
			},
		},
		"case-insensitive segments": {
			env: []string{"REGISTRY_log_Level=debug", "REGISTRY_Http_Addr=:6000"},
			check: func(t *testing.T, c *Configuration) {
				equal(t, c.Log.Level, Loglevel("debug"))
				equal(t, c.HTTP.Addr, ":6000")
			},
		},
		"duration and int": {
			env: []string{"REGISTRY_HTTP_DRAINTIMEOUT=30s", "REGISTRY_STORAGE_TAG_CONCURRENCYLIMIT=4"},
			check: func(t *testing.T, c *Configuration) {
				equal(t, c.HTTP.DrainTimeout, 30*time.Second)
				equal(t, c.Storage.Tag.ConcurrencyLimit, 4)
			},
		},
		"list element by index": {
			env: []string{"REGISTRY_NOTIFICATIONS_ENDPOINTS_0_URL=https://two.example.com/events"},
			check: func(t *testing.T, c *Configuration) {
				equal(t, c.Notifications.Endpoints[0].URL, "https://two.example.com/events")
				equal(t, c.Notifications.Endpoints[0].Name, "first")
			},
		},
		"list append at len": {
			env: []string{
				"REGISTRY_NOTIFICATIONS_ENDPOINTS_1_NAME=second",
				"REGISTRY_NOTIFICATIONS_ENDPOINTS_1_URL=https://three.example.com/",
			},
			check: func(t *testing.T, c *Configuration) {
				equal(t, len(c.Notifications.Endpoints), 2)
				equal(t, c.Notifications.Endpoints[1].Name, "second")
			},
		},
		"whole list as YAML": {
			env: []string{"REGISTRY_HTTP_TLS_CLIENTCAS=[/a.pem, /b.pem]", "REGISTRY_HTTP_TLS_CERTIFICATE=/c", "REGISTRY_HTTP_TLS_KEY=/k"},
			check: func(t *testing.T, c *Configuration) {
				equal(t, c.HTTP.TLS.ClientCAs, []string{"/a.pem", "/b.pem"})
			},
		},
		"map section accepts new keys, lower-cased": {
			env: []string{"REGISTRY_LOG_FIELDS_ENVIRONMENT=staging", "REGISTRY_HTTP_HEADERS_X-FRAME-OPTIONS=[DENY]"},
			check: func(t *testing.T, c *Configuration) {
				equal(t, c.Log.Fields["environment"], "staging")
				equal(t, c.Log.Fields["service"], "registry")
				equal(t, c.HTTP.Headers["x-frame-options"], []string{"DENY"})
			},
		},
		"map key matched case-insensitively": {
			env: []string{"REGISTRY_HTTP_HEADERS_X-CONTENT-TYPE-OPTIONS=[nosniff, other]"},
			check: func(t *testing.T, c *Configuration) {
				equal(t, c.HTTP.Headers, Header{"X-Content-Type-Options": {"nosniff", "other"}})
			},
		},
		"driver switch replaces the storage section": {
			env: []string{"REGISTRY_STORAGE=inmemory"},
			check: func(t *testing.T, c *Configuration) {
				equal(t, c.Storage.Driver(), DriverInMemory)
				equal(t, c.Storage.Filesystem == nil, true)
				equal(t, c.Storage.Delete.Enabled, false) // the whole section was replaced
			},
		},
		"parent replaced before children apply": {
			env: []string{
				// Listed child first: sorting applies the parent first.
				"REGISTRY_STORAGE_S3_BUCKET=b",
				"REGISTRY_STORAGE_DELETE_ENABLED=true",
				"REGISTRY_STORAGE={s3: {region: us-east-1}}",
				"REGISTRY_STORAGE_S3_ACCESSKEY=AKIA",
			},
			check: func(t *testing.T, c *Configuration) {
				equal(t, c.Storage.Driver(), DriverS3)
				equal(t, *c.Storage.S3, S3{Region: "us-east-1", Bucket: "b", AccessKey: "AKIA"})
				equal(t, c.Storage.Delete.Enabled, true)
			},
		},
		"section replaced as YAML": {
			env: []string{"REGISTRY_STORAGE_MAINTENANCE_READONLY={enabled: true}"},
			check: func(t *testing.T, c *Configuration) {
				equal(t, c.Storage.Maintenance.ReadOnly.Enabled, true)
			},
		},
		"underscore in key spans segments": {
			env: []string{
				"REGISTRY_STORAGE={azure: {accountname: a, accountkey: k, container: c}}",
				"REGISTRY_STORAGE_AZURE_COPY_STATUS_POLL_MAX_RETRY=-1",
			},
			check: func(t *testing.T, c *Configuration) {
				equal(t, *c.Storage.Azure.CopyStatusPollMaxRetry, -1)
			},
		},
		"string password that is not a YAML scalar stays verbatim": {
			// A pull-through cache refuses deletes: delete.enabled goes.
			env: []string{"REGISTRY_PROXY_REMOTEURL=https://r.example.com", "REGISTRY_PROXY_PASSWORD=[p: w]#x", "REGISTRY_STORAGE_DELETE_ENABLED=false"},
			check: func(t *testing.T, c *Configuration) {
				equal(t, c.Proxy.Password, "[p: w]#x")
			},
		},
		"numeric-looking string": {
			env: []string{"REGISTRY_HTTP_SECRET=0123"},
			check: func(t *testing.T, c *Configuration) {
				equal(t, c.HTTP.Secret, "0123")
			},
		},
		"middleware options free-form": {
			env: []string{"REGISTRY_MIDDLEWARE_STORAGE_0_NAME=redirect", "REGISTRY_MIDDLEWARE_STORAGE_0_OPTIONS_BASEURL=https://cdn.example.com/"},
			check: func(t *testing.T, c *Configuration) {
				equal(t, c.Middleware.Storage[0].Options["baseurl"], "https://cdn.example.com/")
			},
		},
		"kubernetes service links and the config path are skipped": {
			env: []string{
				"REGISTRY_SERVICE_HOST=10.0.0.1", "REGISTRY_SERVICE_PORT=5000", "REGISTRY_PORT=tcp://10.0.0.1:5000",
				"REGISTRY_PORT_5000_TCP_ADDR=10.0.0.1", "REGISTRY_HTTP_SERVICE_PORT_HTTP=80",
				"REGISTRY_CONFIGURATION_PATH=/etc/distribution/config.yml",
				"OTHER_VAR=1", "REGISTRY_=x",
			},
			check: func(t *testing.T, c *Configuration) {
				equal(t, c.HTTP.Addr, ":5000")
			},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			c, err := ParseWithEnv(strings.NewReader(envBase), tc.env)
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			tc.check(t, c)
			assertRoundTrip(t, c)
		})
	}
}

func TestEnvOnlyConfiguration(t *testing.T) {
	c, err := ParseWithEnv(strings.NewReader(""), []string{"REGISTRY_VERSION=0.1", "REGISTRY_STORAGE=inmemory"})
	if err != nil {
		t.Fatal(err)
	}
	equal(t, c.Storage.Driver(), DriverInMemory)
}

func TestEnvWarn(t *testing.T) {
	var warnings []string
	_, err := ParseWithOptions(strings.NewReader(envBase), Options{
		Env:  []string{"REGISTRY_SERVICE_HOST=10.0.0.1"},
		Warn: func(msg string) { warnings = append(warnings, msg) },
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(warnings) != 1 || !strings.Contains(warnings[0], "REGISTRY_SERVICE_HOST") {
		t.Errorf("warnings = %q", warnings)
	}
}

func equal[T any](t *testing.T, got, want T) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %#v, want %#v", got, want)
	}
}

func TestParseReadsProcessEnvironment(t *testing.T) {
	t.Setenv("REGISTRY_HTTP_ADDR", ":7000")
	c, err := Parse(strings.NewReader(envBase))
	if err != nil {
		t.Fatal(err)
	}
	equal(t, c.HTTP.Addr, ":7000")
}

func TestAnchorsAndAliases(t *testing.T) {
	const doc = `
version: 0.1
storage:
  inmemory:
health:
  tcp:
    - &check {addr: "a:1", timeout: 3s, interval: 10s}
    - *check
http:
  headers: &h
    X-A: [a]
`
	c, err := ParseWithEnv(strings.NewReader(doc), []string{"REGISTRY_HEALTH_TCP_1_ADDR=b:2"})
	if err != nil {
		t.Fatal(err)
	}
	equal(t, c.Health.TCP[0].Addr, "a:1")
	equal(t, c.Health.TCP[1].Addr, "b:2")
	equal(t, c.Health.TCP[1].Timeout, 3*time.Second)
	equal(t, c.HTTP.Headers["X-A"], []string{"a"})
}
