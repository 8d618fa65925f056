package configuration

import "time"

// CurrentVersion is the only configuration version registryd reads.
const CurrentVersion Version = "0.1"

// Version is the configuration format version, "MAJOR.MINOR".
type Version string

// Loglevel is a log level: error, warn, info or debug.
type Loglevel string

// Header is a set of HTTP header names and their values. Values are always
// lists, as in the reference. It mirrors net/http.Header without importing
// net/http (this package stays light; see the package documentation).
type Header map[string][]string

// Configuration is registryd's config.yml, Distribution's format version 0.1.
//
// Optional sections whose children are required when the section is present
// are pointers: nil means "not configured", and a section written with no
// value at all (`inmemory:`) decodes to a non-nil empty struct.
type Configuration struct {
	// Version is required and must be "0.1".
	Version Version `yaml:"version"`
	// Log configures the logging system.
	Log Log `yaml:"log,omitempty"`
	// Loglevel is the level of the logging system.
	//
	// Deprecated: use Log.Level. Still read, as Distribution does.
	Loglevel Loglevel `yaml:"loglevel,omitempty"`
	// Storage selects exactly one storage driver and configures the storage
	// layer (delete, cache, maintenance, redirect, tag). Required.
	Storage Storage `yaml:"storage"`
	// Auth selects at most one access controller.
	Auth Auth `yaml:"auth,omitempty"`
	// Middleware injects middleware at the registry, repository and storage
	// hook points.
	Middleware Middleware `yaml:"middleware,omitempty"`
	// HTTP configures the server.
	HTTP HTTP `yaml:"http,omitempty"`
	// Notifications configures event endpoints.
	Notifications Notifications `yaml:"notifications,omitempty"`
	// Redis configures the redis client used by the redis blob descriptor
	// cache.
	Redis *Redis `yaml:"redis,omitempty"`
	// Health configures periodic health checks reported on /debug/health.
	Health Health `yaml:"health,omitempty"`
	// Proxy turns the registry into a pull-through cache.
	Proxy *Proxy `yaml:"proxy,omitempty"`
	// Validation configures content validation on push.
	Validation Validation `yaml:"validation,omitempty"`
}

// Log configures the logging system.
type Log struct {
	AccessLog AccessLog `yaml:"accesslog,omitempty"`
	// Level is one of error, warn, info (the default) or debug.
	Level Loglevel `yaml:"level,omitempty"`
	// Formatter is one of text (the default), json or logstash.
	Formatter string `yaml:"formatter,omitempty"`
	// Fields are added to every log line.
	Fields map[string]any `yaml:"fields,omitempty"`
	// Hooks are called for log lines of the given levels.
	Hooks []LogHook `yaml:"hooks,omitempty"`
}

// AccessLog configures the access log (Combined Log Format on stdout).
type AccessLog struct {
	Disabled bool `yaml:"disabled,omitempty"`
}

// LogHook is a log hook. The only type Distribution defines is "mail".
type LogHook struct {
	Type     string      `yaml:"type,omitempty"`
	Disabled bool        `yaml:"disabled,omitempty"`
	Levels   []string    `yaml:"levels,omitempty"`
	Options  MailOptions `yaml:"options,omitempty"`
}

// MailOptions configures the mail log hook.
type MailOptions struct {
	SMTP SMTP     `yaml:"smtp,omitempty"`
	From string   `yaml:"from,omitempty"`
	To   []string `yaml:"to,omitempty"`
}

// SMTP is the mail server of the mail log hook.
type SMTP struct {
	Addr     string `yaml:"addr,omitempty"`
	Username string `yaml:"username,omitempty"`
	Password string `yaml:"password,omitempty"`
	Insecure bool   `yaml:"insecure,omitempty"`
}

