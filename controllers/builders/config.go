package builders

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
	corev1 "k8s.io/api/core/v1"

	berthv1alpha1 "github.com/berth-dev/berth/api/v1alpha1"
	"github.com/berth-dev/berth/registryd/configuration"
)

// Rendered is what a Registry's spec becomes inside the registryd pod.
type Rendered struct {
	// Config is config.yml as the ConfigMap carries it (no credentials).
	Config []byte
	// ChecksumConfig is Config with the live-reloaded keys (read-only)
	// cleared: the part of the config whose change must roll the pods.
	ChecksumConfig []byte
	// Env are the REGISTRY_* variables that carry credentials.
	Env []corev1.EnvVar
	// Volumes and Mounts of the Secrets registryd reads as files.
	Volumes []corev1.Volume
	Mounts  []corev1.VolumeMount
}

// InvalidConfigError is a spec (usually extraConfig) that registryd's
// configuration parser refuses.
type InvalidConfigError struct{ Err error }

func (e *InvalidConfigError) Error() string {
	return "invalid registryd configuration: " + e.Err.Error()
}
func (e *InvalidConfigError) Unwrap() error { return e.Err }

// UnsupportedConfigError is a rendered configuration that uses features the
// registryd release does not implement yet: registryd would refuse to start
// with it. Keys are the refusals, one per key, e.g.
// "storage.s3: not supported yet".
type UnsupportedConfigError struct{ Keys []string }

func (e *UnsupportedConfigError) Error() string {
	return "registryd does not implement yet: " + strings.Join(e.Keys, "; ")
}

// CheckSupported checks rendered's config.yml, read the way registryd will
// read it, against what a registryd release implements (normally
// configuration.Implemented()). Render checks the schema only; this is the
// separate question of whether the daemon runs it today. It returns an
// *UnsupportedConfigError naming every refused key.
func CheckSupported(rendered *Rendered, support configuration.Support) error {
	cfg, err := configuration.ParseWithEnv(bytes.NewReader(rendered.Config), PlaceholderEnv(rendered.Env))
	if err != nil {
		return &InvalidConfigError{Err: err}
	}
	err = cfg.CheckSupported(support)
	if err == nil {
		return nil
	}
	errs := []error{err}
	if joined, ok := err.(interface{ Unwrap() []error }); ok {
		errs = joined.Unwrap()
	}
	out := &UnsupportedConfigError{}
	for _, e := range errs {
		out.Keys = append(out.Keys, e.Error())
	}
	return out
}

// Render builds config.yml and the pod wiring of reg. readOnly is the
// effective read-only state (the spec's, or a garbage collection's).
func Render(reg *berthv1alpha1.Registry, readOnly bool) (*Rendered, error) {
	r := &renderer{reg: reg, secretVolumes: map[string]string{}}
	cfg := r.configuration()

	out := &Rendered{}
	var err error
	cfg.Storage.Maintenance.ReadOnly.Enabled = false
	if out.ChecksumConfig, err = r.finish(cfg); err != nil {
		return nil, err
	}
	cfg.Storage.Maintenance.ReadOnly.Enabled = readOnly
	if out.Config, err = r.finish(cfg); err != nil {
		return nil, err
	}
	out.Env, out.Volumes, out.Mounts = r.env, r.volumes, r.mounts
	return out, nil
}

// finish renders cfg, merges extraConfig, and checks the result with
// registryd's parser under the environment the pod will have.
func (r *renderer) finish(cfg *configuration.Configuration) ([]byte, error) {
	data, err := configuration.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	if x := r.reg.Spec.ExtraConfig; x != nil && len(x.Raw) > 0 {
		if data, err = mergeExtra(data, x.Raw, PlaceholderEnv(r.env)); err != nil {
			return nil, &InvalidConfigError{Err: err}
		}
	}
	if _, err := configuration.ParseWithEnv(bytes.NewReader(data), PlaceholderEnv(r.env)); err != nil {
		return nil, &InvalidConfigError{Err: err}
	}
	return data, nil
}

// PlaceholderEnv gives each REGISTRY_* variable of env a placeholder value,
// for checking a config.yml the way registryd will read it without the
// credentials themselves.
func PlaceholderEnv(env []corev1.EnvVar) []string {
	var out []string
	for _, e := range env {
		if strings.HasPrefix(e.Name, configuration.EnvPrefix) {
			out = append(out, e.Name+"=placeholder")
		}
	}
	return out
}

