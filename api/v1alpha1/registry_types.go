package v1alpha1

import (
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Condition types a Registry reports.
const (
	// ConditionReady is True when every desired replica serves the current spec.
	ConditionReady = "Ready"
	// ConditionProgressing is True while a rollout is under way.
	ConditionProgressing = "Progressing"
	// ConditionDegraded is True when the spec cannot be honoured; the reason says why.
	ConditionDegraded = "Degraded"
	// ConditionReadOnly is True while the registry refuses writes.
	ConditionReadOnly = "ReadOnly"
	// ConditionGarbageCollecting is True while a GarbageCollection runs.
	ConditionGarbageCollecting = "GarbageCollecting"
)

// Condition reasons a Registry reports.
const (
	ReasonAvailable          = "Available"
	ReasonNotAvailable       = "NotAvailable"
	ReasonRollingOut         = "RollingOut"
	ReasonRolledOut          = "RolledOut"
	ReasonRolloutStalled     = "RolloutStalled"
	ReasonAsExpected         = "AsExpected"
	ReasonSecretNotFound     = "SecretNotFound"
	ReasonSecretKeyNotFound  = "SecretKeyNotFound"
	ReasonInvalidStorage     = "InvalidStorage"
	ReasonInvalidConfig      = "InvalidConfig"
	ReasonUnsupportedConfig  = "UnsupportedConfig" // needs a feature registryd does not implement yet
	ReasonInvalidSchedule    = "InvalidSchedule"
	ReasonCertManagerMissing = "CertManagerMissing"
	ReasonSpecReadOnly       = "SpecReadOnly"
	ReasonReadWrite          = "ReadWrite"
	// ReasonGarbageCollection: a GarbageCollection holds the registry
	// read-only.
	ReasonGarbageCollection = "GarbageCollection"
	// ReasonConverging: the replicas do not all report the read-only state
	// the registry should be in yet.
	ReasonConverging = "Converging"
	// ReasonIdle: no GarbageCollection is running.
	ReasonIdle = "Idle"
	// ReasonManagerImageUnknown: a schedule needs the manager image for
	// its CronJob and the manager was started without one.
	ReasonManagerImageUnknown = "ManagerImageUnknown"
)

// SecretKeyRef names one key of a Secret in the Registry's namespace.
type SecretKeyRef struct {
	// Name of the Secret.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`
	// Key in the Secret's data.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Key string `json:"key"`
}

// RegistrySpec is the desired state of a Registry.
//
// +kubebuilder:validation:XValidation:rule="!has(self.storage.filesystem) || !has(self.replicas) || self.replicas <= 1 || !has(self.storage.filesystem.accessModes) || !('ReadWriteOnce' in self.storage.filesystem.accessModes) || ('ReadWriteMany' in self.storage.filesystem.accessModes)",message="spec.replicas: a ReadWriteOnce filesystem volume allows at most 1 replica"
// +kubebuilder:validation:XValidation:rule="!(has(self.storage.emptyDir) || has(self.storage.inmemory)) || !has(self.replicas) || self.replicas <= 1",message="spec.replicas: emptyDir and inmemory storage belong to one pod, so at most 1 replica"
type RegistrySpec struct {
	// Replicas is the number of registryd pods.
	// +kubebuilder:default=1
	// +kubebuilder:validation:Minimum=0
	// +optional
	Replicas *int32 `json:"replicas,omitempty"`

	// Image overrides the registryd image the operator was started with.
	// +optional
	Image string `json:"image,omitempty"`

	// ImagePullPolicy of the registryd container.
	// +kubebuilder:validation:Enum=Always;IfNotPresent;Never
	// +optional
	ImagePullPolicy corev1.PullPolicy `json:"imagePullPolicy,omitempty"`

	// ImagePullSecrets for the registryd image.
	// +optional
	ImagePullSecrets []corev1.LocalObjectReference `json:"imagePullSecrets,omitempty"`

	// Resources of the registryd container.
	// +optional
	Resources corev1.ResourceRequirements `json:"resources,omitempty"`

	// NodeSelector of the registryd pods.
	// +optional
	NodeSelector map[string]string `json:"nodeSelector,omitempty"`

	// Tolerations of the registryd pods.
	// +optional
	Tolerations []corev1.Toleration `json:"tolerations,omitempty"`

	// Affinity of the registryd pods.
	// +optional
	Affinity *corev1.Affinity `json:"affinity,omitempty"`

	// PodAnnotations are added to the registryd pods.
	// +optional
	PodAnnotations map[string]string `json:"podAnnotations,omitempty"`

	// Storage says where the registry keeps blobs and manifests, and how the
	// storage layer behaves.
	Storage RegistryStorage `json:"storage"`

	// ReadOnly puts the registry in maintenance mode: every write is
	// refused, every read keeps working. registryd applies it live, without
	// restarting pods.
	// +optional
	ReadOnly bool `json:"readOnly,omitempty"`

	// Auth selects how clients authenticate; anonymous when unset.
	// +optional
	Auth *RegistryAuth `json:"auth,omitempty"`

	// TLS serves the registry over HTTPS.
	// +optional
	TLS *RegistryTLS `json:"tls,omitempty"`

	// HTTP options of the registry server.
	// +optional
	HTTP *RegistryHTTP `json:"http,omitempty"`

	// Log options of registryd.
	// +optional
	Log *RegistryLog `json:"log,omitempty"`

	// Proxy turns the registry into a pull-through cache of a remote registry.
	// +optional
	Proxy *RegistryProxy `json:"proxy,omitempty"`

	// Notifications sends registry events to HTTP endpoints.
	// +optional
	Notifications *RegistryNotifications `json:"notifications,omitempty"`

	// Validation of pushed content.
	// +optional
	Validation *RegistryValidation `json:"validation,omitempty"`

	// Health checks reported on /debug/health.
	// +optional
	Health *RegistryHealth `json:"health,omitempty"`

	// Metrics exposes Prometheus metrics on the debug port.
	// +optional
	Metrics *RegistryMetrics `json:"metrics,omitempty"`

	// GarbageCollection schedules garbage collection runs and keeps their
	// history bounded. Without it, runs are created by hand and the default
	// history limits (3 succeeded, 1 failed) apply.
	// +optional
	GarbageCollection *GarbageCollectionPolicy `json:"garbageCollection,omitempty"`

	// Service exposes the registry in the cluster.
	// +kubebuilder:default={}
	// +optional
	Service RegistryService `json:"service,omitempty"`

	// ExtraConfig is the escape hatch for registryd configuration keys the
	// typed spec does not cover. It is a config.yml fragment (for example
	// {"health": {"tcp": [{"addr": "redis:6379"}]}}) deep-merged over the
	// rendered configuration: maps merge key by key, any other value
	// replaces. The result is parsed by registryd's own configuration
	// parser, so an unknown key or bad value is refused and reported as
	// Degraded/InvalidConfig naming the key. Credentials do not belong here:
	// it is rendered into a ConfigMap.
	// +kubebuilder:validation:Type=object
	// +kubebuilder:pruning:PreserveUnknownFields
	// +optional
	ExtraConfig *apiextensionsv1.JSON `json:"extraConfig,omitempty"`
}

// RegistryStorage selects exactly one storage backend and configures the
// storage layer.
//
// +kubebuilder:validation:XValidation:rule="[has(self.filesystem), has(self.emptyDir), has(self.inmemory), has(self.s3), has(self.azure), has(self.gcs)].filter(x, x).size() == 1",message="spec.storage: exactly one of filesystem, emptyDir, inmemory, s3, azure or gcs must be set"
type RegistryStorage struct {
	// Filesystem keeps data on a PersistentVolumeClaim the operator creates.
	// +optional
	Filesystem *FilesystemStorage `json:"filesystem,omitempty"`

	// EmptyDir keeps data in a pod-local emptyDir volume: lost with the pod.
	// +optional
	EmptyDir *EmptyDirStorage `json:"emptyDir,omitempty"`

	// InMemory keeps data in registryd's memory: for tests only.
	// +optional
	InMemory *InMemoryStorage `json:"inmemory,omitempty"`

	// S3 keeps data in an S3 (or S3-compatible) bucket.
	// +optional
	S3 *S3Storage `json:"s3,omitempty"`

	// Azure keeps data in an Azure Blob Storage container.
	// +optional
	Azure *AzureStorage `json:"azure,omitempty"`

	// GCS keeps data in a Google Cloud Storage bucket.
	// +optional
	GCS *GCSStorage `json:"gcs,omitempty"`

	// Delete allows deleting manifests and blobs by digest.
	// +optional
	Delete *StorageDelete `json:"delete,omitempty"`

	// Cache configures the blob descriptor cache.
	// +optional
	Cache *StorageCache `json:"cache,omitempty"`

	// UploadPurging removes abandoned uploads; on with registryd's defaults
	// when unset.
	// +optional
	UploadPurging *UploadPurging `json:"uploadPurging,omitempty"`

	// Redirect configures redirects of blob downloads to the backend.
	// +optional
	Redirect *StorageRedirect `json:"redirect,omitempty"`
}

// FilesystemStorage is registry storage on a PersistentVolumeClaim.
type FilesystemStorage struct {
	// Size of the volume.
	// +kubebuilder:default="10Gi"
	// +optional
	Size *resource.Quantity `json:"size,omitempty"`

	// StorageClassName of the claim; the cluster default when empty.
	// +optional
	StorageClassName *string `json:"storageClassName,omitempty"`

	// AccessModes of the claim. ReadWriteOnce limits the Registry to one
	// replica and the Recreate strategy.
	// +kubebuilder:default={"ReadWriteOnce"}
	// +kubebuilder:validation:MinItems=1
	// +optional
	AccessModes []corev1.PersistentVolumeAccessMode `json:"accessModes,omitempty"`
}

// EmptyDirStorage is registry storage in a pod-local emptyDir volume.
type EmptyDirStorage struct {
	// SizeLimit of the volume.
	// +optional
	SizeLimit *resource.Quantity `json:"sizeLimit,omitempty"`
}

// InMemoryStorage keeps everything in registryd's memory.
type InMemoryStorage struct{}

// S3Storage is registry storage in an S3 bucket.
//
// +kubebuilder:validation:XValidation:rule="has(self.accessKeySecretRef) == has(self.secretKeySecretRef)",message="spec.storage.s3: set both accessKeySecretRef and secretKeySecretRef, or neither (instance credentials)"
type S3Storage struct {
	// Bucket name.
	// +kubebuilder:validation:MinLength=1
	Bucket string `json:"bucket"`
	// Region of the bucket.
	// +kubebuilder:validation:MinLength=1
	Region string `json:"region"`
	// RegionEndpoint is the endpoint of an S3-compatible service.
	// +kubebuilder:validation:Pattern=`^https?://`
	// +optional
	RegionEndpoint string `json:"regionEndpoint,omitempty"`
	// ForcePathStyle addresses the bucket in the path, not the host name.
	// +optional
	ForcePathStyle bool `json:"forcePathStyle,omitempty"`
	// Encrypt objects at rest on the server side.
	// +optional
	Encrypt bool `json:"encrypt,omitempty"`
	// KeyID is the KMS key of server-side encryption.
	// +optional
	KeyID string `json:"keyID,omitempty"`
	// Secure uses HTTPS to the endpoint (default true).
	// +optional
	Secure *bool `json:"secure,omitempty"`
	// SkipVerify skips TLS verification of the endpoint.
	// +optional
	SkipVerify bool `json:"skipVerify,omitempty"`
	// ChunkSize of multipart uploads, at least 5 MiB.
	// +kubebuilder:validation:Minimum=5242880
	// +optional
	ChunkSize *int64 `json:"chunkSize,omitempty"`
	// RootDirectory is the key prefix of all registry data.
	// +optional
	RootDirectory string `json:"rootDirectory,omitempty"`
	// StorageClass of the objects.
	// +optional
	StorageClass string `json:"storageClass,omitempty"`
	// AccessKeySecretRef is the access key ID.
	// +optional
	AccessKeySecretRef *SecretKeyRef `json:"accessKeySecretRef,omitempty"`
	// SecretKeySecretRef is the secret access key.
	// +optional
	SecretKeySecretRef *SecretKeyRef `json:"secretKeySecretRef,omitempty"`
}

// AzureStorage is registry storage in an Azure Blob Storage container.
// Without accountKeySecretRef or clientSecret the driver uses the default
// Azure credential chain (workload identity).
//
// +kubebuilder:validation:XValidation:rule="!(has(self.accountKeySecretRef) && has(self.clientSecret))",message="spec.storage.azure: set at most one of accountKeySecretRef and clientSecret"
type AzureStorage struct {
	// AccountName of the storage account.
	// +kubebuilder:validation:MinLength=1
	AccountName string `json:"accountName"`
	// Container name.
	// +kubebuilder:validation:MinLength=1
	Container string `json:"container"`
	// Realm is the storage domain, core.windows.net by default.
	// +optional
	Realm string `json:"realm,omitempty"`
	// ServiceURL overrides the blob service URL (e.g. an emulator).
	// +kubebuilder:validation:Pattern=`^https?://`
	// +optional
	ServiceURL string `json:"serviceURL,omitempty"`
	// RootDirectory is the blob prefix of all registry data.
	// +optional
	RootDirectory string `json:"rootDirectory,omitempty"`
	// AccountKeySecretRef is the shared account key.
	// +optional
	AccountKeySecretRef *SecretKeyRef `json:"accountKeySecretRef,omitempty"`
	// ClientSecret authenticates as an Entra ID application.
	// +optional
	ClientSecret *AzureClientSecret `json:"clientSecret,omitempty"`
}

// AzureClientSecret is an Entra ID application's credentials.
type AzureClientSecret struct {
	// ClientID of the application.
	// +kubebuilder:validation:MinLength=1
	ClientID string `json:"clientID"`
	// TenantID of the application.
	// +kubebuilder:validation:MinLength=1
	TenantID string `json:"tenantID"`
	// SecretRef is the client secret.
	SecretRef SecretKeyRef `json:"secretRef"`
}

// GCSStorage is registry storage in a Google Cloud Storage bucket. Without
// keyFileSecretRef the driver uses application default credentials.
type GCSStorage struct {
	// Bucket name.
	// +kubebuilder:validation:MinLength=1
	Bucket string `json:"bucket"`
	// RootDirectory is the object prefix of all registry data.
	// +optional
	RootDirectory string `json:"rootDirectory,omitempty"`
	// ChunkSize of uploads, a multiple of 262144.
	// +kubebuilder:validation:Minimum=262144
	// +kubebuilder:validation:MultipleOf=262144
	// +optional
	ChunkSize *int64 `json:"chunkSize,omitempty"`
	// KeyFileSecretRef is a service account key (JSON), mounted as a file.
	// +optional
	KeyFileSecretRef *SecretKeyRef `json:"keyFileSecretRef,omitempty"`
}

// StorageDelete allows deleting content by digest.
type StorageDelete struct {
	// Enabled allows DELETE of manifests and blobs.
	Enabled bool `json:"enabled"`
}

// StorageCache configures the blob descriptor cache.
type StorageCache struct {
	// BlobDescriptor is the cache kind; only inmemory is typed (redis needs
	// extraConfig).
	// +kubebuilder:validation:Enum=inmemory
	BlobDescriptor string `json:"blobDescriptor"`
	// BlobDescriptorSize bounds the inmemory cache (0 means unbounded).
	// +kubebuilder:validation:Minimum=0
	// +optional
	BlobDescriptorSize *int32 `json:"blobDescriptorSize,omitempty"`
}

// UploadPurging removes abandoned uploads.
type UploadPurging struct {
	// Enabled turns purging on (default true).
	// +optional
	Enabled *bool `json:"enabled,omitempty"`
	// Age after which an upload is abandoned (default 168h).
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$`
	// +optional
	Age *metav1.Duration `json:"age,omitempty"`
	// Interval between purges (default 24h).
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$`
	// +optional
	Interval *metav1.Duration `json:"interval,omitempty"`
	// DryRun logs what would be purged.
	// +optional
	DryRun bool `json:"dryRun,omitempty"`
}

// StorageRedirect configures redirects to the storage backend.
type StorageRedirect struct {
	// Disable serves blobs through registryd instead of redirecting.
	Disable bool `json:"disable"`
}

// RegistryAuth selects at most one access controller.
//
// +kubebuilder:validation:XValidation:rule="!(has(self.htpasswd) && has(self.token))",message="spec.auth: set at most one of htpasswd and token"
type RegistryAuth struct {
	// Htpasswd checks basic credentials against a bcrypt htpasswd file.
	// +optional
	Htpasswd *HtpasswdAuth `json:"htpasswd,omitempty"`
	// Token checks bearer tokens issued by an external token service.
	// +optional
	Token *TokenAuth `json:"token,omitempty"`
}

// HtpasswdAuth is htpasswd authentication, from an existing htpasswd Secret
// or from users whose passwords live in Secrets (the operator hashes them
// with bcrypt into a generated Secret).
//
// +kubebuilder:validation:XValidation:rule="has(self.secretRef) != (has(self.users) && size(self.users) > 0)",message="spec.auth.htpasswd: set exactly one of secretRef and users"
type HtpasswdAuth struct {
	// Realm of the basic auth challenge.
	// +kubebuilder:default="Registry"
	// +kubebuilder:validation:MinLength=1
	// +optional
	Realm string `json:"realm,omitempty"`
	// SecretRef is an existing htpasswd file (bcrypt entries).
	// +optional
	SecretRef *SecretKeyRef `json:"secretRef,omitempty"`
	// Users are hashed into a generated htpasswd Secret.
	// +listType=map
	// +listMapKey=username
	// +kubebuilder:validation:MaxItems=256
	// +optional
	Users []HtpasswdUser `json:"users,omitempty"`
}

// HtpasswdUser is one user of a generated htpasswd file.
type HtpasswdUser struct {
	// Username; no colon.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:Pattern=`^[^:\s]+$`
	Username string `json:"username"`
	// PasswordSecretRef is the user's clear-text password.
	PasswordSecretRef SecretKeyRef `json:"passwordSecretRef"`
}

// TokenAuth checks bearer JWTs from an external token service.
//
// +kubebuilder:validation:XValidation:rule="has(self.rootCertBundleSecretRef) || has(self.jwksSecretRef)",message="spec.auth.token: set rootCertBundleSecretRef or jwksSecretRef"
type TokenAuth struct {
	// Realm is the token service URL clients are sent to.
	// +kubebuilder:validation:Pattern=`^https?://`
	Realm string `json:"realm"`
	// Service is the audience tokens must name.
	// +kubebuilder:validation:MinLength=1
	Service string `json:"service"`
	// Issuer tokens must name.
	// +kubebuilder:validation:MinLength=1
	Issuer string `json:"issuer"`
	// RootCertBundleSecretRef holds the PEM certificates that sign tokens.
	// +optional
	RootCertBundleSecretRef *SecretKeyRef `json:"rootCertBundleSecretRef,omitempty"`
	// JWKSSecretRef holds the JSON Web Key Set that signs tokens.
	// +optional
	JWKSSecretRef *SecretKeyRef `json:"jwksSecretRef,omitempty"`
	// SigningAlgorithms accepted; all of registryd's when empty.
	// +optional
	SigningAlgorithms []string `json:"signingAlgorithms,omitempty"`
}

// RegistryTLS serves HTTPS.
//
// +kubebuilder:validation:XValidation:rule="has(self.secretName) || has(self.issuerRef)",message="spec.tls: set secretName or issuerRef"
type RegistryTLS struct {
	// SecretName is a kubernetes.io/tls Secret (tls.crt, tls.key). With
	// issuerRef it is the Secret the cert-manager Certificate writes
	// (default <registry>-tls).
	// +kubebuilder:validation:MinLength=1
	// +optional
	SecretName string `json:"secretName,omitempty"`
	// IssuerRef has cert-manager issue the certificate. Only used when the
	// cert-manager CRDs exist; otherwise the Registry is Degraded.
	// +optional
	IssuerRef *IssuerRef `json:"issuerRef,omitempty"`
	// DNSNames of the cert-manager certificate, in addition to the Service's
	// cluster names.
	// +optional
	DNSNames []string `json:"dnsNames,omitempty"`
	// ClientCASecretRef is a PEM bundle of CAs for client certificates
	// (mutual TLS).
	// +optional
	ClientCASecretRef *SecretKeyRef `json:"clientCASecretRef,omitempty"`
	// ClientAuth is the client certificate policy when clientCASecretRef is
	// set (default require-and-verify-client-cert).
	// +kubebuilder:validation:Enum=request-client-cert;require-any-client-cert;verify-client-cert-if-given;require-and-verify-client-cert
	// +optional
	ClientAuth string `json:"clientAuth,omitempty"`
	// MinimumVersion of TLS (default tls1.2).
	// +kubebuilder:validation:Enum=tls1.2;tls1.3
	// +optional
	MinimumVersion string `json:"minimumVersion,omitempty"`
	// CipherSuites allowed (TLS 1.2 names as Go spells them).
	// +optional
	CipherSuites []string `json:"cipherSuites,omitempty"`
}

// IssuerRef names a cert-manager issuer.
type IssuerRef struct {
	// Name of the issuer.
	// +kubebuilder:validation:MinLength=1
	Name string `json:"name"`
	// Kind is Issuer or ClusterIssuer.
	// +kubebuilder:default=Issuer
	// +kubebuilder:validation:Enum=Issuer;ClusterIssuer
	// +optional
	Kind string `json:"kind,omitempty"`
	// Group of the issuer.
	// +kubebuilder:default="cert-manager.io"
	// +optional
	Group string `json:"group,omitempty"`
}

// RegistryHTTP are options of the HTTP server.
type RegistryHTTP struct {
	// Prefix before /v2/, starting and ending with "/".
	// +kubebuilder:validation:Pattern=`^/(.*/)?$`
	// +optional
	Prefix string `json:"prefix,omitempty"`
	// Host is the externally reachable URL used in Location headers.
	// +kubebuilder:validation:Pattern=`^https?://`
	// +optional
	Host string `json:"host,omitempty"`
	// RelativeURLs makes Location headers relative.
	// +optional
	RelativeURLs bool `json:"relativeURLs,omitempty"`
	// DrainTimeout is how long in-flight requests may finish on shutdown
	// (default 30s). Pods get it, plus 10s before SIGTERM to leave the
	// Service and 10s of margin, as their termination grace period.
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$`
	// +optional
	DrainTimeout *metav1.Duration `json:"drainTimeout,omitempty"`
	// Headers added to every response.
	// +optional
	Headers map[string][]string `json:"headers,omitempty"`
	// HTTP2Disabled turns HTTP/2 over TLS off.
	// +optional
	HTTP2Disabled bool `json:"http2Disabled,omitempty"`
	// H2C serves HTTP/2 over cleartext.
	// +optional
	H2C bool `json:"h2c,omitempty"`
}

// RegistryLog configures logging.
type RegistryLog struct {
	// Level is error, warn, info or debug.
	// +kubebuilder:validation:Enum=error;warn;info;debug
	// +optional
	Level string `json:"level,omitempty"`
	// Formatter is text, json or logstash.
	// +kubebuilder:validation:Enum=text;json;logstash
	// +optional
	Formatter string `json:"formatter,omitempty"`
	// AccessLogDisabled turns the access log off.
	// +optional
	AccessLogDisabled bool `json:"accessLogDisabled,omitempty"`
}

// RegistryProxy is a pull-through cache of a remote registry.
//
// +kubebuilder:validation:XValidation:rule="has(self.usernameSecretRef) == has(self.passwordSecretRef)",message="spec.proxy: set both usernameSecretRef and passwordSecretRef, or neither"
type RegistryProxy struct {
	// RemoteURL of the upstream registry.
	// +kubebuilder:validation:Pattern=`^https?://`
	RemoteURL string `json:"remoteURL"`
	// UsernameSecretRef is the upstream user.
	// +optional
	UsernameSecretRef *SecretKeyRef `json:"usernameSecretRef,omitempty"`
	// PasswordSecretRef is the upstream password.
	// +optional
	PasswordSecretRef *SecretKeyRef `json:"passwordSecretRef,omitempty"`
	// TTL of cached content (default 168h; 0s never expires).
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$`
	// +optional
	TTL *metav1.Duration `json:"ttl,omitempty"`
}

// RegistryNotifications sends events to endpoints.
type RegistryNotifications struct {
	// IncludeReferences adds the references of manifests to events.
	// +optional
	IncludeReferences bool `json:"includeReferences,omitempty"`
	// Endpoints receive the events.
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=32
	// +optional
	Endpoints []NotificationEndpoint `json:"endpoints,omitempty"`
}

// NotificationEndpoint is one event listener.
type NotificationEndpoint struct {
	// Name of the endpoint.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:Pattern=`^[A-Za-z0-9][A-Za-z0-9._-]*$`
	Name string `json:"name"`
	// URL events are POSTed to.
	// +kubebuilder:validation:Pattern=`^https?://`
	URL string `json:"url"`
	// Disabled stops sending without removing the endpoint.
	// +optional
	Disabled bool `json:"disabled,omitempty"`
	// Headers sent with every request (no credentials: use headersFrom).
	// +optional
	Headers map[string][]string `json:"headers,omitempty"`
	// HeadersFrom are headers whose value lives in a Secret.
	// +listType=map
	// +listMapKey=name
	// +optional
	HeadersFrom []HeaderFromSecret `json:"headersFrom,omitempty"`
	// Timeout of one delivery.
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$`
	// +optional
	Timeout *metav1.Duration `json:"timeout,omitempty"`
	// Threshold of failures before backing off.
	// +kubebuilder:validation:Minimum=0
	// +optional
	Threshold *int32 `json:"threshold,omitempty"`
	// Backoff after threshold failures.
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$`
	// +optional
	Backoff *metav1.Duration `json:"backoff,omitempty"`
	// IgnoredMediaTypes are not sent.
	// +optional
	IgnoredMediaTypes []string `json:"ignoredMediaTypes,omitempty"`
	// IgnoredActions are not sent.
	// +optional
	IgnoredActions []NotificationAction `json:"ignoredActions,omitempty"`
}

// NotificationAction is an event action.
// +kubebuilder:validation:Enum=pull;push;mount;delete
type NotificationAction string

// HeaderFromSecret is a header whose value lives in a Secret.
type HeaderFromSecret struct {
	// Name of the header (letters, digits and "-").
	// +kubebuilder:validation:Pattern=`^[A-Za-z0-9][A-Za-z0-9-]*$`
	Name string `json:"name"`
	// SecretRef holds the header's value.
	SecretRef SecretKeyRef `json:"secretRef"`
}

// RegistryValidation configures validation of pushed content.
type RegistryValidation struct {
	// Disabled turns validation off.
	// +optional
	Disabled bool `json:"disabled,omitempty"`
	// AllowURLs are regular expressions foreign-layer URLs must match.
	// +optional
	AllowURLs []string `json:"allowURLs,omitempty"`
	// DenyURLs are regular expressions foreign-layer URLs must not match.
	// +optional
	DenyURLs []string `json:"denyURLs,omitempty"`
	// IndexPlatforms is which platform images of an index must exist: all,
	// none or list.
	// +kubebuilder:validation:Enum=all;none;list
	// +optional
	IndexPlatforms string `json:"indexPlatforms,omitempty"`
	// IndexPlatformList with indexPlatforms list.
	// +optional
	IndexPlatformList []Platform `json:"indexPlatformList,omitempty"`
}

// Platform is an OCI platform.
type Platform struct {
	// OS, e.g. linux.
	// +kubebuilder:validation:MinLength=1
	OS string `json:"os"`
	// Architecture, e.g. amd64.
	// +kubebuilder:validation:MinLength=1
	Architecture string `json:"architecture"`
}

// RegistryHealth configures health checks.
type RegistryHealth struct {
	// StorageDriver checks the storage backend periodically.
	// +optional
	StorageDriver *StorageDriverHealth `json:"storageDriver,omitempty"`
}

// StorageDriverHealth checks the storage backend.
type StorageDriverHealth struct {
	// Enabled turns the check on.
	Enabled bool `json:"enabled"`
	// Interval between checks (default 10s).
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$`
	// +optional
	Interval *metav1.Duration `json:"interval,omitempty"`
	// Threshold of failures before unhealthy.
	// +kubebuilder:validation:Minimum=0
	// +optional
	Threshold *int32 `json:"threshold,omitempty"`
}

// RegistryMetrics exposes Prometheus metrics.
type RegistryMetrics struct {
	// Enabled serves /metrics on the debug port.
	Enabled bool `json:"enabled"`
	// ServiceMonitor creates a prometheus-operator ServiceMonitor when its
	// CRD exists.
	// +optional
	ServiceMonitor *ServiceMonitorSpec `json:"serviceMonitor,omitempty"`
}

// ServiceMonitorSpec configures the ServiceMonitor.
type ServiceMonitorSpec struct {
	// Enabled creates the ServiceMonitor.
	Enabled bool `json:"enabled"`
	// Interval of scrapes, e.g. 30s.
	// +kubebuilder:validation:Pattern=`^([0-9]+(ms|s|m|h))+$`
	// +optional
	Interval string `json:"interval,omitempty"`
	// Labels of the ServiceMonitor (to match a Prometheus selector).
	// +optional
	Labels map[string]string `json:"labels,omitempty"`
}

// GarbageCollectionPolicy schedules GarbageCollection runs and bounds
// how many finished runs are kept.
//
// +kubebuilder:validation:XValidation:rule="has(self.schedule) || !(has(self.suspend) || has(self.deleteUntagged) || has(self.dryRun) || has(self.timeout) || has(self.gracePeriod))",message="spec.garbageCollection.schedule: required when suspend, deleteUntagged, dryRun, timeout or gracePeriod is set (they shape scheduled runs)"
type GarbageCollectionPolicy struct {
	// schedule in cron syntax (five fields, or @hourly, @daily, ...), in
	// the time zone of the kube-controller-manager. A CronJob creates a
	// GarbageCollection on this schedule; without a schedule there is no
	// CronJob and runs are created by hand.
	// +kubebuilder:validation:MaxLength=128
	// +kubebuilder:validation:Pattern=`^(@(yearly|annually|monthly|weekly|daily|midnight|hourly)|@every ([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+|(((\*|\?|[0-9]{1,2}(-[0-9]{1,2})?|[A-Za-z]{3}(-[A-Za-z]{3})?)(/[0-9]{1,2})?)(,((\*|\?|[0-9]{1,2}(-[0-9]{1,2})?|[A-Za-z]{3}(-[A-Za-z]{3})?)(/[0-9]{1,2})?))*)( +(((\*|\?|[0-9]{1,2}(-[0-9]{1,2})?|[A-Za-z]{3}(-[A-Za-z]{3})?)(/[0-9]{1,2})?)(,((\*|\?|[0-9]{1,2}(-[0-9]{1,2})?|[A-Za-z]{3}(-[A-Za-z]{3})?)(/[0-9]{1,2})?))*)){4})$`
	// +optional
	Schedule string `json:"schedule,omitempty"`
	// suspend stops the schedule from creating runs (the CronJob is
	// suspended); runs already created go on.
	// +optional
	Suspend bool `json:"suspend,omitempty"`
	// deleteUntagged makes scheduled runs also delete manifests no tag
	// reaches.
	// +optional
	DeleteUntagged bool `json:"deleteUntagged,omitempty"`
	// dryRun makes scheduled runs report what they would delete and delete
	// nothing.
	// +optional
	DryRun bool `json:"dryRun,omitempty"`
	// timeout of each scheduled run (GarbageCollection spec.timeout; 1h
	// when unset). At least 10s.
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$`
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('10s')",message="spec.garbageCollection.timeout must be at least 10s"
	// +optional
	Timeout *metav1.Duration `json:"timeout,omitempty"`
	// gracePeriod of each scheduled run (GarbageCollection
	// spec.gracePeriod; 1h when unset): content younger than this is never
	// deleted.
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$`
	// +optional
	GracePeriod *metav1.Duration `json:"gracePeriod,omitempty"`
	// successfulRunsHistoryLimit is how many succeeded GarbageCollections
	// of this Registry are kept (scheduled and manual alike); older ones
	// are deleted with their collector Job and its logs.
	// +kubebuilder:default=3
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100
	// +optional
	SuccessfulRunsHistoryLimit *int32 `json:"successfulRunsHistoryLimit,omitempty"`
	// failedRunsHistoryLimit is how many failed GarbageCollections of this
	// Registry are kept.
	// +kubebuilder:default=1
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100
	// +optional
	FailedRunsHistoryLimit *int32 `json:"failedRunsHistoryLimit,omitempty"`
}

// RegistryService exposes the registry.
type RegistryService struct {
	// Type of the Service.
	// +kubebuilder:default=ClusterIP
	// +kubebuilder:validation:Enum=ClusterIP;NodePort;LoadBalancer
	// +optional
	Type corev1.ServiceType `json:"type,omitempty"`
	// Port of the Service.
	// +kubebuilder:default=5000
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	// +optional
	Port int32 `json:"port,omitempty"`
	// NodePort with type NodePort or LoadBalancer.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	// +optional
	NodePort int32 `json:"nodePort,omitempty"`
	// Annotations of the Service.
	// +optional
	Annotations map[string]string `json:"annotations,omitempty"`
}

// RegistryStatus is the observed state of a Registry.
type RegistryStatus struct {
	// ObservedGeneration is the generation the status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// Conditions: Ready, Progressing, Degraded, ReadOnly, GarbageCollecting.
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// Replicas is the number of registryd pods.
	// +optional
	Replicas int32 `json:"replicas,omitempty"`

	// ReadyReplicas is the number of registryd pods that serve.
	// +optional
	ReadyReplicas int32 `json:"readyReplicas,omitempty"`

	// URL is where the registry is reached inside the cluster.
	// +optional
	URL string `json:"url,omitempty"`

	// Storage is the kind of storage in use (filesystem, emptyDir, ...).
	// +optional
	Storage string `json:"storage,omitempty"`

	// ReadOnly is whether the registry should refuse writes now
	// (spec.readOnly, or a GarbageCollection's hold); the ReadOnly
	// condition says what the replicas report.
	// +optional
	ReadOnly bool `json:"readOnly,omitempty"`

	// LastGarbageCollection summarises the last finished run.
	// +optional
	LastGarbageCollection *LastGarbageCollection `json:"lastGarbageCollection,omitempty"`
}

// LastGarbageCollection summarises a finished GarbageCollection.
type LastGarbageCollection struct {
	// name of the GarbageCollection.
	// +required
	Name string `json:"name"`
	// phase it finished in: Succeeded or Failed.
	// +required
	Phase GarbageCollectionPhase `json:"phase"`
	// completionTime of the run.
	// +optional
	CompletionTime *metav1.Time `json:"completionTime,omitempty"`
	// bytesFreed by the run (0 for a dry run).
	// +optional
	BytesFreed int64 `json:"bytesFreed,omitempty"`
	// writeOutage is how long writes were refused, e.g. "4.2s".
	// +optional
	WriteOutage string `json:"writeOutage,omitempty"`
	// reason the run failed.
	// +optional
	Reason string `json:"reason,omitempty"`
}

// Registry is an OCI registry run by Berth.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=reg
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Replicas",type=integer,JSONPath=`.status.readyReplicas`
// +kubebuilder:printcolumn:name="Storage",type=string,JSONPath=`.status.storage`
// +kubebuilder:printcolumn:name="URL",type=string,JSONPath=`.status.url`
// +kubebuilder:printcolumn:name="Read-Only",type=string,JSONPath=`.status.conditions[?(@.type=="ReadOnly")].status`
// +kubebuilder:printcolumn:name="Last-GC",type=date,JSONPath=`.status.lastGarbageCollection.completionTime`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type Registry struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   RegistrySpec   `json:"spec,omitempty"`
	Status RegistryStatus `json:"status,omitempty"`
}

// RegistryList is a list of Registry.
//
// +kubebuilder:object:root=true
type RegistryList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Registry `json:"items"`
}

func init() {
	SchemeBuilder.Register(&Registry{}, &RegistryList{})
}