// Storage selects the storage driver and configures the storage layer.
// Exactly one of the driver fields is set.
type Storage struct {
	Filesystem *Filesystem `yaml:"filesystem,omitempty"`
	InMemory   *InMemory   `yaml:"inmemory,omitempty"`
	Azure      *Azure      `yaml:"azure,omitempty"`
	GCS        *GCS        `yaml:"gcs,omitempty"`
	S3         *S3         `yaml:"s3,omitempty"`

	Delete      Delete      `yaml:"delete,omitempty"`
	Cache       Cache       `yaml:"cache,omitempty"`
	Maintenance Maintenance `yaml:"maintenance,omitempty"`
	Redirect    Redirect    `yaml:"redirect,omitempty"`
	Tag         Tag         `yaml:"tag,omitempty"`
}

// Storage driver names, as they appear under storage.
const (
	DriverFilesystem = "filesystem"
	DriverInMemory   = "inmemory"
	DriverAzure      = "azure"
	DriverGCS        = "gcs"
	DriverS3         = "s3"
)

// DriverNames lists every storage driver the configuration knows, in the
// order of the reference.
var DriverNames = []string{DriverFilesystem, DriverInMemory, DriverAzure, DriverGCS, DriverS3}

// Drivers returns the names of the configured storage drivers (a valid
// configuration has exactly one).
func (s *Storage) Drivers() []string {
	var names []string
	if s.Filesystem != nil {
		names = append(names, DriverFilesystem)
	}
	if s.InMemory != nil {
		names = append(names, DriverInMemory)
	}
	if s.Azure != nil {
		names = append(names, DriverAzure)
	}
	if s.GCS != nil {
		names = append(names, DriverGCS)
	}
	if s.S3 != nil {
		names = append(names, DriverS3)
	}
	return names
}

// Driver returns the name of the configured storage driver, or "" when none
// or more than one is configured.
func (s *Storage) Driver() string {
	if d := s.Drivers(); len(d) == 1 {
		return d[0]
	}
	return ""
}

// DefaultRootDirectory is the filesystem driver's root when rootdirectory is
// not set.
const DefaultRootDirectory = "/var/lib/registry"

// Filesystem configures the filesystem driver.
type Filesystem struct {
	// RootDirectory defaults to DefaultRootDirectory.
	RootDirectory string `yaml:"rootdirectory,omitempty"`
	// MaxThreads bounds concurrent blocking filesystem operations; at
	// least 25, 0 means the default (100).
	MaxThreads int `yaml:"maxthreads,omitempty"`
}

// InMemory configures the inmemory driver, which takes no parameters.
type InMemory struct{}

// Azure configures the Azure Blob Storage driver.
type Azure struct {
	AccountName   string            `yaml:"accountname,omitempty"`
	AccountKey    string            `yaml:"accountkey,omitempty"`
	Container     string            `yaml:"container,omitempty"`
	Realm         string            `yaml:"realm,omitempty"`
	ServiceURL    string            `yaml:"serviceurl,omitempty"`
	RootDirectory string            `yaml:"rootdirectory,omitempty"`
	Credentials   *AzureCredentials `yaml:"credentials,omitempty"`
	// CopyStatusPollMaxRetry defaults to 5; -1 disables retries.
	CopyStatusPollMaxRetry *int `yaml:"copy_status_poll_max_retry,omitempty"`
	// CopyStatusPollDelay defaults to 100ms.
	CopyStatusPollDelay time.Duration `yaml:"copy_status_poll_delay,omitempty"`
}

// AzureCredentials selects how the Azure driver authenticates:
// shared_key (accountkey), client_secret or default_credentials.
type AzureCredentials struct {
	Type     string `yaml:"type,omitempty"`
	ClientID string `yaml:"clientid,omitempty"`
	TenantID string `yaml:"tenantid,omitempty"`
	Secret   string `yaml:"secret,omitempty"`
}

// GCS configures the Google Cloud Storage driver.
type GCS struct {
	Bucket        string          `yaml:"bucket,omitempty"`
	KeyFile       string          `yaml:"keyfile,omitempty"`
	Credentials   *GCSCredentials `yaml:"credentials,omitempty"`
	RootDirectory string          `yaml:"rootdirectory,omitempty"`
	// ChunkSize is a multiple of 262144; 0 means the default (5242880).
	ChunkSize int64 `yaml:"chunksize,omitempty"`
}

