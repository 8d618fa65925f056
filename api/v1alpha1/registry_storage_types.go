package v1alpha1

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

// RegistryStorage selects exactly one storage backend and configures the
// storage layer.
//
// +kubebuilder:validation:XValidation:rule="[has(self.filesystem), has(self.emptyDir), has(self.inmemory), has(self.s3), has(self.azure), has(self.gcs)].filter(x, x).size() == 1",message="spec.storage: exactly one of filesystem, emptyDir, inmemory, s3, azure or gcs must be set"
type RegistryStorage struct {
	// filesystem keeps data on a PersistentVolumeClaim the operator creates.
	// +optional
	Filesystem *FilesystemStorage `json:"filesystem,omitempty"`

	// emptyDir keeps data in a pod-local emptyDir volume: lost with the pod.
	// +optional
	EmptyDir *EmptyDirStorage `json:"emptyDir,omitempty"`

	// inmemory keeps data in registryd's memory: for tests only.
	// +optional
	InMemory *InMemoryStorage `json:"inmemory,omitempty"`

	// s3 keeps data in an S3 (or S3-compatible) bucket.
	// +optional
	S3 *S3Storage `json:"s3,omitempty"`

	// azure keeps data in an Azure Blob Storage container.
	// +optional
	Azure *AzureStorage `json:"azure,omitempty"`

	// gcs keeps data in a Google Cloud Storage bucket.
	// +optional
	GCS *GCSStorage `json:"gcs,omitempty"`

	// delete allows deleting manifests and blobs by digest.
	// +optional
	Delete *StorageDelete `json:"delete,omitempty"`

	// cache configures the blob descriptor cache.
	// +optional
	Cache *StorageCache `json:"cache,omitempty"`

	// uploadPurging removes abandoned uploads; on with registryd's defaults
	// when unset.
	// +optional
	UploadPurging *UploadPurging `json:"uploadPurging,omitempty"`

	// redirect configures redirects of blob downloads to the backend.
	// +optional
	Redirect *StorageRedirect `json:"redirect,omitempty"`
}

// FilesystemStorage is registry storage on a PersistentVolumeClaim.
type FilesystemStorage struct {
	// size of the volume.
	// +kubebuilder:default="10Gi"
	// +optional
	Size *resource.Quantity `json:"size,omitempty"`

	// storageClassName of the claim; the cluster default when empty.
	// +optional
	StorageClassName *string `json:"storageClassName,omitempty"`

	// accessModes of the claim. ReadWriteOnce limits the Registry to one
	// replica and the Recreate strategy.
	// +kubebuilder:default={"ReadWriteOnce"}
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=4
	// +optional
	AccessModes []corev1.PersistentVolumeAccessMode `json:"accessModes,omitempty"`
}

// EmptyDirStorage is registry storage in a pod-local emptyDir volume.
type EmptyDirStorage struct {
	// sizeLimit of the volume.
	// +optional
	SizeLimit *resource.Quantity `json:"sizeLimit,omitempty"`
}

// InMemoryStorage keeps everything in registryd's memory.
type InMemoryStorage struct{}

// S3Storage is registry storage in an S3 bucket.
//
// +kubebuilder:validation:XValidation:rule="has(self.accessKeySecretRef) == has(self.secretKeySecretRef)",message="spec.storage.s3: set both accessKeySecretRef and secretKeySecretRef, or neither (instance credentials)"
type S3Storage struct {
	// bucket name.
	// +kubebuilder:validation:MinLength=1
	// +required
	Bucket string `json:"bucket"`
	// region of the bucket.
	// +kubebuilder:validation:MinLength=1
	// +required
	Region string `json:"region"`
	// regionEndpoint is the endpoint of an S3-compatible service.
	// +kubebuilder:validation:Pattern=`^https?://`
	// +optional
	RegionEndpoint string `json:"regionEndpoint,omitempty"`
	// forcePathStyle addresses the bucket in the path, not the host name.
	// +optional
	ForcePathStyle bool `json:"forcePathStyle,omitempty"`
	// encrypt objects at rest on the server side.
	// +optional
	Encrypt bool `json:"encrypt,omitempty"`
	// keyID is the KMS key of server-side encryption.
	// +optional
	KeyID string `json:"keyID,omitempty"`
	// secure uses HTTPS to the endpoint (default true).
	// +optional
	Secure *bool `json:"secure,omitempty"`
	// skipVerify skips TLS verification of the endpoint.
	// +optional
	SkipVerify bool `json:"skipVerify,omitempty"`
	// chunkSize of multipart uploads, at least 5 MiB.
	// +kubebuilder:validation:Minimum=5242880
	// +optional
	ChunkSize *int64 `json:"chunkSize,omitempty"`
	// rootDirectory is the key prefix of all registry data.
	// +optional
	RootDirectory string `json:"rootDirectory,omitempty"`
	// storageClass of the objects.
	// +optional
	StorageClass string `json:"storageClass,omitempty"`
	// accessKeySecretRef is the access key ID.
	// +optional
	AccessKeySecretRef *SecretKeyRef `json:"accessKeySecretRef,omitempty"`
	// secretKeySecretRef is the secret access key.
	// +optional
	SecretKeySecretRef *SecretKeyRef `json:"secretKeySecretRef,omitempty"`
}