// mergeExtra deep-merges the JSON object extra over the YAML document base
// and renders the result canonically again with configuration.Marshal.
func mergeExtra(base, extra []byte, env []string) ([]byte, error) {
	var dst map[string]any
	if err := yaml.Unmarshal(base, &dst); err != nil {
		return nil, err
	}
	// Numbers stay exact: decoded as float64, 5242880 would render as
	// 5.24288e+06 (and 2^53+1 would lose its last digit), which registryd
	// refuses where it reads an integer.
	dec := json.NewDecoder(bytes.NewReader(extra))
	dec.UseNumber()
	var src map[string]any
	if err := dec.Decode(&src); err != nil {
		return nil, fmt.Errorf("spec.extraConfig: %w", err)
	}
	src, _ = exactNumbers(src).(map[string]any)
	merged, err := yaml.Marshal(mergeMaps(dst, src))
	if err != nil {
		return nil, err
	}
	// Check strictly (unknown keys, types, validation under the pod's
	// environment), then decode (without the environment's placeholders)
	// into the typed configuration for a canonical rendering.
	if _, err := configuration.ParseWithEnv(bytes.NewReader(merged), env); err != nil {
		return nil, err
	}
	cfg, err := configuration.Decode(bytes.NewReader(merged))
	if err != nil {
		return nil, err
	}
	return configuration.Marshal(cfg)
}

// exactNumbers replaces the json.Numbers in v by values YAML renders
// exactly: integers as int64 (or uint64 beyond it), other numbers as
// float64, which JSON itself carries no more precisely.
func exactNumbers(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			x[k] = exactNumbers(e)
		}
	case []any:
		for i, e := range x {
			x[i] = exactNumbers(e)
		}
	case json.Number:
		if i, err := strconv.ParseInt(x.String(), 10, 64); err == nil {
			return i
		}
		if u, err := strconv.ParseUint(x.String(), 10, 64); err == nil {
			return u
		}
		if f, err := x.Float64(); err == nil {
			return f
		}
		return x.String()
	}
	return v
}

func mergeMaps(dst, src map[string]any) map[string]any {
	if dst == nil {
		dst = map[string]any{}
	}
	for k, v := range src {
		sv, sok := v.(map[string]any)
		dv, dok := dst[k].(map[string]any)
		if sok && dok {
			dst[k] = mergeMaps(dv, sv)
			continue
		}
		dst[k] = v
	}
	return dst
}

// renderer collects the environment and volumes while it fills the
// configuration.
type renderer struct {
	reg           *berthv1alpha1.Registry
	env           []corev1.EnvVar
	volumes       []corev1.Volume
	mounts        []corev1.VolumeMount
	secretVolumes map[string]string // Secret name -> mount directory
}

// fromEnv makes the REGISTRY_* variable name carry ref's value.
func (r *renderer) fromEnv(name string, ref berthv1alpha1.SecretKeyRef) {
	r.env = append(r.env, corev1.EnvVar{Name: name, ValueFrom: &corev1.EnvVarSource{
		SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: ref.Name}, Key: ref.Key},
	}})
}

// file mounts ref's Secret as a directory (once per Secret) and returns the
// path of its key.
func (r *renderer) file(ref berthv1alpha1.SecretKeyRef) string {
	dir, ok := r.secretVolumes[ref.Name]
	if !ok {
		dir = SecretsDir + "/" + ref.Name
		r.secretVolumes[ref.Name] = dir
		vol := secretVolumeName(ref.Name, len(r.volumes))
		r.volumes = append(r.volumes, corev1.Volume{Name: vol, VolumeSource: corev1.VolumeSource{
			Secret: &corev1.SecretVolumeSource{SecretName: ref.Name},
		}})
		r.mounts = append(r.mounts, corev1.VolumeMount{Name: vol, MountPath: dir, ReadOnly: true})
	}
	return dir + "/" + ref.Key
}

// secretVolumeName is "secret-<name>" when that is a valid volume name,
// else "secret-<n>".
func secretVolumeName(secret string, n int) string {
	name := "secret-" + secret
	if len(name) <= 63 && !strings.Contains(name, ".") {
		return name
	}
	return "secret-" + strconv.Itoa(n)
}

func duration(d *berthv1alpha1.Duration) time.Duration {
	if d == nil {
		return 0
	}
	return d.Duration
}

func intOf[T ~int32 | ~int64](p *T) int {
	if p == nil {
		return 0
	}
	return int(*p)
}

func (r *renderer) configuration() *configuration.Configuration {
	spec := &r.reg.Spec
	c := &configuration.Configuration{Version: configuration.CurrentVersion}
	c.Log.Fields = map[string]any{"service": "registry", "registry": r.reg.Namespace + "/" + r.reg.Name}
	if l := spec.Log; l != nil {
		c.Log.Level = configuration.Loglevel(l.Level)
		c.Log.Formatter = l.Formatter
		c.Log.AccessLog.Disabled = l.AccessLogDisabled
	}
	r.storage(c)
	r.auth(c)
	r.http(c)
	r.proxy(c)
	r.notifications(c)
	r.validation(c)
	if h := spec.Health; h != nil && h.StorageDriver != nil {
		c.Health.StorageDriver = &configuration.StorageDriverCheck{
			Enabled:   h.StorageDriver.Enabled,
			Interval:  duration(h.StorageDriver.Interval),
			Threshold: intOf(h.StorageDriver.Threshold),
		}
	}
	return c
}