// GCSCredentials is an inline service account key.
type GCSCredentials struct {
	Type                    string `yaml:"type,omitempty"`
	ProjectID               string `yaml:"project_id,omitempty"`
	PrivateKeyID            string `yaml:"private_key_id,omitempty"`
	PrivateKey              string `yaml:"private_key,omitempty"`
	ClientEmail             string `yaml:"client_email,omitempty"`
	ClientID                string `yaml:"client_id,omitempty"`
	AuthURI                 string `yaml:"auth_uri,omitempty"`
	TokenURI                string `yaml:"token_uri,omitempty"`
	AuthProviderX509CertURL string `yaml:"auth_provider_x509_cert_url,omitempty"`
	ClientX509CertURL       string `yaml:"client_x509_cert_url,omitempty"`
}

// S3 configures the Amazon S3 (and compatible) driver.
type S3 struct {
	AccessKey      string `yaml:"accesskey,omitempty"`
	SecretKey      string `yaml:"secretkey,omitempty"`
	SessionToken   string `yaml:"sessiontoken,omitempty"`
	Region         string `yaml:"region,omitempty"`
	RegionEndpoint string `yaml:"regionendpoint,omitempty"`
	ForcePathStyle bool   `yaml:"forcepathstyle,omitempty"`
	Accelerate     bool   `yaml:"accelerate,omitempty"`
	Bucket         string `yaml:"bucket,omitempty"`
	Encrypt        bool   `yaml:"encrypt,omitempty"`
	KeyID          string `yaml:"keyid,omitempty"`
	// Secure defaults to true (https).
	Secure *bool `yaml:"secure,omitempty"`
	// SkipVerify skips TLS verification of the endpoint.
	SkipVerify bool `yaml:"skipverify,omitempty"`
	// V4Auth defaults to true.
	V4Auth *bool `yaml:"v4auth,omitempty"`
	// ChunkSize is the multipart upload part size, at least 5 MiB; 0 means
	// the driver's default.
	ChunkSize                   int64  `yaml:"chunksize,omitempty"`
	MultipartCopyChunkSize      int64  `yaml:"multipartcopychunksize,omitempty"`
	MultipartCopyMaxConcurrency int64  `yaml:"multipartcopymaxconcurrency,omitempty"`
	MultipartCopyThresholdSize  int64  `yaml:"multipartcopythresholdsize,omitempty"`
	RootDirectory               string `yaml:"rootdirectory,omitempty"`
	StorageClass                string `yaml:"storageclass,omitempty"`
	ObjectACL                   string `yaml:"objectacl,omitempty"`
	UserAgent                   string `yaml:"useragent,omitempty"`
	UseDualStack                bool   `yaml:"usedualstack,omitempty"`
	// LogLevel is the AWS SDK log level; off by default.
	LogLevel string `yaml:"loglevel,omitempty"`
}

// Delete enables deletion of blobs and manifests by digest.
type Delete struct {
	Enabled bool `yaml:"enabled,omitempty"`
}

// Blob descriptor cache kinds (storage.cache.blobdescriptor).
const (
	CacheInMemory = "inmemory"
	CacheRedis    = "redis"
)

// Cache configures the blob descriptor cache.
type Cache struct {
	// BlobDescriptor is inmemory or redis; empty disables the cache.
	BlobDescriptor string `yaml:"blobdescriptor,omitempty"`
	// BlobDescriptorSize bounds the inmemory cache; nil means 10000, 0
	// means unbounded.
	BlobDescriptorSize *int `yaml:"blobdescriptorsize,omitempty"`
	// LayerInfo is the former name of BlobDescriptor.
	//
	// Deprecated: use BlobDescriptor; see Cache.Kind.
	LayerInfo string `yaml:"layerinfo,omitempty"`
}

