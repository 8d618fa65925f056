package server

import (
	"slices"
	"testing"

	"github.com/berth-dev/berth/registryd/configuration"
)

// The operator refuses a Registry whose storage driver is not in
// configuration.Implemented, and the daemon can only build the drivers of
// its driver map: the two lists must be the same, or the operator either
// rolls out pods that crash or refuses a driver registryd has.
func TestImplementedStorageDriversAreTheRegisteredOnes(t *testing.T) {
	registered := StorageDriverNames()
	listed := slices.Sorted(slices.Values(configuration.Implemented().StorageDrivers))
	if !slices.Equal(registered, listed) {
		t.Fatalf("driver map registers %q, configuration.Implemented lists %q", registered, listed)
	}
}

func TestSupportedIsImplemented(t *testing.T) {
	got, want := Supported(), configuration.Implemented()
	if !slices.Equal(got.StorageDrivers, want.StorageDrivers) || !slices.Equal(got.Features, want.Features) {
		t.Fatalf("Supported() = %+v, want configuration.Implemented() = %+v", got, want)
	}
}
