package testutil

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Storage is a storage backend tests run registryd (the binary) on.
type Storage struct {
	// Name is the driver's name: filesystem, inmemory, azure, s3 or gcs.
	Name string
	// Section returns the storage driver's section of config.yml, two
	// spaces deep (under storage:), for a fresh, empty store: a new
	// directory, bucket or container. The object stores' emulators start
	// on first use (see S3, AzureEmulator, GCS).
	Section func(t testing.TB) string
}

// Storages are every backend registryd has, in the reference's order.
func Storages() []Storage {
	return []Storage{
		{Name: "filesystem", Section: func(t testing.TB) string {
			return fmt.Sprintf("  filesystem:\n    rootdirectory: %s\n", t.TempDir())
		}},
		{Name: "inmemory", Section: func(testing.TB) string { return "  inmemory: {}\n" }},
		{Name: "azure", Section: AzureSection},
		{Name: "s3", Section: S3Section},
		{Name: "gcs", Section: GCSSection},
	}
}

// ObjectStorages are the backends whose emulators the tests run.
func ObjectStorages() []Storage { return Storages()[2:] }

// S3Section is storage.s3 for a new bucket of the package's versitygw,
// below rootdirectory /registry.
func S3Section(t testing.TB) string {
	srv := S3(t)
	bucket := UniqueName("registry")
	srv.CreateBucket(t, bucket)
	return fmt.Sprintf(`  s3:
    accesskey: %s
    secretkey: %s
    region: %s
    regionendpoint: %s
    forcepathstyle: true
    secure: false
    bucket: %s
    rootdirectory: /registry
`, srv.AccessKey, srv.SecretKey, srv.Region, srv.Endpoint(), bucket)
}

// AzureSection is storage.azure for a container of the package's Azurite
// that does not exist yet (the driver creates it), configured as the
// reference shows it: top-level accountname and accountkey.
func AzureSection(t testing.TB) string {
	az := AzureEmulator(t)
	return fmt.Sprintf(`  azure:
    accountname: %s
    accountkey: %s
    container: %s
    serviceurl: %s
`, az.AccountName, az.AccountKey, UniqueName("registry"), az.ServiceURL())
}

// GCSSection is storage.gcs for a new bucket of the package's
// fake-gcs-server, below rootdirectory /registry, with a service account
// key file (GCSKeyFile) to sign redirect URLs. registryd finds the
// emulator through STORAGE_EMULATOR_HOST, which GCS sets in this process's
// environment, so that the registryd it starts inherits it.
func GCSSection(t testing.TB) string {
	g := GCS(t)
	bucket := UniqueName("registry")
	g.CreateBucket(t, bucket)
	return fmt.Sprintf(`  gcs:
    bucket: %s
    keyfile: %s
    rootdirectory: /registry
`, bucket, GCSKeyFile(t))
}

// GCSKey is a service account key with a fresh RSA key, in the format
// the Google Cloud console hands out. The emulator checks no signature;
// the driver signs URLs with it.
func GCSKey(t testing.TB) []byte {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	//nolint:gosec // G101: a key generated above for the emulator, not a credential
	b, err := json.Marshal(map[string]string{
		"type":           "service_account",
		"project_id":     "berth",
		"private_key_id": randomHex(8),
		"private_key":    string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})),
		"client_email":   "registry@berth.iam.gserviceaccount.com",
		"client_id":      "1",
		"token_uri":      "http://127.0.0.1:1/token",
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// GCSKeyFile writes a GCSKey and returns its path.
func GCSKeyFile(t testing.TB) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "key.json")
	if err := os.WriteFile(p, GCSKey(t), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// RegistryConfig is a config.yml both registryd and Distribution read:
// the storage section given, delete enabled, plain HTTP on addr, quiet
// logs, a fixed http.secret, and extra (top-level YAML, or "") appended.
func RegistryConfig(section, addr, extra string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\nstorage:\n%s  delete:\n    enabled: true\nhttp:\n  addr: %s\n  secret: berth-test-secret\n", section, addr)
	b.WriteString(extra)
	return b.String()
}