// Kind returns the configured blob descriptor cache, honouring the
// deprecated layerinfo key.
func (c Cache) Kind() string {
	if c.BlobDescriptor != "" {
		return c.BlobDescriptor
	}
	return c.LayerInfo
}

// Maintenance configures upload purging and read-only mode.
type Maintenance struct {
	// UploadPurging is enabled with its defaults when nil.
	UploadPurging *UploadPurging `yaml:"uploadpurging,omitempty"`
	ReadOnly      ReadOnly       `yaml:"readonly,omitempty"`
}

// Upload purging defaults from the reference.
const (
	DefaultUploadPurgingAge      = 168 * time.Hour
	DefaultUploadPurgingInterval = 24 * time.Hour
)

// UploadPurging removes abandoned uploads periodically.
type UploadPurging struct {
	// Enabled defaults to true.
	Enabled *bool `yaml:"enabled,omitempty"`
	// Age defaults to DefaultUploadPurgingAge.
	Age time.Duration `yaml:"age,omitempty"`
	// Interval defaults to DefaultUploadPurgingInterval.
	Interval time.Duration `yaml:"interval,omitempty"`
	DryRun   bool          `yaml:"dryrun,omitempty"`
}

// ReadOnly refuses every write while Enabled.
type ReadOnly struct {
	Enabled bool `yaml:"enabled,omitempty"`
}

// Redirect configures redirects to the storage backend.
type Redirect struct {
	Disable bool `yaml:"disable,omitempty"`
}

// Tag configures tag lookups.
type Tag struct {
	// ConcurrencyLimit bounds concurrent tag lookups; 0 means GOMAXPROCS.
	ConcurrencyLimit int `yaml:"concurrencylimit,omitempty"`
}

// Auth selects at most one access controller.
type Auth struct {
	Silly    *SillyAuth    `yaml:"silly,omitempty"`
	Token    *TokenAuth    `yaml:"token,omitempty"`
	Htpasswd *HtpasswdAuth `yaml:"htpasswd,omitempty"`
}

// Access controller names, as they appear under auth.
const (
	AuthSilly    = "silly"
	AuthToken    = "token"
	AuthHtpasswd = "htpasswd"
)

// Providers returns the names of the configured access controllers.
func (a *Auth) Providers() []string {
	var names []string
	if a.Silly != nil {
		names = append(names, AuthSilly)
	}
	if a.Token != nil {
		names = append(names, AuthToken)
	}
	if a.Htpasswd != nil {
		names = append(names, AuthHtpasswd)
	}
	return names
}

// SillyAuth only checks that an Authorization header is present.
type SillyAuth struct {
	Realm   string `yaml:"realm,omitempty"`
	Service string `yaml:"service,omitempty"`
}

// TokenAuth checks bearer JWTs issued by an external token service.
type TokenAuth struct {
	AutoRedirect      bool     `yaml:"autoredirect,omitempty"`
	AutoRedirectPath  string   `yaml:"autoredirectpath,omitempty"`
	Realm             string   `yaml:"realm,omitempty"`
	Service           string   `yaml:"service,omitempty"`
	Issuer            string   `yaml:"issuer,omitempty"`
	RootCertBundle    string   `yaml:"rootcertbundle,omitempty"`
	JWKS              string   `yaml:"jwks,omitempty"`
	SigningAlgorithms []string `yaml:"signingalgorithms,omitempty"`
}

// HtpasswdAuth checks basic credentials against a bcrypt htpasswd file.
type HtpasswdAuth struct {
	Realm string `yaml:"realm,omitempty"`
	Path  string `yaml:"path,omitempty"`
}

// Middleware lists middleware per hook point.
type Middleware struct {
	Registry   []MiddlewareEntry `yaml:"registry,omitempty"`
	Repository []MiddlewareEntry `yaml:"repository,omitempty"`
	Storage    []MiddlewareEntry `yaml:"storage,omitempty"`
}

// MiddlewareEntry names a middleware and its free-form options.
type MiddlewareEntry struct {
	Name     string         `yaml:"name"`
	Disabled bool           `yaml:"disabled,omitempty"`
	Options  map[string]any `yaml:"options,omitempty"`
}

