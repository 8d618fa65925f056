package configuration

import (
	"errors"
	"strings"
	"testing"
)

func TestParseErrors(t *testing.T) {
	const minimal = "version: 0.1\nstorage:\n  inmemory:\n"
	tests := map[string]struct {
		yaml string
		env  []string
		// want are substrings of the error, the key path first.
		want []string
	}{
		"unknown key": {
			yaml: "version: 0.1\nstorage:\n  filesystem:\n    rootdirectry: /x\n",
			want: []string{`storage.filesystem.rootdirectry: unknown key (did you mean "rootdirectory"?) (line 4)`},
		},
		"unknown top-level section": {
			yaml: minimal + "reporting:\n  bugsnag: {}\n",
			want: []string{"reporting: unknown key: reporting was removed in Distribution v3"},
		},
		"unknown storage driver": {
			yaml: "version: 0.1\nstorage:\n  swift: {}\n",
			want: []string{"storage.swift: unknown key: the swift driver was removed"},
		},
		"2.x redis keys": {
			yaml: minimal + "redis:\n  addr: localhost:6379\n  pool:\n    maxidle: 16\n",
			want: []string{"redis.addr: unknown key: Distribution v3 reads redis.addrs", "redis.pool: unknown key"},
		},
		"unknown key in a list element": {
			yaml: minimal + "notifications:\n  endpoints:\n    - name: a\n      url: https://x.example.com\n      retries: 3\n",
			want: []string{"notifications.endpoints[0].retries: unknown key; known keys are backoff, disabled", "(line 8)"},
		},
		"wrong type: bool": {
			yaml: "version: 0.1\nstorage:\n  inmemory:\n  delete:\n    enabled: sometimes\n",
			want: []string{`storage.delete.enabled: expected true or false, got "sometimes" (line 5)`},
		},
		"wrong type: int": {
			yaml: "version: 0.1\nstorage:\n  filesystem:\n    maxthreads: many\n",
			want: []string{`storage.filesystem.maxthreads: expected an integer, got "many"`},
		},
		"wrong type: duration": {
			yaml: minimal + "http:\n  draintimeout: soon\n",
			want: []string{`http.draintimeout: "soon" is not a duration`},
		},
		"wrong type: mapping expected": {
			yaml: minimal + "http: localhost:5000\n",
			want: []string{`http: expected a mapping, got "localhost:5000"`},
		},
		"wrong type: list expected": {
			yaml: minimal + "http:\n  tls:\n    certificate: /c\n    key: /k\n    clientcas: /ca.pem\n",
			want: []string{`http.tls.clientcas: expected a list`},
		},
		"metrics path taken by the debug server": {
			yaml: minimal + "http:\n  debug:\n    addr: :5001\n    prometheus:\n      enabled: true\n      path: /berth/v1/status\n",
			want: []string{`http.debug.prometheus.path: "/berth/v1/status" is served by registryd's debug server already`},
		},
		"duplicate key": {
			yaml: minimal + "http:\n  addr: :1\n  addr: :2\n",
			want: []string{"http.addr: duplicate key (first at line 5) (line 6)"},
		},
		"missing version": {
			yaml: "storage:\n  inmemory:\n",
			want: []string{"version: required key is missing"},
		},
		"unsupported version": {
			yaml: "version: 0.2\nstorage:\n  inmemory:\n",
			want: []string{`version: "0.2" is not supported`},
		},
		"malformed version": {
			yaml: "version: latest\nstorage:\n  inmemory:\n",
			want: []string{`version: "latest" is not a version of the form MAJOR.MINOR`},
		},
		"missing storage": {
			yaml: "version: 0.1\n",
			want: []string{"storage: no storage driver configured"},
		},
		"more than one storage driver": {
			yaml: "version: 0.1\nstorage:\n  filesystem:\n  inmemory:\n",
			want: []string{"storage: more than one storage driver configured (filesystem, inmemory)"},
		},
		"more than one auth provider": {
			yaml: minimal + "auth:\n  silly: {realm: r, service: s}\n  htpasswd: {realm: r, path: /p}\n",
			want: []string{"auth: more than one auth provider configured (silly, htpasswd)"},
		},
		"required keys of present sections": {
			yaml: "version: 0.1\nstorage:\n  s3:\n    bucket: b\n" +
				"auth:\n  token:\n    realm: r\n" +
				"http:\n  tls: {}\n  debug: {}\n" +
				"proxy: {}\n" +
				"middleware:\n  storage:\n    - options: {}\n" +
				"health:\n  tcp:\n    - timeout: 1s\n",
			want: []string{
				"storage.s3.region: required key is missing",
				"auth.token.service: required key is missing",
				"auth.token.issuer: required key is missing",
				"auth.token.rootcertbundle: required key is missing (or set auth.token.jwks)",
				"http.tls.certificate: required key is missing",
				"http.tls.key: required key is missing",
				"http.debug.addr: required key is missing",
				"proxy.remoteurl: required key is missing",
				"middleware.storage[0].name: required key is missing",
				"health.tcp[0].addr: required key is missing",
			},
		},
		"azure credentials": {
			yaml: "version: 0.1\nstorage:\n  azure:\n    accountname: a\n    container: c\n    credentials:\n      type: client_secret\n      clientid: id\n",
			want: []string{"storage.azure.credentials.tenantid: required key is missing", "storage.azure.credentials.secret: required key is missing"},
		},
		"enum: log.formatter": {
			yaml: minimal + "log:\n  formatter: xml\n",
			want: []string{`log.formatter: "xml" is not one of text, json, logstash`},
		},
		"enum: log.level and loglevel": {
			yaml: minimal + "log:\n  level: verbose\nloglevel: trace\n",
			want: []string{`log.level: "verbose" is not one of error, warn, info, debug`, `loglevel: "trace" is not one of`},
		},
		"enum: http.net": {
			yaml: minimal + "http:\n  net: udp\n",
			want: []string{`http.net: "udp" is not one of tcp, unix`},
		},
		"enum: minimumtls": {
			yaml: minimal + "http:\n  tls:\n    certificate: /c\n    key: /k\n    minimumtls: tls1.4\n",
			want: []string{`http.tls.minimumtls: "tls1.4" is not one of tls1.0, tls1.1, tls1.2, tls1.3`},
		},
		"enum: ciphersuites": {
			yaml: minimal + "http:\n  tls:\n    certificate: /c\n    key: /k\n    ciphersuites: [TLS_AES_128_GCM_SHA256, TLS_NULL]\n",
			want: []string{`http.tls.ciphersuites[1]: "TLS_NULL" is not one of TLS_RSA_WITH_RC4_128_SHA`},
		},
		"enum: clientauth": {
			yaml: minimal + "http:\n  tls:\n    certificate: /c\n    key: /k\n    clientauth: maybe\n",
			want: []string{`http.tls.clientauth: "maybe" is not one of`},
		},
		"enum: blobdescriptor": {
			yaml: "version: 0.1\nstorage:\n  inmemory:\n  cache:\n    blobdescriptor: memcached\n",
			want: []string{`storage.cache.blobdescriptor: "memcached" is not one of inmemory, redis`},
		},
		"redis cache without redis": {
			yaml: "version: 0.1\nstorage:\n  inmemory:\n  cache:\n    blobdescriptor: redis\n",
			want: []string{"storage.cache.blobdescriptor: redis needs redis.addrs"},
		},
		"enum: signingalgorithms": {
			yaml: minimal + "auth:\n  token: {realm: r, service: s, issuer: i, jwks: /j, signingalgorithms: [RS256, none]}\n",
			want: []string{`auth.token.signingalgorithms[1]: "none" is not one of EdDSA`},
		},
		"no effect: blobdescriptorsize without the inmemory cache": {
			yaml: minimal + "  cache:\n    blobdescriptor: redis\n    blobdescriptorsize: 10\nredis:\n  addrs: [r:6379]\n",
			want: []string{"storage.cache.blobdescriptorsize: has no effect: it bounds only the inmemory blob descriptor cache"},
		},
		"no effect: blobdescriptorsize without a cache": {
			yaml: minimal + "  cache:\n    blobdescriptorsize: 10\n",
			want: []string{"storage.cache.blobdescriptorsize: has no effect"},
		},
		"no effect: redis without the redis cache": {
			yaml: minimal + "  cache:\n    blobdescriptor: inmemory\nredis:\n  addrs: [r:6379]\n",
			want: []string{"redis: has no effect: only the redis blob descriptor cache uses it"},
		},
		"no effect: delete on a pull-through cache": {
			yaml: minimal + "  delete: {enabled: true}\nproxy: {remoteurl: https://r.example.com}\n",
			want: []string{"storage.delete.enabled: has no effect: a pull-through cache (proxy) refuses deletes"},
		},
		"no effect: validation on a pull-through cache": {
			yaml: minimal + "proxy: {remoteurl: https://r.example.com}\nvalidation: {manifests: {indexes: {platforms: none}}}\n",
			want: []string{"validation: has no effect: a pull-through cache (proxy) refuses pushes"},
		},
		"no effect: redis cluster keys on one address": {
			yaml: minimal + "  cache: {blobdescriptor: redis}\nredis:\n  addrs: [r:6379]\n  maxredirects: 3\n  readonly: true\n  routerandomly: true\n  sentinelpassword: x\n",
			want: []string{
				"redis.maxredirects: has no effect with a single-node client (one addr); only a cluster client reads it",
				"redis.readonly: has no effect with a single-node client",
				"redis.routerandomly: has no effect with a single-node client",
				"redis.sentinelpassword: has no effect with a single-node client (one addr); only a sentinel client reads it",
			},
		},
		"no effect: redis db on a cluster": {
			yaml: minimal + "  cache: {blobdescriptor: redis}\nredis:\n  addrs: [a:6379, b:6379]\n  db: 2\n",
			want: []string{"redis.db: has no effect with a cluster client (several addrs); only a single-node or sentinel client (a cluster has database 0 only) reads it"},
		},
		"no effect: redis maxredirects with a sentinel": {
			yaml: minimal + "  cache: {blobdescriptor: redis}\nredis:\n  addrs: [s:26379]\n  mastername: main\n  maxredirects: 2\n",
			want: []string{"redis.maxredirects: has no effect with a sentinel client (mastername)"},
		},
		"redis protocol": {
			yaml: minimal + "  cache: {blobdescriptor: redis}\nredis:\n  addrs: [r:6379]\n  protocol: 4\n",
			want: []string{"redis.protocol: must be 2 or 3"},
		},
		"no effect: http2.disabled without TLS": {
			yaml: minimal + "http:\n  http2: {disabled: true}\n",
			want: []string{"http.http2.disabled: has no effect without http.tls"},
		},
		"no effect: clientauth without client CAs": {
			yaml: minimal + "http:\n  tls: {certificate: /c, key: /k, clientauth: verify-client-cert-if-given}\n",
			want: []string{"http.tls.clientauth: has no effect without http.tls.clientcas"},
		},
		"no effect: includereferences without endpoints": {
			yaml: minimal + "notifications:\n  events: {includereferences: true}\n",
			want: []string{"notifications.events.includereferences: has no effect without notifications.endpoints"},
		},
		"no effect: redirect.disable on a driver that never redirects": {
			yaml: minimal + "  redirect: {disable: true}\n",
			want: []string{"storage.redirect.disable: has no effect: the inmemory driver never redirects clients"},
		},
		"letsencrypt without hosts": {
			yaml: minimal + "http:\n  tls:\n    letsencrypt: {cachefile: /c, email: a@example.com}\n",
			want: []string{"http.tls.letsencrypt.hosts: required"},
		},
		"enum: index platforms": {
			yaml: minimal + "validation:\n  manifests:\n    indexes:\n      platforms: some\n",
			want: []string{`validation.manifests.indexes.platforms: "some" is not one of all, none, list`},
		},
		"enum: ignore actions": {
			yaml: minimal + "notifications:\n  endpoints:\n    - {name: a, url: 'https://x.example.com', ignore: {actions: [pull, fetch]}}\n",
			want: []string{`notifications.endpoints[0].ignore.actions[1]: "fetch" is not one of pull, push, mount, delete`},
		},
		"ranges and formats": {
			yaml: "version: 0.1\nstorage:\n  s3: {region: r, bucket: b, chunksize: 1024}\n" +
				"http:\n  prefix: /registry\n  host: myregistry:5000\n" +
				"validation:\n  manifests:\n    urls:\n      allow: ['(']\n",
			want: []string{
				"storage.s3.chunksize: must be at least 5242880",
				`http.prefix: "/registry" must start and end with /`,
				`http.host: "myregistry:5000" is not an absolute URL`,
				"validation.manifests.urls.allow[0]: invalid regular expression",
			},
		},
		"several documents": {
			yaml: minimal + "---\nversion: 0.1\n",
			want: []string{"configuration must be a single YAML document"},
		},
		"negative values": {
			yaml: "version: 0.1\nstorage:\n  inmemory:\n  tag: {concurrencylimit: -2}\nhttp:\n  draintimeout: -1s\n",
			want: []string{"http.draintimeout: must not be negative, got -1s", "storage.tag.concurrencylimit: must not be negative, got -2"},
		},
		"not a mapping": {
			yaml: "- version\n",
			want: []string{"configuration must be a mapping of sections"},
		},
		"env: wrong type names the variable": {
			yaml: minimal,
			env:  []string{"REGISTRY_STORAGE_DELETE_ENABLED=sometimes"},
			want: []string{`REGISTRY_STORAGE_DELETE_ENABLED: storage.delete.enabled: expected true or false, got "sometimes"`},
		},
		"env: wrong duration names the variable": {
			yaml: minimal,
			env:  []string{"REGISTRY_NOTIFICATIONS_ENDPOINTS_0_TIMEOUT=fast"},
			want: []string{`REGISTRY_NOTIFICATIONS_ENDPOINTS_0_TIMEOUT: notifications.endpoints[0].timeout: "fast" is not a duration`},
		},
		"env: a value that is not UTF-8 names the variable": {
			yaml: minimal,
			env:  []string{"REGISTRY_HTTP_ADDR=\xff"},
			want: []string{"REGISTRY_HTTP_ADDR: http.addr: value is not valid UTF-8"},
		},
		"env: unknown key names the variable": {
			yaml: minimal,
			env:  []string{"REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTRY=/x"},
			want: []string{"REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTRY: no such configuration key storage.filesystem.rootdirectry"},
		},
		"env: list index not a number": {
			yaml: minimal,
			env:  []string{"REGISTRY_NOTIFICATIONS_ENDPOINTS_FIRST_URL=x"},
			want: []string{`REGISTRY_NOTIFICATIONS_ENDPOINTS_FIRST_URL: notifications.endpoints: list index "FIRST" is not a number`},
		},
		"env: list index out of range": {
			yaml: minimal,
			env:  []string{"REGISTRY_NOTIFICATIONS_ENDPOINTS_3_URL=https://x.example.com"},
			want: []string{"REGISTRY_NOTIFICATIONS_ENDPOINTS_3_URL: notifications.endpoints: list index 3 out of range"},
		},
		"env: validation error names the variable": {
			yaml: minimal,
			env:  []string{"REGISTRY_HTTP_TLS={certificate: /c, key: /k}", "REGISTRY_HTTP_TLS_MINIMUMTLS=tls1.4"},
			want: []string{`REGISTRY_HTTP_TLS_MINIMUMTLS: http.tls.minimumtls: "tls1.4" is not one of`},
		},
		"env: a second driver": {
			yaml: "version: 0.1\nstorage:\n  filesystem: {}\n",
			env:  []string{"REGISTRY_STORAGE_S3_ACCESSKEY=AKIA"},
			want: []string{"storage: more than one storage driver configured (filesystem, s3)"},
		},
		"env: invalid YAML value": {
			yaml: minimal,
			env:  []string{"REGISTRY_HTTP_HEADERS={unclosed"},
			want: []string{"REGISTRY_HTTP_HEADERS: http.headers: value is not valid YAML"},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := ParseWithEnv(strings.NewReader(tc.yaml), tc.env)
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

func TestErrorType(t *testing.T) {
	_, err := ParseWithEnv(strings.NewReader("version: 0.1\nstorage:\n  inmemory:\nhttp:\n  net: udp\n"), nil)
	var ce *Error
	if !errors.As(err, &ce) {
		t.Fatalf("error %v is not a *configuration.Error", err)
	}
	if ce.Path != "http.net" {
		t.Errorf("Path = %q, want http.net", ce.Path)
	}
}
