// Package configuration is registryd's config.yml: the typed schema of the
// CNCF Distribution configuration, format version 0.1, as documented by the
// Distribution v3 configuration reference, with parsing, environment
// overrides, validation, rendering, and a gate for features registryd does
// not implement yet.
//
// One schema, two users: the operator fills these structs and renders them
// with Marshal into a ConfigMap; registryd reads that file with Parse. The
// package therefore depends on nothing heavy (no storage SDKs, no HTTP
// server; only go.yaml.in/yaml/v3 and the standard library, net/url and
// regexp for validation).
//
// # Schema
//
// Every section and key of the reference is a typed field: storage driver
// parameters are structs per driver (filesystem, inmemory, azure, gcs, s3),
// not an opaque map, so that a misspelt parameter is an error. Free-form
// values stay free-form where the reference says so: log.fields and
// middleware options are map[string]any; HTTP headers are Header
// (map[string][]string, net/http.Header without importing net/http).
//
// Durations are time.Duration and accept Go duration strings ("5s",
// "168h") or an integer number of nanoseconds, as the reference allows.
// Marshal writes them in Go's canonical form ("168h0m0s").
//
// Keys whose zero value is not their default are pointers so that an
// explicit zero survives a round trip: storage.maintenance.uploadpurging
// .enabled (default true), storage.s3.secure and v4auth (default true),
// storage.cache.blobdescriptorsize (0 means unbounded),
// storage.azure.copy_status_poll_max_retry (-1 disables), proxy.ttl (0
// never revalidates) and proxy.exec.lifetime. Sections whose children become
// required once the section is present (a storage driver, an auth provider,
// http.tls, http.debug, redis, proxy, ...) are pointers too; a section
// written without a value (`inmemory:`) is present and empty.
//
// Parse fills no defaults: what was written is what Marshal renders. The
// reference's defaults are exported as constants (DefaultRootDirectory,
// DefaultUploadPurgingAge, DefaultProxyTTL, ...) and documented on the
// fields, for the daemon to apply.
//
// Keys absent from the v3 reference are errors, including ones Distribution
// v3 itself silently ignores: the 2.x redis.addr and redis.pool (the v3 keys
// are go-redis UniversalOptions names: addrs, poolsize, maxidleconns,
// connmaxidletime, ...), reporting, compatibility, and the removed swift and
// oss drivers; the message says what replaced them. Deprecated keys the
// reference still documents are read: loglevel (use log.level),
// storage.cache.layerinfo (use blobdescriptor), validation.enabled (use
// disabled). redis.tls.enabled appears in the reference's example and is
// kept; TLS to redis is on when it is true or a certificate or CA is set.
//
// # Errors
//
// The decoder walks the YAML node tree itself rather than using yaml.v3's
// KnownFields, so every error names its key path and line:
//
//	storage.filesystem.rootdirectry: unknown key (did you mean "rootdirectory"?) (line 4)
//	http.tls.minimumtls: "tls1.4" is not one of tls1.0, tls1.1, tls1.2, tls1.3
//	REGISTRY_STORAGE_DELETE_ENABLED: storage.delete.enabled: expected true or false, got "sometimes"
//
// All errors of a file are reported at once (errors.Join of *Error).
// Duplicate keys, YAML merge keys and more than one YAML document are
// errors. The reference's rules: version is required and must be 0.1;
// storage is required with exactly one driver; auth has at most one
// provider; keys the reference marks required are required when their
// parent is present (auth.token needs rootcertbundle or jwks; http.tls needs
// certificate and key unless letsencrypt is used; the notification
// endpoint's headers, timeout, threshold and backoff, and uploadpurging's
// four keys, have documented defaults and are not enforced). http.addr is
// not required here: without it the daemon must be socket-activated
// (LISTEN_FDS), and refuses to start otherwise.
//
// # Keys without effect
//
// A key that would change nothing given the rest of the configuration is
// an error, naming the key and why, where Distribution accepts and ignores
// it: blobdescriptorsize without the inmemory cache, a redis section without
// the redis cache, redis keys the chosen go-redis client does not read
// (cluster keys on one address, db on a cluster, sentinel keys without
// mastername), http.http2.disabled without TLS, http.tls.clientauth without
// clientcas, notifications.events.includereferences without endpoints,
// storage.redirect.disable on a driver that never redirects, and on a
// pull-through cache (proxy), which refuses pushes and deletes,
// storage.delete.enabled and the validation section. Keys under an
// explicit off switch (disabled: true of a hook, endpoint or middleware,
// enabled: false of upload purging or a health check) are not errors: the
// switch is their effect. docs/configuration.md lists every key and its
// state.
//
// # Environment overrides
//
// REGISTRY_<SECTION>_<KEY>... overrides a key, one "_" per nesting level, as
// in Distribution: REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY=/data. Segments
// match yaml key names case-insensitively; a key that itself contains "_"
// (copy_status_poll_max_retry, gcs credentials' project_id) spans several
// segments. Map sections (log.fields, http.headers, middleware options)
// accept new keys, which are lower-cased as Distribution does; existing keys
// match case-insensitively. List elements are addressed by index
// (REGISTRY_NOTIFICATIONS_ENDPOINTS_0_URL); index len(list) appends.
//
// Values are parsed as YAML into the target's type, so
// REGISTRY_STORAGE_MAINTENANCE_READONLY='{enabled: true}' replaces a whole
// section and REGISTRY_STORAGE=inmemory switches the driver (dropping the
// rest of storage, as in Distribution). For string keys a value that is not
// a YAML scalar (a password such as "[secret]" or "a: b") is taken verbatim.
// Variables apply in lexical order, so a parent is replaced before its
// children apply.
//
// The overrides are applied to the YAML tree before decoding, and each value
// is type-checked against its field on its own, so a bad value is an error
// naming the variable; validation errors under a key a variable set name it
// too. A REGISTRY_* variable that names no key is an error, except
// REGISTRY_CONFIGURATION_PATH and the service-link variables Kubernetes
// injects for a Service whose name starts with "registry"
// (REGISTRY_SERVICE_HOST, REGISTRY_PORT_5000_TCP_ADDR, ...): those are
// skipped and reported to Options.Warn.
//
// # Supported yet
//
// registryd implements features in stages, and a configured feature that is
// not implemented must stop the daemon rather than be ignored. CheckSupported
// compares the features a configuration uses (Features) with a Support
// value: StorageDrivers are the storage drivers and Features the other
// feature keys (FeatureKeys lists them; middleware is
// "middleware.<hook>.<name>"). A feature is used when its key is configured
// and turned on; defaults are not features (upload purging is gated only
// when the uploadpurging section is written). The result names the key:
//
//	storage.gcs: not supported yet
//	storage.cache.blobdescriptor: "redis" not supported yet
//
// Implemented is the Support of this release's registryd. It lives here,
// not in the server, so that the operator (which may import this package
// but not the daemon's server) refuses the same configurations the daemon
// would, and reports them in the Registry's status; registryd/server's
// tests keep its driver map and Implemented's StorageDrivers equal.
//
// # Default
//
// DefaultYAML is the configuration `registryd serve` uses without a file:
// filesystem storage under /var/lib/registry (the registry image's
// conventional volume; override with REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY)
// and :5000, the port every registry client expects.
package configuration
