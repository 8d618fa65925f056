package configuration

import (
	"net/url"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Enumerations from the reference.
var (
	LogLevels      = []string{"error", "warn", "info", "debug"}
	LogFormatters  = []string{"text", "json", "logstash"}
	LogHookTypes   = []string{"mail"}
	LogHookLevels  = []string{"panic", "fatal", "error", "warn", "info", "debug"}
	HTTPNetworks   = []string{"tcp", "unix"}
	TLSVersions    = []string{"tls1.0", "tls1.1", "tls1.2", "tls1.3"}
	TLSClientAuths = []string{"request-client-cert", "require-any-client-cert", "verify-client-cert-if-given", "require-and-verify-client-cert"}
	// CipherSuites are the cipher suite names http.tls.ciphersuites accepts.
	CipherSuites = []string{
		"TLS_RSA_WITH_RC4_128_SHA",
		"TLS_RSA_WITH_3DES_EDE_CBC_SHA",
		"TLS_RSA_WITH_AES_128_CBC_SHA",
		"TLS_RSA_WITH_AES_256_CBC_SHA",
		"TLS_RSA_WITH_AES_128_CBC_SHA256",
		"TLS_RSA_WITH_AES_128_GCM_SHA256",
		"TLS_RSA_WITH_AES_256_GCM_SHA384",
		"TLS_ECDHE_ECDSA_WITH_RC4_128_SHA",
		"TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA",
		"TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA",
		"TLS_ECDHE_RSA_WITH_RC4_128_SHA",
		"TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA",
		"TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA",
		"TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA",
		"TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256",
		"TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256",
		"TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
		"TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
		"TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
		"TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
		"TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
		"TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
		"TLS_AES_128_GCM_SHA256",
		"TLS_AES_256_GCM_SHA384",
		"TLS_CHACHA20_POLY1305_SHA256",
	}
	SigningAlgorithms    = []string{"EdDSA", "HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "ES256", "ES384", "ES512", "PS256", "PS384", "PS512"}
	CacheKinds           = []string{CacheInMemory, CacheRedis}
	AzureCredentialTypes = []string{"shared_key", "client_secret", "default_credentials"}
	EventActions         = []string{"pull", "push", "mount", "delete"}
	IndexPlatforms       = []string{"all", "none", "list"}
)

// Minimums the storage drivers enforce.
const (
	minFilesystemMaxThreads = 25
	minS3ChunkSize          = 5 << 20
	gcsChunkMultiple        = 256 << 10
)

// validator collects errors of one Validate call.
type validator struct{ errs errorList }

func (v *validator) add(path, format string, args ...any) {
	v.errs.add(path, 0, format, args...)
}

func (v *validator) required(path, value string) {
	if value == "" {
		v.add(path, "required key is missing")
	}
}

func (v *validator) enum(path, value string, allowed []string) {
	if value != "" && !slices.Contains(allowed, value) {
		v.add(path, "%s", oneOf(value, allowed))
	}
}

func (v *validator) nonNegative(path string, n int64) {
	if n < 0 {
		v.add(path, "must not be negative, got %d", n)
	}
}

func (v *validator) duration(path string, d time.Duration) {
	if d < 0 {
		v.add(path, "must not be negative, got %s", d)
	}
}

func (v *validator) url(path, value string) {
	if value == "" {
		return
	}
	u, err := url.Parse(value)
	if err != nil || u.Scheme == "" || u.Host == "" {
		v.add(path, "%q is not an absolute URL", value)
	}
}

// Validate checks c against the reference: the version, exactly one storage
// driver, at most one auth provider, keys required when their section is
// present, enumerations, and ranges. Every error names its key path; all
// errors are returned, joined.
func (c *Configuration) Validate() error {
	var v validator
	v.version(c.Version)
	v.log(c)
	v.storage(c)
	v.auth(&c.Auth)
	v.middleware(&c.Middleware)
	v.http(&c.HTTP)
	v.notifications(&c.Notifications)
	v.redis(c.Redis)
	v.health(&c.Health)
	v.proxy(c)
	v.validation(&c.Validation)
	return v.errs.err()
}

func (v *validator) version(ver Version) {
	if ver == "" {
		v.add("version", "required key is missing (use %s)", CurrentVersion)
		return
	}
	major, minor, ok := strings.Cut(string(ver), ".")
	_, errMajor := strconv.ParseUint(major, 10, 32)
	_, errMinor := strconv.ParseUint(minor, 10, 32)
	if !ok || errMajor != nil || errMinor != nil {
		v.add("version", "%q is not a version of the form MAJOR.MINOR", ver)
		return
	}
	if ver != CurrentVersion {
		v.add("version", "%q is not supported (only %s)", ver, CurrentVersion)
	}
}

func (v *validator) log(c *Configuration) {
	v.enum("log.level", string(c.Log.Level), LogLevels)
	v.enum("loglevel", string(c.Loglevel), LogLevels)
	v.enum("log.formatter", c.Log.Formatter, LogFormatters)
	for i, h := range c.Log.Hooks {
		p := indexPath("log.hooks", i)
		v.required(p+".type", h.Type)
		v.enum(p+".type", h.Type, LogHookTypes)
		for j, l := range h.Levels {
			v.enum(indexPath(p+".levels", j), l, LogHookLevels)
		}
	}
}

func (v *validator) storage(c *Configuration) {
	s := &c.Storage
	switch d := s.Drivers(); len(d) {
	case 0:
		v.add("storage", "no storage driver configured; configure exactly one of %s", strings.Join(DriverNames, ", "))
	case 1:
	default:
		v.add("storage", "more than one storage driver configured (%s); configure exactly one", strings.Join(d, ", "))
	}
	if fs := s.Filesystem; fs != nil {
		if fs.MaxThreads != 0 && fs.MaxThreads < minFilesystemMaxThreads {
			v.add("storage.filesystem.maxthreads", "must be at least %d, got %d", minFilesystemMaxThreads, fs.MaxThreads)
		}
	}
	if az := s.Azure; az != nil {
		v.required("storage.azure.accountname", az.AccountName)
		v.required("storage.azure.container", az.Container)
		credType := "shared_key"
		if az.Credentials != nil {
			v.enum("storage.azure.credentials.type", az.Credentials.Type, AzureCredentialTypes)
			if az.Credentials.Type != "" {
				credType = az.Credentials.Type
			}
		}
		switch credType {
		case "shared_key":
			v.required("storage.azure.accountkey", az.AccountKey)
		case "client_secret":
			v.required("storage.azure.credentials.clientid", az.Credentials.ClientID)
			v.required("storage.azure.credentials.tenantid", az.Credentials.TenantID)
			v.required("storage.azure.credentials.secret", az.Credentials.Secret)
		}
		if r := az.CopyStatusPollMaxRetry; r != nil && *r < -1 {
			v.add("storage.azure.copy_status_poll_max_retry", "must be -1 (no retries) or more, got %d", *r)
		}
		v.duration("storage.azure.copy_status_poll_delay", az.CopyStatusPollDelay)
	}
	if g := s.GCS; g != nil {
		v.required("storage.gcs.bucket", g.Bucket)
		if g.ChunkSize < 0 || g.ChunkSize%gcsChunkMultiple != 0 {
			v.add("storage.gcs.chunksize", "must be a positive multiple of %d, got %d", gcsChunkMultiple, g.ChunkSize)
		}
		if g.KeyFile != "" && g.Credentials != nil {
			v.add("storage.gcs.credentials", "set either keyfile or credentials, not both")
		}
	}
	if s3 := s.S3; s3 != nil {
		v.required("storage.s3.region", s3.Region)
		v.required("storage.s3.bucket", s3.Bucket)
		if s3.ChunkSize != 0 && s3.ChunkSize < minS3ChunkSize {
			v.add("storage.s3.chunksize", "must be at least %d (5 MiB), got %d", minS3ChunkSize, s3.ChunkSize)
		}
		v.nonNegative("storage.s3.multipartcopychunksize", s3.MultipartCopyChunkSize)
		v.nonNegative("storage.s3.multipartcopymaxconcurrency", s3.MultipartCopyMaxConcurrency)
		v.nonNegative("storage.s3.multipartcopythresholdsize", s3.MultipartCopyThresholdSize)
		v.url("storage.s3.regionendpoint", s3.RegionEndpoint)
	}

	cache := s.Cache
	v.enum("storage.cache.blobdescriptor", cache.BlobDescriptor, CacheKinds)
	v.enum("storage.cache.layerinfo", cache.LayerInfo, CacheKinds)
	if cache.BlobDescriptor != "" && cache.LayerInfo != "" && cache.BlobDescriptor != cache.LayerInfo {
		v.add("storage.cache.layerinfo", "conflicts with storage.cache.blobdescriptor (layerinfo is its deprecated name)")
	}
	if n := cache.BlobDescriptorSize; n != nil {
		v.nonNegative("storage.cache.blobdescriptorsize", int64(*n))
	}
	if cache.Kind() == CacheRedis && (c.Redis == nil || len(c.Redis.Addrs) == 0) {
		v.add("storage.cache.blobdescriptor", "redis needs redis.addrs")
	}
	// Keys that would have no effect: registryd refuses them rather than
	// accept and ignore them (Distribution ignores them, with a warning for
	// the size).
	if cache.BlobDescriptorSize != nil && cache.Kind() != CacheInMemory {
		v.add("storage.cache.blobdescriptorsize", "has no effect: it bounds only the inmemory blob descriptor cache (storage.cache.blobdescriptor: inmemory)")
	}
	if c.Redis != nil && cache.Kind() != CacheRedis {
		v.add("redis", "has no effect: only the redis blob descriptor cache uses it (storage.cache.blobdescriptor: redis)")
	}
	if up := s.Maintenance.UploadPurging; up != nil {
		v.duration("storage.maintenance.uploadpurging.age", up.Age)
		v.duration("storage.maintenance.uploadpurging.interval", up.Interval)
	}
	v.nonNegative("storage.tag.concurrencylimit", int64(s.Tag.ConcurrencyLimit))
	if s.Redirect.Disable && (s.Filesystem != nil || s.InMemory != nil) {
		v.add("storage.redirect.disable", "has no effect: the %s driver never redirects clients", s.Driver())
	}
}

func (v *validator) auth(a *Auth) {
	if p := a.Providers(); len(p) > 1 {
		v.add("auth", "more than one auth provider configured (%s); configure at most one", strings.Join(p, ", "))
	}
	if s := a.Silly; s != nil {
		v.required("auth.silly.realm", s.Realm)
		v.required("auth.silly.service", s.Service)
	}
	if t := a.Token; t != nil {
		if !t.AutoRedirect {
			v.required("auth.token.realm", t.Realm)
		}
		v.required("auth.token.service", t.Service)
		v.required("auth.token.issuer", t.Issuer)
		if t.RootCertBundle == "" && t.JWKS == "" {
			v.add("auth.token.rootcertbundle", "required key is missing (or set auth.token.jwks)")
		}
		if t.AutoRedirectPath != "" && !strings.HasPrefix(t.AutoRedirectPath, "/") {
			v.add("auth.token.autoredirectpath", "%q must start with /", t.AutoRedirectPath)
		}
		for i, alg := range t.SigningAlgorithms {
			v.enum(indexPath("auth.token.signingalgorithms", i), alg, SigningAlgorithms)
		}
	}
	if h := a.Htpasswd; h != nil {
		v.required("auth.htpasswd.realm", h.Realm)
		v.required("auth.htpasswd.path", h.Path)
	}
}

func (v *validator) middleware(m *Middleware) {
	for _, hook := range m.hooks() {
		for i, e := range hook.entries {
			v.required(indexPath(hook.path, i)+".name", e.Name)
		}
	}
}

func (v *validator) http(h *HTTP) {
	v.enum("http.net", h.Net, HTTPNetworks)
	if h.HTTP2.Disabled && h.TLS == nil {
		v.add("http.http2.disabled", "has no effect without http.tls: HTTP/2 is offered only over TLS (http.h2c is HTTP/2 in clear)")
	}
	if t := h.TLS; t != nil && t.ClientAuth != "" && len(t.ClientCAs) == 0 {
		v.add("http.tls.clientauth", "has no effect without http.tls.clientcas")
	}
	if h.Prefix != "" && (!strings.HasPrefix(h.Prefix, "/") || !strings.HasSuffix(h.Prefix, "/")) {
		v.add("http.prefix", "%q must start and end with /", h.Prefix)
	}
	v.url("http.host", h.Host)
	v.duration("http.draintimeout", h.DrainTimeout)
	if t := h.TLS; t != nil {
		if t.LetsEncrypt == nil || t.Certificate != "" || t.Key != "" {
			v.required("http.tls.certificate", t.Certificate)
			v.required("http.tls.key", t.Key)
		}
		v.enum("http.tls.clientauth", t.ClientAuth, TLSClientAuths)
		v.enum("http.tls.minimumtls", t.MinimumTLS, TLSVersions)
		for i, cs := range t.CipherSuites {
			v.enum(indexPath("http.tls.ciphersuites", i), cs, CipherSuites)
		}
		if le := t.LetsEncrypt; le != nil {
			v.required("http.tls.letsencrypt.cachefile", le.CacheFile)
			v.required("http.tls.letsencrypt.email", le.Email)
			if len(le.Hosts) == 0 {
				v.add("http.tls.letsencrypt.hosts", "required: without it no handshake may obtain a certificate")
			}
			v.url("http.tls.letsencrypt.directoryurl", le.DirectoryURL)
		}
	}
	if d := h.Debug; d != nil {
		v.required("http.debug.addr", d.Addr)
		if p := d.Prometheus.Path; p != "" && !strings.HasPrefix(p, "/") {
			v.add("http.debug.prometheus.path", "%q must start with /", p)
		} else if slices.Contains(DebugServerPaths, p) {
			v.add("http.debug.prometheus.path", "%q is served by registryd's debug server already", p)
		}
	}
}

func (v *validator) notifications(n *Notifications) {
	if n.Events.IncludeReferences && len(n.Endpoints) == 0 {
		v.add("notifications.events.includereferences", "has no effect without notifications.endpoints")
	}
	for i, e := range n.Endpoints {
		p := indexPath("notifications.endpoints", i)
		v.required(p+".name", e.Name)
		v.required(p+".url", e.URL)
		v.url(p+".url", e.URL)
		v.duration(p+".timeout", e.Timeout)
		v.duration(p+".backoff", e.Backoff)
		v.nonNegative(p+".threshold", int64(e.Threshold))
		for j, a := range e.Ignore.Actions {
			v.enum(indexPath(p+".ignore.actions", j), a, EventActions)
		}
	}
}

func (v *validator) redis(r *Redis) {
	if r == nil {
		return
	}
	v.nonNegative("redis.db", int64(r.DB))
	v.nonNegative("redis.poolsize", int64(r.PoolSize))
	for _, d := range []struct {
		key string
		d   time.Duration
	}{
		{"dialtimeout", r.DialTimeout}, {"readtimeout", r.ReadTimeout}, {"writetimeout", r.WriteTimeout},
		{"pooltimeout", r.PoolTimeout}, {"connmaxidletime", r.ConnMaxIdleTime}, {"connmaxlifetime", r.ConnMaxLifetime},
	} {
		v.duration("redis."+d.key, d.d)
	}
	if r.TLS.Certificate != "" || r.TLS.Key != "" {
		v.required("redis.tls.certificate", r.TLS.Certificate)
		v.required("redis.tls.key", r.TLS.Key)
	}
	if r.Protocol != 0 && r.Protocol != 2 && r.Protocol != 3 {
		v.add("redis.protocol", "must be 2 or 3 (RESP2 or RESP3), got %d", r.Protocol)
	}
	// go-redis builds one of three clients from these keys, and each reads
	// only some of them: a key the chosen client does not read would have
	// no effect, so it is refused.
	var kind string
	switch {
	case r.MasterName != "":
		kind = "a sentinel client (mastername)"
	case len(r.Addrs) > 1:
		kind = "a cluster client (several addrs)"
	default:
		kind = "a single-node client (one addr)"
	}
	unread := func(key string, set bool, readBy string) {
		if set {
			v.add("redis."+key, "has no effect with %s; only %s reads it", kind, readBy)
		}
	}
	sentinel, cluster := r.MasterName != "", r.MasterName == "" && len(r.Addrs) > 1
	unread("sentinelusername", !sentinel && r.SentinelUsername != "", "a sentinel client")
	unread("sentinelpassword", !sentinel && r.SentinelPassword != "", "a sentinel client")
	unread("db", cluster && r.DB != 0, "a single-node or sentinel client (a cluster has database 0 only)")
	unread("maxredirects", !cluster && r.MaxRedirects != 0, "a cluster client")
	unread("readonly", !cluster && r.ReadOnly, "a cluster client")
	unread("routebylatency", !cluster && !sentinel && r.RouteByLatency, "a cluster or sentinel client")
	unread("routerandomly", !cluster && !sentinel && r.RouteRandomly, "a cluster or sentinel client")
}

func (v *validator) health(h *Health) {
	if s := h.StorageDriver; s != nil {
		v.duration("health.storagedriver.interval", s.Interval)
		v.nonNegative("health.storagedriver.threshold", int64(s.Threshold))
	}
	for i, f := range h.File {
		p := indexPath("health.file", i)
		v.required(p+".file", f.File)
		v.duration(p+".interval", f.Interval)
	}
	for i, c := range h.HTTP {
		p := indexPath("health.http", i)
		v.required(p+".uri", c.URI)
		v.url(p+".uri", c.URI)
		if c.StatusCode != 0 && (c.StatusCode < 100 || c.StatusCode > 599) {
			v.add(p+".statuscode", "%d is not an HTTP status code", c.StatusCode)
		}
		v.duration(p+".timeout", c.Timeout)
		v.duration(p+".interval", c.Interval)
		v.nonNegative(p+".threshold", int64(c.Threshold))
	}
	for i, c := range h.TCP {
		p := indexPath("health.tcp", i)
		v.required(p+".addr", c.Addr)
		v.duration(p+".timeout", c.Timeout)
		v.duration(p+".interval", c.Interval)
		v.nonNegative(p+".threshold", int64(c.Threshold))
	}
}

func (v *validator) proxy(c *Configuration) {
	p := c.Proxy
	if p == nil {
		return
	}
	// A pull-through cache refuses pushes and deletes: what only governs
	// them would have no effect.
	if c.Storage.Delete.Enabled {
		v.add("storage.delete.enabled", "has no effect: a pull-through cache (proxy) refuses deletes")
	}
	if val := c.Validation; val.Disabled || val.Enabled || !reflect.DeepEqual(val.Manifests, ManifestValidation{}) {
		v.add("validation", "has no effect: a pull-through cache (proxy) refuses pushes, which is what validation checks")
	}
	v.required("proxy.remoteurl", p.RemoteURL)
	v.url("proxy.remoteurl", p.RemoteURL)
	if p.TTL != nil {
		v.duration("proxy.ttl", *p.TTL)
	}
	if e := p.Exec; e != nil {
		v.required("proxy.exec.command", e.Command)
		if e.Lifetime != nil {
			v.duration("proxy.exec.lifetime", *e.Lifetime)
		}
		if p.Username != "" || p.Password != "" {
			v.add("proxy.exec", "set either username/password or exec, not both")
		}
	}
}

func (v *validator) validation(val *Validation) {
	u := val.Manifests.URLs
	for _, list := range []struct {
		path  string
		exprs []string
	}{{"validation.manifests.urls.allow", u.Allow}, {"validation.manifests.urls.deny", u.Deny}} {
		for i, e := range list.exprs {
			if _, err := regexp.Compile(e); err != nil {
				v.add(indexPath(list.path, i), "invalid regular expression: %v", err)
			}
		}
	}
	idx := val.Manifests.Indexes
	if idx.Platforms != "" && !slices.Contains(IndexPlatforms, strings.ToLower(idx.Platforms)) {
		v.add("validation.manifests.indexes.platforms", "%s (case-insensitive)", oneOf(idx.Platforms, IndexPlatforms))
	}
	if strings.EqualFold(idx.Platforms, "list") && len(idx.PlatformList) == 0 {
		v.add("validation.manifests.indexes.platformlist", "required when platforms is list")
	}
	for i, p := range idx.PlatformList {
		path := indexPath("validation.manifests.indexes.platformlist", i)
		v.required(path+".os", p.OS)
		v.required(path+".architecture", p.Architecture)
	}
}
