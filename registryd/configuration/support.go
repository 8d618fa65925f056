package configuration

import (
	"slices"
	"strings"
)

// registryd implements features in stages. A configuration that asks for a
// feature the running daemon does not implement yet must fail at start, naming
// the key, rather than be accepted and ignored. CheckSupported is that gate:
// the daemon says what it implements, the configuration says what it uses.

// Support is what a registryd build implements.
type Support struct {
	// StorageDrivers are the storage drivers the daemon has registered,
	// by name ("filesystem", "inmemory", ...).
	StorageDrivers []string
	// Features are the implemented feature keys, from FeatureKeys
	// (e.g. "auth.htpasswd", "storage.cache.blobdescriptor.redis",
	// "middleware.storage.redirect").
	Features []string
}

// Implemented is what this release's registryd implements: the storage
// drivers its server registers and the feature keys it honours. The daemon
// refuses at start any configuration that uses something else
// (server.New checks CheckSupported(Implemented())), and the operator runs
// the same check on the config.yml it renders, so a Registry that registryd
// would refuse is reported in its status instead of crash-looping its pods.
//
// This is the one list: a feature becomes supported by adding its key here
// in the change that implements it. registryd/server's tests check that
// StorageDrivers is exactly the set of drivers its driver map registers.
// Each call returns a new value; callers may modify it.
func Implemented() Support {
	return Support{
		StorageDrivers: []string{DriverFilesystem, DriverInMemory, DriverAzure, DriverGCS, DriverS3},
		Features: []string{
			"log.hooks",
			"log.formatter.json",
			"log.formatter.logstash",
			"storage.delete",
			"storage.cache.blobdescriptor.inmemory",
			"storage.cache.blobdescriptor.redis",
			"storage.maintenance.readonly",
			"storage.maintenance.uploadpurging",
			"storage.redirect",
			"storage.tag",
			"http.net.unix",
			"http.headers",
			"http.tls",
			"http.tls.clientcas",
			"http.tls.letsencrypt",
			"http.h2c",
			"http.debug",
			"http.debug.prometheus",
			"auth.htpasswd",
			"auth.token",
			"auth.silly",
			"notifications.endpoints",
			"health.storagedriver",
			"health.file",
			"health.http",
			"health.tcp",
			"proxy",
			"proxy.exec",
			"validation.manifests.urls",
			"validation.manifests.indexes.none",
			"validation.manifests.indexes.list",
			"middleware.storage.redirect",
		},
	}
}

// Feature is one gated feature a configuration uses.
type Feature struct {
	// Key is what Support.Features lists to allow it.
	Key string
	// Path is the key path that turns it on, for error messages.
	Path string
	// Value is the chosen value for features selected by value (a cache
	// kind, a log formatter, a middleware name); empty otherwise.
	Value string
	// Driver is set for the storage driver, which Support.StorageDrivers
	// gates.
	Driver string
}

// gate is one row of the feature table: a key path that, when used, needs
// the feature of the same name. Rows with a value function are selected by
// value: the feature key is path + "." + value, and def is the value every
// build supports.
type gate struct {
	path  string
	used  func(c *Configuration) bool
	value func(c *Configuration) string
	def   string
	all   []string
}