func (r *renderer) storage(c *configuration.Configuration) {
	s := &r.reg.Spec.Storage
	switch {
	case s.Filesystem != nil, s.EmptyDir != nil:
		c.Storage.Filesystem = &configuration.Filesystem{RootDirectory: DataDir}
	case s.InMemory != nil:
		c.Storage.InMemory = &configuration.InMemory{}
	case s.S3 != nil:
		x := s.S3
		c.Storage.S3 = &configuration.S3{
			Region: x.Region, RegionEndpoint: x.RegionEndpoint, ForcePathStyle: x.ForcePathStyle,
			Bucket: x.Bucket, Encrypt: x.Encrypt, KeyID: x.KeyID, Secure: x.Secure, SkipVerify: x.SkipVerify,
			RootDirectory: x.RootDirectory, StorageClass: x.StorageClass,
		}
		if x.ChunkSize != nil {
			c.Storage.S3.ChunkSize = *x.ChunkSize
		}
		if x.AccessKeySecretRef != nil {
			r.fromEnv("REGISTRY_STORAGE_S3_ACCESSKEY", *x.AccessKeySecretRef)
		}
		if x.SecretKeySecretRef != nil {
			r.fromEnv("REGISTRY_STORAGE_S3_SECRETKEY", *x.SecretKeySecretRef)
		}
	case s.Azure != nil:
		x := s.Azure
		az := &configuration.Azure{
			AccountName: x.AccountName, Container: x.Container, Realm: x.Realm,
			ServiceURL: x.ServiceURL, RootDirectory: x.RootDirectory,
		}
		switch {
		case x.AccountKeySecretRef != nil:
			az.Credentials = &configuration.AzureCredentials{Type: "shared_key"}
			r.fromEnv("REGISTRY_STORAGE_AZURE_ACCOUNTKEY", *x.AccountKeySecretRef)
		case x.ClientSecret != nil:
			az.Credentials = &configuration.AzureCredentials{Type: "client_secret", ClientID: x.ClientSecret.ClientID, TenantID: x.ClientSecret.TenantID}
			r.fromEnv("REGISTRY_STORAGE_AZURE_CREDENTIALS_SECRET", x.ClientSecret.SecretRef)
		default:
			az.Credentials = &configuration.AzureCredentials{Type: "default_credentials"}
		}
		c.Storage.Azure = az
	case s.GCS != nil:
		x := s.GCS
		c.Storage.GCS = &configuration.GCS{Bucket: x.Bucket, RootDirectory: x.RootDirectory}
		if x.ChunkSize != nil {
			c.Storage.GCS.ChunkSize = *x.ChunkSize
		}
		if x.KeyFileSecretRef != nil {
			c.Storage.GCS.KeyFile = r.file(*x.KeyFileSecretRef)
		}
	}
	if s.Delete != nil {
		c.Storage.Delete.Enabled = s.Delete.Enabled
	}
	if x := s.Cache; x != nil {
		c.Storage.Cache.BlobDescriptor = x.BlobDescriptor
		if x.BlobDescriptorSize != nil {
			n := int(*x.BlobDescriptorSize)
			c.Storage.Cache.BlobDescriptorSize = &n
		}
	}
	if x := s.UploadPurging; x != nil {
		c.Storage.Maintenance.UploadPurging = &configuration.UploadPurging{
			Enabled: x.Enabled, Age: duration(x.Age), Interval: duration(x.Interval), DryRun: x.DryRun,
		}
	}
	if s.Redirect != nil {
		c.Storage.Redirect.Disable = s.Redirect.Disable
	}
}

func (r *renderer) auth(c *configuration.Configuration) {
	a := r.reg.Spec.Auth
	if a == nil {
		return
	}
	if h := a.Htpasswd; h != nil {
		ref := berthv1alpha1.SecretKeyRef{Name: HTPasswdSecretName(r.reg), Key: HTPasswdSecretKey}
		if h.SecretRef != nil {
			ref = *h.SecretRef
		}
		realm := h.Realm
		if realm == "" {
			realm = "Registry"
		}
		c.Auth.Htpasswd = &configuration.HtpasswdAuth{Realm: realm, Path: r.file(ref)}
	}
	if t := a.Token; t != nil {
		tok := &configuration.TokenAuth{Realm: t.Realm, Service: t.Service, Issuer: t.Issuer, SigningAlgorithms: t.SigningAlgorithms}
		if t.RootCertBundleSecretRef != nil {
			tok.RootCertBundle = r.file(*t.RootCertBundleSecretRef)
		}
		if t.JWKSSecretRef != nil {
			tok.JWKS = r.file(*t.JWKSSecretRef)
		}
		c.Auth.Token = tok
	}
}

