package builders

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"

	berthv1alpha1 "github.com/berth-dev/berth/api/v1alpha1"
	"github.com/berth-dev/berth/registryd/configuration"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

func ref(name, key string) *berthv1alpha1.SecretKeyRef {
	return &berthv1alpha1.SecretKeyRef{Name: name, Key: key}
}

func registry(spec berthv1alpha1.RegistrySpec) *berthv1alpha1.Registry {
	return &berthv1alpha1.Registry{
		ObjectMeta: metav1.ObjectMeta{Name: "example", Namespace: "registries"},
		Spec:       spec,
	}
}

// goldenCases are the Registries whose config.yml and Deployment are
// checked byte for byte against testdata/<name>.{config.yml,deployment.yaml}.golden.
var goldenCases = map[string]berthv1alpha1.RegistrySpec{
	"filesystem-pvc": {
		Storage: berthv1alpha1.RegistryStorage{
			Filesystem: &berthv1alpha1.FilesystemStorage{
				Size: ptr.To(resource.MustParse("20Gi")), StorageClassName: ptr.To("fast"),
				AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			},
			Delete:        &berthv1alpha1.StorageDelete{Enabled: true},
			UploadPurging: &berthv1alpha1.UploadPurging{Age: &berthv1alpha1.Duration{Duration: 72 * 3600e9}},
		},
		Resources:      corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("128Mi")}},
		NodeSelector:   map[string]string{"disk": "ssd"},
		PodAnnotations: map[string]string{"team": "platform"},
	},
	"s3": {
		Replicas: ptr.To[int32](3),
		Image:    "registry.example/registryd:v1",
		Storage: berthv1alpha1.RegistryStorage{
			S3: &berthv1alpha1.S3Storage{
				Bucket: "images", Region: "eu-west-1", RegionEndpoint: "https://s3.example.com",
				ForcePathStyle: true, RootDirectory: "/registry",
				AccessKeySecretRef: ref("s3-creds", "accessKey"), SecretKeySecretRef: ref("s3-creds", "secretKey"),
			},
			Cache:    &berthv1alpha1.StorageCache{BlobDescriptor: "inmemory"},
			Redirect: &berthv1alpha1.StorageRedirect{Disable: true},
		},
	},
	"azure": {
		Storage: berthv1alpha1.RegistryStorage{Azure: &berthv1alpha1.AzureStorage{
			AccountName: "berth", Container: "registry", AccountKeySecretRef: ref("azure-creds", "accountKey"),
		}},
	},
	"gcs": {
		Storage: berthv1alpha1.RegistryStorage{GCS: &berthv1alpha1.GCSStorage{
			Bucket: "images", KeyFileSecretRef: ref("gcs-key", "key.json"),
		}},
	},
	"htpasswd-users": {
		Storage: berthv1alpha1.RegistryStorage{EmptyDir: &berthv1alpha1.EmptyDirStorage{}},
		Auth: &berthv1alpha1.RegistryAuth{Htpasswd: &berthv1alpha1.HtpasswdAuth{
			Realm: "Berth",
			Users: []berthv1alpha1.HtpasswdUser{
				{Username: "alice", PasswordSecretRef: *ref("alice", "password")},
				{Username: "bob", PasswordSecretRef: *ref("bob", "password")},
			},
		}},
	},
	"token": {
		Storage: berthv1alpha1.RegistryStorage{InMemory: &berthv1alpha1.InMemoryStorage{}},
		Auth: &berthv1alpha1.RegistryAuth{Token: &berthv1alpha1.TokenAuth{
			Realm: "https://auth.example.com/token", Service: "registry", Issuer: "auth.example.com",
			JWKSSecretRef: ref("token-keys", "jwks.json"),
		}},
	},
	"tls-client-ca": {
		Storage: berthv1alpha1.RegistryStorage{EmptyDir: &berthv1alpha1.EmptyDirStorage{}},
		TLS: &berthv1alpha1.RegistryTLS{
			SecretName: "registry-tls", ClientCASecretRef: ref("client-ca", "ca.crt"),
			MinimumVersion: "tls1.3", ClientAuth: "verify-client-cert-if-given",
		},
		Service: berthv1alpha1.RegistryService{Port: 443, Type: corev1.ServiceTypeLoadBalancer},
	},
	"proxy": {
		Storage: berthv1alpha1.RegistryStorage{EmptyDir: &berthv1alpha1.EmptyDirStorage{}},
		Proxy: &berthv1alpha1.RegistryProxy{
			RemoteURL: "https://registry-1.docker.io", TTL: &berthv1alpha1.Duration{Duration: 24 * 3600e9},
			UsernameSecretRef: ref("hub", "username"), PasswordSecretRef: ref("hub", "password"),
		},
	},
	"notifications": {
		Storage: berthv1alpha1.RegistryStorage{EmptyDir: &berthv1alpha1.EmptyDirStorage{}},
		Notifications: &berthv1alpha1.RegistryNotifications{Endpoints: []berthv1alpha1.NotificationEndpoint{{
			Name: "audit", URL: "https://audit.example.com/events",
			Headers:        map[string][]string{"X-Source": {"berth"}},
			HeadersFrom:    []berthv1alpha1.HeaderFromSecret{{Name: "Authorization", SecretRef: *ref("audit-token", "header")}},
			Timeout:        &berthv1alpha1.Duration{Duration: 5e9},
			Threshold:      ptr.To[int32](5),
			Backoff:        &berthv1alpha1.Duration{Duration: 10e9},
			IgnoredActions: []berthv1alpha1.NotificationAction{"pull"},
		}}},
		Metrics: &berthv1alpha1.RegistryMetrics{Enabled: true},
	},
	"read-only": {
		ReadOnly: true,
		Storage:  berthv1alpha1.RegistryStorage{Filesystem: &berthv1alpha1.FilesystemStorage{}},
	},
	"extra-config": {
		Storage:     berthv1alpha1.RegistryStorage{InMemory: &berthv1alpha1.InMemoryStorage{}},
		Log:         &berthv1alpha1.RegistryLog{Level: "debug", Formatter: "json"},
		ExtraConfig: &apiextensionsv1.JSON{Raw: []byte(`{"health":{"tcp":[{"addr":"redis:6379","interval":"30s"}]},"storage":{"tag":{"concurrencylimit":8}}}`)},
	},
}