// HTTP configures the registry's HTTP server.
type HTTP struct {
	// Addr is HOST:PORT for tcp, a socket path for unix.
	Addr string `yaml:"addr,omitempty"`
	// Net is tcp (the default) or unix.
	Net string `yaml:"net,omitempty"`
	// Prefix is the path before /v2/, with leading and trailing slashes.
	Prefix string `yaml:"prefix,omitempty"`
	// Host is the externally reachable URL used in generated URLs.
	Host string `yaml:"host,omitempty"`
	// Secret signs client-held state; generated at start when empty.
	Secret       string        `yaml:"secret,omitempty"`
	RelativeURLs bool          `yaml:"relativeurls,omitempty"`
	DrainTimeout time.Duration `yaml:"draintimeout,omitempty"`
	TLS          *TLS          `yaml:"tls,omitempty"`
	Debug        *Debug        `yaml:"debug,omitempty"`
	Headers      Header        `yaml:"headers,omitempty"`
	HTTP2        HTTP2         `yaml:"http2,omitempty"`
	H2C          H2C           `yaml:"h2c,omitempty"`
}

// TLS configures the server's TLS.
type TLS struct {
	Certificate string   `yaml:"certificate,omitempty"`
	Key         string   `yaml:"key,omitempty"`
	ClientCAs   []string `yaml:"clientcas,omitempty"`
	// ClientAuth is the client certificate mode when ClientCAs is set;
	// require-and-verify-client-cert by default.
	ClientAuth string `yaml:"clientauth,omitempty"`
	// MinimumTLS is tls1.0, tls1.1, tls1.2 (the default) or tls1.3.
	MinimumTLS   string       `yaml:"minimumtls,omitempty"`
	CipherSuites []string     `yaml:"ciphersuites,omitempty"`
	LetsEncrypt  *LetsEncrypt `yaml:"letsencrypt,omitempty"`
}

// LetsEncrypt obtains certificates from an ACME server.
type LetsEncrypt struct {
	CacheFile    string   `yaml:"cachefile,omitempty"`
	Email        string   `yaml:"email,omitempty"`
	Hosts        []string `yaml:"hosts,omitempty"`
	DirectoryURL string   `yaml:"directoryurl,omitempty"`
}

// Debug configures the debug server (health, metrics, pprof).
type Debug struct {
	Addr       string     `yaml:"addr,omitempty"`
	Prometheus Prometheus `yaml:"prometheus,omitempty"`
}

// Prometheus configures the metrics endpoint on the debug server.
type Prometheus struct {
	Enabled bool `yaml:"enabled,omitempty"`
	// Path defaults to /metrics; it cannot be one of DebugServerPaths.
	Path string `yaml:"path,omitempty"`
}

// DebugServerPaths are the paths registryd's debug server serves itself
// (package server), which the metrics path cannot take.
var DebugServerPaths = []string{
	"/debug/health", "/debug/health/down", "/debug/health/up",
	"/debug/pprof/", "/debug/pprof/cmdline", "/debug/pprof/profile", "/debug/pprof/symbol", "/debug/pprof/trace",
	"/debug/vars", "/berth/v1/status",
}

// HTTP2 configures HTTP/2 over TLS.
type HTTP2 struct {
	Disabled bool `yaml:"disabled,omitempty"`
}

// H2C configures HTTP/2 over cleartext.
type H2C struct {
	Enabled bool `yaml:"enabled,omitempty"`
}

// Notifications configures event delivery.
type Notifications struct {
	Events    Events     `yaml:"events,omitempty"`
	Endpoints []Endpoint `yaml:"endpoints,omitempty"`
}

// Events configures the content of events.
type Events struct {
	IncludeReferences bool `yaml:"includereferences,omitempty"`
}