var gates = []gate{
	{path: "log.hooks", used: func(c *Configuration) bool {
		return slices.ContainsFunc(c.Log.Hooks, func(h LogHook) bool { return !h.Disabled })
	}},
	{path: "log.formatter", value: func(c *Configuration) string { return c.Log.Formatter }, def: "text", all: LogFormatters},
	{path: "storage.delete", used: func(c *Configuration) bool { return c.Storage.Delete.Enabled }},
	{path: "storage.cache.blobdescriptor", value: func(c *Configuration) string { return c.Storage.Cache.Kind() }, all: CacheKinds},
	{path: "storage.maintenance.uploadpurging", used: func(c *Configuration) bool {
		up := c.Storage.Maintenance.UploadPurging
		return up != nil && (up.Enabled == nil || *up.Enabled)
	}},
	{path: "storage.maintenance.readonly", used: func(c *Configuration) bool { return c.Storage.Maintenance.ReadOnly.Enabled }},
	{path: "storage.redirect", used: func(c *Configuration) bool { return c.Storage.Redirect.Disable }},
	{path: "storage.tag", used: func(c *Configuration) bool { return c.Storage.Tag.ConcurrencyLimit != 0 }},
	{path: "auth.silly", used: func(c *Configuration) bool { return c.Auth.Silly != nil }},
	{path: "auth.token", used: func(c *Configuration) bool { return c.Auth.Token != nil }},
	{path: "auth.htpasswd", used: func(c *Configuration) bool { return c.Auth.Htpasswd != nil }},
	{path: "http.net", value: func(c *Configuration) string { return c.HTTP.Net }, def: "tcp", all: HTTPNetworks},
	{path: "http.tls", used: func(c *Configuration) bool { return c.HTTP.TLS != nil }},
	{path: "http.tls.clientcas", used: func(c *Configuration) bool { return c.HTTP.TLS != nil && len(c.HTTP.TLS.ClientCAs) > 0 }},
	{path: "http.tls.letsencrypt", used: func(c *Configuration) bool { return c.HTTP.TLS != nil && c.HTTP.TLS.LetsEncrypt != nil }},
	{path: "http.debug", used: func(c *Configuration) bool { return c.HTTP.Debug != nil }},
	{path: "http.debug.prometheus", used: func(c *Configuration) bool { return c.HTTP.Debug != nil && c.HTTP.Debug.Prometheus.Enabled }},
	{path: "http.headers", used: func(c *Configuration) bool { return len(c.HTTP.Headers) > 0 }},
	{path: "http.h2c", used: func(c *Configuration) bool { return c.HTTP.H2C.Enabled }},
	{path: "notifications.endpoints", used: func(c *Configuration) bool {
		return slices.ContainsFunc(c.Notifications.Endpoints, func(e Endpoint) bool { return !e.Disabled })
	}},
	{path: "health.storagedriver", used: func(c *Configuration) bool {
		return c.Health.StorageDriver != nil && c.Health.StorageDriver.Enabled
	}},
	{path: "health.file", used: func(c *Configuration) bool { return len(c.Health.File) > 0 }},
	{path: "health.http", used: func(c *Configuration) bool { return len(c.Health.HTTP) > 0 }},
	{path: "health.tcp", used: func(c *Configuration) bool { return len(c.Health.TCP) > 0 }},
	{path: "proxy", used: func(c *Configuration) bool { return c.Proxy != nil }},
	{path: "proxy.exec", used: func(c *Configuration) bool { return c.Proxy != nil && c.Proxy.Exec != nil }},
	{path: "validation.manifests.urls", used: func(c *Configuration) bool {
		u := c.Validation.Manifests.URLs
		return len(u.Allow)+len(u.Deny) > 0
	}},
	{path: "validation.manifests.indexes", value: func(c *Configuration) string {
		return c.Validation.Manifests.Indexes.Platforms
	}, def: "all", all: IndexPlatforms},
}

// FeatureKeys lists every key Support.Features can name, except middleware,
// whose keys are "middleware.<hook>.<name>" (e.g.
// "middleware.storage.redirect").
func FeatureKeys() []string {
	var keys []string
	for _, g := range gates {
		if g.value == nil {
			keys = append(keys, g.path)
			continue
		}
		for _, v := range g.all {
			if v != g.def {
				keys = append(keys, g.path+"."+v)
			}
		}
	}
	return keys
}

// Features lists the gated features c uses, in table order, storage driver
// first.
func (c *Configuration) Features() []Feature {
	var fs []Feature
	for _, d := range c.Storage.Drivers() {
		fs = append(fs, Feature{Key: "storage." + d, Path: "storage." + d, Driver: d})
	}
	for _, g := range gates {
		switch {
		case g.value != nil:
			if v := g.value(c); v != "" && !strings.EqualFold(v, g.def) {
				fs = append(fs, Feature{Key: g.path + "." + strings.ToLower(v), Path: g.path, Value: v})
			}
		case g.used(c):
			fs = append(fs, Feature{Key: g.path, Path: g.path})
		}
	}
	for _, h := range c.Middleware.hooks() {
		for i, e := range h.entries {
			if !e.Disabled {
				fs = append(fs, Feature{Key: h.path + "." + e.Name, Path: indexPath(h.path, i) + ".name", Value: e.Name})
			}
		}
	}
	return fs
}

// CheckSupported returns an error naming each key of c that asks for
// something s does not implement, e.g. `storage.gcs: not supported yet`.
// The storage driver is checked against s.StorageDrivers, everything else
// against s.Features.
func (c *Configuration) CheckSupported(s Support) error {
	var errs errorList
	for _, f := range c.Features() {
		ok := slices.Contains(s.Features, f.Key)
		if f.Driver != "" {
			ok = slices.Contains(s.StorageDrivers, f.Driver)
		}
		switch {
		case ok:
		case f.Value != "":
			errs.add(f.Path, 0, "%q not supported yet", f.Value)
		default:
			errs.add(f.Path, 0, "not supported yet")
		}
	}
	return errs.err()
}