// AzureStorage is registry storage in an Azure Blob Storage container.
// Without accountKeySecretRef or clientSecret the driver uses the default
// Azure credential chain (workload identity).
//
// +kubebuilder:validation:XValidation:rule="!(has(self.accountKeySecretRef) && has(self.clientSecret))",message="spec.storage.azure: set at most one of accountKeySecretRef and clientSecret"
type AzureStorage struct {
	// accountName of the storage account.
	// +kubebuilder:validation:MinLength=1
	// +required
	AccountName string `json:"accountName"`
	// container name.
	// +kubebuilder:validation:MinLength=1
	// +required
	Container string `json:"container"`
	// realm is the storage domain, core.windows.net by default.
	// +optional
	Realm string `json:"realm,omitempty"`
	// serviceURL overrides the blob service URL (e.g. an emulator).
	// +kubebuilder:validation:Pattern=`^https?://`
	// +optional
	ServiceURL string `json:"serviceURL,omitempty"`
	// rootDirectory is the blob prefix of all registry data.
	// +optional
	RootDirectory string `json:"rootDirectory,omitempty"`
	// accountKeySecretRef is the shared account key.
	// +optional
	AccountKeySecretRef *SecretKeyRef `json:"accountKeySecretRef,omitempty"`
	// clientSecret authenticates as an Entra ID application.
	// +optional
	ClientSecret *AzureClientSecret `json:"clientSecret,omitempty"`
}

// AzureClientSecret is an Entra ID application's credentials.
type AzureClientSecret struct {
	// clientID of the application.
	// +kubebuilder:validation:MinLength=1
	// +required
	ClientID string `json:"clientID"`
	// tenantID of the application.
	// +kubebuilder:validation:MinLength=1
	// +required
	TenantID string `json:"tenantID"`
	// secretRef is the client secret.
	// +required
	SecretRef SecretKeyRef `json:"secretRef"`
}

// GCSStorage is registry storage in a Google Cloud Storage bucket. Without
// keyFileSecretRef the driver uses application default credentials.
type GCSStorage struct {
	// bucket name.
	// +kubebuilder:validation:MinLength=1
	// +required
	Bucket string `json:"bucket"`
	// rootDirectory is the object prefix of all registry data.
	// +optional
	RootDirectory string `json:"rootDirectory,omitempty"`
	// chunkSize of uploads, a multiple of 262144.
	// +kubebuilder:validation:Minimum=262144
	// +kubebuilder:validation:MultipleOf=262144
	// +optional
	ChunkSize *int64 `json:"chunkSize,omitempty"`
	// keyFileSecretRef is a service account key (JSON), mounted as a file.
	// +optional
	KeyFileSecretRef *SecretKeyRef `json:"keyFileSecretRef,omitempty"`
}

// StorageDelete allows deleting content by digest.
type StorageDelete struct {
	// enabled allows DELETE of manifests and blobs.
	// +required
	Enabled bool `json:"enabled"`
}

// StorageCache configures the blob descriptor cache.
type StorageCache struct {
	// blobDescriptor is the cache kind; only inmemory is typed (redis needs
	// extraConfig).
	// +kubebuilder:validation:Enum=inmemory
	// +required
	BlobDescriptor string `json:"blobDescriptor"`
	// blobDescriptorSize bounds the inmemory cache (0 means unbounded).
	// +kubebuilder:validation:Minimum=0
	// +optional
	BlobDescriptorSize *int32 `json:"blobDescriptorSize,omitempty"`
}

// UploadPurging removes abandoned uploads.
type UploadPurging struct {
	// enabled turns purging on (default true).
	// +optional
	Enabled *bool `json:"enabled,omitempty"`
	// age after which an upload is abandoned (default 168h).
	// +optional
	Age *Duration `json:"age,omitempty"`
	// interval between purges (default 24h).
	// +optional
	Interval *Duration `json:"interval,omitempty"`
	// dryRun logs what would be purged.
	// +optional
	DryRun bool `json:"dryRun,omitempty"`
}

// StorageRedirect configures redirects to the storage backend.
type StorageRedirect struct {
	// disable serves blobs through registryd instead of redirecting.
	// +required
	Disable bool `json:"disable"`
}