// Endpoint is one notification listener.
type Endpoint struct {
	Name              string        `yaml:"name"`
	Disabled          bool          `yaml:"disabled,omitempty"`
	URL               string        `yaml:"url"`
	Headers           Header        `yaml:"headers,omitempty"`
	Timeout           time.Duration `yaml:"timeout,omitempty"`
	Threshold         int           `yaml:"threshold,omitempty"`
	Backoff           time.Duration `yaml:"backoff,omitempty"`
	IgnoredMediaTypes []string      `yaml:"ignoredmediatypes,omitempty"`
	Ignore            Ignore        `yaml:"ignore,omitempty"`
}

// Ignore filters events out of an endpoint.
type Ignore struct {
	MediaTypes []string `yaml:"mediatypes,omitempty"`
	Actions    []string `yaml:"actions,omitempty"`
}

// Redis configures the redis client. Key names follow go-redis's
// UniversalOptions, lower-cased, as Distribution v3 reads them.
type Redis struct {
	Addrs            []string      `yaml:"addrs,omitempty"`
	ClientName       string        `yaml:"clientname,omitempty"`
	Protocol         int           `yaml:"protocol,omitempty"`
	Username         string        `yaml:"username,omitempty"`
	Password         string        `yaml:"password,omitempty"`
	SentinelUsername string        `yaml:"sentinelusername,omitempty"`
	SentinelPassword string        `yaml:"sentinelpassword,omitempty"`
	MasterName       string        `yaml:"mastername,omitempty"`
	DB               int           `yaml:"db,omitempty"`
	MaxRetries       int           `yaml:"maxretries,omitempty"`
	MinRetryBackoff  time.Duration `yaml:"minretrybackoff,omitempty"`
	MaxRetryBackoff  time.Duration `yaml:"maxretrybackoff,omitempty"`
	DialTimeout      time.Duration `yaml:"dialtimeout,omitempty"`
	ReadTimeout      time.Duration `yaml:"readtimeout,omitempty"`
	WriteTimeout     time.Duration `yaml:"writetimeout,omitempty"`
	PoolFIFO         bool          `yaml:"poolfifo,omitempty"`
	PoolSize         int           `yaml:"poolsize,omitempty"`
	PoolTimeout      time.Duration `yaml:"pooltimeout,omitempty"`
	MinIdleConns     int           `yaml:"minidleconns,omitempty"`
	MaxIdleConns     int           `yaml:"maxidleconns,omitempty"`
	MaxActiveConns   int           `yaml:"maxactiveconns,omitempty"`
	ConnMaxIdleTime  time.Duration `yaml:"connmaxidletime,omitempty"`
	ConnMaxLifetime  time.Duration `yaml:"connmaxlifetime,omitempty"`
	MaxRedirects     int           `yaml:"maxredirects,omitempty"`
	ReadOnly         bool          `yaml:"readonly,omitempty"`
	RouteByLatency   bool          `yaml:"routebylatency,omitempty"`
	RouteRandomly    bool          `yaml:"routerandomly,omitempty"`
	TLS              RedisTLS      `yaml:"tls,omitempty"`
}

// RedisTLS configures TLS to redis. TLS is used when Enabled is true or a
// certificate is configured.
type RedisTLS struct {
	Enabled     bool     `yaml:"enabled,omitempty"`
	Certificate string   `yaml:"certificate,omitempty"`
	Key         string   `yaml:"key,omitempty"`
	ClientCAs   []string `yaml:"clientcas,omitempty"`
}

// Health configures health checks.
type Health struct {
	StorageDriver *StorageDriverCheck `yaml:"storagedriver,omitempty"`
	File          []FileCheck         `yaml:"file,omitempty"`
	HTTP          []HTTPCheck         `yaml:"http,omitempty"`
	TCP           []TCPCheck          `yaml:"tcp,omitempty"`
}

// DefaultHealthInterval is the interval of a health check without one.
const DefaultHealthInterval = 10 * time.Second

// StorageDriverCheck checks the storage backend.
type StorageDriverCheck struct {
	Enabled   bool          `yaml:"enabled,omitempty"`
	Interval  time.Duration `yaml:"interval,omitempty"`
	Threshold int           `yaml:"threshold,omitempty"`
}