func TestGolden(t *testing.T) {
	for name, spec := range goldenCases {
		t.Run(name, func(t *testing.T) {
			reg := registry(spec)
			rendered, err := Render(reg, reg.Spec.ReadOnly)
			if err != nil {
				t.Fatalf("Render: %v", err)
			}
			checkGolden(t, name+".config.yml", rendered.Config)

			// The file as registryd reads it, with the pod's REGISTRY_*
			// variables set: Parse (which validates) must accept it.
			cfg, err := configuration.ParseWithEnv(bytes.NewReader(rendered.Config), PlaceholderEnv(rendered.Env))
			if err != nil {
				t.Fatalf("registryd refuses the rendered config.yml: %v", err)
			}
			if err := cfg.Validate(); err != nil {
				t.Fatalf("Validate: %v", err)
			}
			if cfg.Storage.Maintenance.ReadOnly.Enabled != reg.Spec.ReadOnly {
				t.Errorf("readonly = %v, want %v", cfg.Storage.Maintenance.ReadOnly.Enabled, reg.Spec.ReadOnly)
			}

			dep := Deployment(reg, rendered, "berth/registryd:test", Checksum(rendered, SecretRefs(reg), nil))
			out, err := yaml.Marshal(dep)
			if err != nil {
				t.Fatal(err)
			}
			checkGolden(t, name+".deployment.yaml", out)
		})
	}
}

func checkGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./controllers/builders -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file (go test ./controllers/builders -update to accept):\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}
