package compat

import (
	"fmt"
	"testing"

	"github.com/berth-dev/berth/internal/testutil"
	"github.com/berth-dev/berth/registryd/storage/driver/azure"
)

func TestMain(m *testing.M) { testutil.Main(m) }

// The object names are Distribution's too: a bucket written through one
// registry is served by the other, byte for byte, on S3 (versitygw) and
// Azure (Azurite). Distribution's azure driver needs the container to exist
// and credentials.type shared_key (with the top-level accountkey alone it
// panics, "invalid credentials type"), and its SAS redirects are https-only
// (Azurite, on http, refuses them with 403), so the Azure case creates the
// container first, names the type and turns redirects off; registryd reads
// either form and signs http SAS URLs for an http service.
func TestObjectStoresShared(t *testing.T) {
	dist, regd := binaries(t)
	sections := map[string]func(t testing.TB) string{
		"s3":    testutil.S3Section,
		"azure": azureForDistribution,
		// Not gcs: Distribution's gcs driver sends uploads to
		// www.googleapis.com whatever STORAGE_EMULATOR_HOST says.
	}
	for name, section := range sections {
		t.Run(name+"/distribution-to-registryd", func(t *testing.T) {
			roundTripOn(t, section(t), "distribution", dist, "registryd", regd)
		})
		t.Run(name+"/registryd-to-distribution", func(t *testing.T) {
			roundTripOn(t, section(t), "registryd", regd, "distribution", dist)
		})
	}
}

// azureForDistribution is an azure section with an existing container,
// credentials.type shared_key and redirects off.
func azureForDistribution(t testing.TB) string {
	az := testutil.AzureEmulator(t)
	container := testutil.UniqueName("compat")
	// registryd's driver creates the container when it starts.
	if _, err := azure.New(t.Context(), azure.Parameters{
		AccountName: az.AccountName, AccountKey: az.AccountKey, Container: container, ServiceURL: az.ServiceURL(),
	}); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("  azure:\n    accountname: %s\n    accountkey: %s\n    container: %s\n    serviceurl: %s\n    credentials:\n      type: shared_key\n  redirect:\n    disable: true\n",
		az.AccountName, az.AccountKey, container, az.ServiceURL())
}