// FileCheck fails while a file exists.
type FileCheck struct {
	File      string        `yaml:"file"`
	Interval  time.Duration `yaml:"interval,omitempty"`
	Threshold int           `yaml:"threshold,omitempty"`
}

// HTTPCheck sends HEAD requests to a URI.
type HTTPCheck struct {
	URI     string `yaml:"uri"`
	Headers Header `yaml:"headers,omitempty"`
	// StatusCode defaults to 200.
	StatusCode int           `yaml:"statuscode,omitempty"`
	Timeout    time.Duration `yaml:"timeout,omitempty"`
	Interval   time.Duration `yaml:"interval,omitempty"`
	Threshold  int           `yaml:"threshold,omitempty"`
}

// TCPCheck connects to a TCP address.
type TCPCheck struct {
	Addr      string        `yaml:"addr"`
	Timeout   time.Duration `yaml:"timeout,omitempty"`
	Interval  time.Duration `yaml:"interval,omitempty"`
	Threshold int           `yaml:"threshold,omitempty"`
}

// DefaultProxyTTL is how long stored proxied content is served before it is
// revalidated with upstream, when ttl is unset.
const DefaultProxyTTL = 168 * time.Hour

// Proxy configures the pull-through cache.
type Proxy struct {
	RemoteURL string `yaml:"remoteurl,omitempty"`
	Username  string `yaml:"username,omitempty"`
	Password  string `yaml:"password,omitempty"`
	// TTL defaults to DefaultProxyTTL when nil; 0 never revalidates.
	TTL *time.Duration `yaml:"ttl,omitempty"`
	// Exec obtains the upstream credentials from a command instead.
	Exec *ProxyExec `yaml:"exec,omitempty"`
}

// ProxyExec runs a Docker credential helper for the upstream registry:
// `<command> get` with the upstream host on stdin.
type ProxyExec struct {
	Command string `yaml:"command,omitempty"`
	// Lifetime is how long the helper's credentials are reused: nil means
	// the helper runs once, 0 that it runs whenever upstream asks for
	// credentials, as in Distribution.
	Lifetime *time.Duration `yaml:"lifetime,omitempty"`
}

// Validation configures validation of pushed content.
type Validation struct {
	// Enabled is the former switch of this section.
	//
	// Deprecated: use Disabled.
	Enabled   bool               `yaml:"enabled,omitempty"`
	Disabled  bool               `yaml:"disabled,omitempty"`
	Manifests ManifestValidation `yaml:"manifests,omitempty"`
}

// On reports whether pushed content is validated: unless disabled is
// true, or whenever the deprecated enabled is true (it wins over disabled,
// as in Distribution, which reads enabled first).
func (v *Validation) On() bool { return v.Enabled || !v.Disabled }

// ManifestValidation configures validation of manifests.
type ManifestValidation struct {
	URLs    URLValidation   `yaml:"urls,omitempty"`
	Indexes IndexValidation `yaml:"indexes,omitempty"`
}

// URLValidation restricts foreign-layer URLs in manifests by regular
// expressions.
type URLValidation struct {
	Allow []string `yaml:"allow,omitempty"`
	Deny  []string `yaml:"deny,omitempty"`
}

// IndexValidation configures which platform images of an index must exist.
type IndexValidation struct {
	// Platforms is all (the default), none or list, case-insensitive.
	Platforms    string     `yaml:"platforms,omitempty"`
	PlatformList []Platform `yaml:"platformlist,omitempty"`
}

// Platform is an OCI platform, by OS and architecture.
type Platform struct {
	Architecture string `yaml:"architecture,omitempty"`
	OS           string `yaml:"os,omitempty"`
}

type middlewareHook struct {
	path    string
	entries []MiddlewareEntry
}

func (m *Middleware) hooks() []middlewareHook {
	return []middlewareHook{
		{"middleware.registry", m.Registry},
		{"middleware.repository", m.Repository},
		{"middleware.storage", m.Storage},
	}
}