func (r *renderer) http(c *configuration.Configuration) {
	spec := &r.reg.Spec
	h := &c.HTTP
	h.Addr = ":" + strconv.Itoa(int(HTTPPort))
	h.Headers = configuration.Header{"X-Content-Type-Options": {"nosniff"}}
	r.fromEnv("REGISTRY_HTTP_SECRET", berthv1alpha1.SecretKeyRef{Name: HTTPSecretName(r.reg), Key: HTTPSecretKey})
	h.Debug = &configuration.Debug{Addr: ":" + strconv.Itoa(int(DebugPort))}
	if m := spec.Metrics; m != nil && m.Enabled {
		h.Debug.Prometheus = configuration.Prometheus{Enabled: true, Path: "/metrics"}
	}
	h.DrainTimeout = DrainTimeout(r.reg)
	if x := spec.HTTP; x != nil {
		h.Prefix, h.Host, h.RelativeURLs = x.Prefix, x.Host, x.RelativeURLs
		for k, v := range x.Headers {
			h.Headers[k] = v
		}
		h.HTTP2.Disabled = x.HTTP2Disabled
		h.H2C.Enabled = x.H2C
	}
	if t := spec.TLS; t != nil {
		tls := &configuration.TLS{
			Certificate:  r.file(berthv1alpha1.SecretKeyRef{Name: TLSSecretName(r.reg), Key: corev1.TLSCertKey}),
			Key:          r.file(berthv1alpha1.SecretKeyRef{Name: TLSSecretName(r.reg), Key: corev1.TLSPrivateKeyKey}),
			MinimumTLS:   t.MinimumVersion,
			CipherSuites: t.CipherSuites,
		}
		if t.ClientCASecretRef != nil {
			tls.ClientCAs = []string{r.file(*t.ClientCASecretRef)}
			tls.ClientAuth = t.ClientAuth
		}
		h.TLS = tls
	}
}

func (r *renderer) proxy(c *configuration.Configuration) {
	p := r.reg.Spec.Proxy
	if p == nil {
		return
	}
	c.Proxy = &configuration.Proxy{RemoteURL: p.RemoteURL}
	if p.TTL != nil {
		ttl := p.TTL.Duration
		c.Proxy.TTL = &ttl
	}
	if p.UsernameSecretRef != nil {
		r.fromEnv("REGISTRY_PROXY_USERNAME", *p.UsernameSecretRef)
	}
	if p.PasswordSecretRef != nil {
		r.fromEnv("REGISTRY_PROXY_PASSWORD", *p.PasswordSecretRef)
	}
}

func (r *renderer) notifications(c *configuration.Configuration) {
	n := r.reg.Spec.Notifications
	if n == nil {
		return
	}
	c.Notifications.Events.IncludeReferences = n.IncludeReferences
	for i, e := range n.Endpoints {
		ep := configuration.Endpoint{
			Name: e.Name, URL: e.URL, Disabled: e.Disabled,
			Timeout: duration(e.Timeout), Threshold: intOf(e.Threshold), Backoff: duration(e.Backoff),
			IgnoredMediaTypes: e.IgnoredMediaTypes,
		}
		for _, a := range e.IgnoredActions {
			ep.Ignore.Actions = append(ep.Ignore.Actions, string(a))
		}
		if len(e.Headers) > 0 || len(e.HeadersFrom) > 0 {
			ep.Headers = configuration.Header{}
		}
		for k, v := range e.Headers {
			ep.Headers[k] = v
		}
		for _, hf := range e.HeadersFrom {
			// An empty list in the file, its one value from the Secret.
			ep.Headers[hf.Name] = []string{}
			r.fromEnv(fmt.Sprintf("REGISTRY_NOTIFICATIONS_ENDPOINTS_%d_HEADERS_%s_0", i, strings.ToUpper(hf.Name)), hf.SecretRef)
		}
		c.Notifications.Endpoints = append(c.Notifications.Endpoints, ep)
	}
}

func (r *renderer) validation(c *configuration.Configuration) {
	v := r.reg.Spec.Validation
	if v == nil {
		return
	}
	c.Validation.Disabled = v.Disabled
	c.Validation.Manifests.URLs.Allow = v.AllowURLs
	c.Validation.Manifests.URLs.Deny = v.DenyURLs
	c.Validation.Manifests.Indexes.Platforms = v.IndexPlatforms
	for _, p := range v.IndexPlatformList {
		c.Validation.Manifests.Indexes.PlatformList = append(c.Validation.Manifests.Indexes.PlatformList,
			configuration.Platform{OS: p.OS, Architecture: p.Architecture})
	}
}
