// Package storagetest builds storage drivers in the test process the way
// registryd builds them: from a config.yml storage section
// (testutil.Storage), through configuration.Parse and
// server.NewStorageDriver. It is a package of its own so that testutil,
// which registryd/server's own tests may use, does not import the server.
package storagetest

import (
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/testutil"
	"github.com/berth-dev/berth/registryd/configuration"
	"github.com/berth-dev/berth/registryd/server"
	"github.com/berth-dev/berth/registryd/storage/driver"
)

// NewDriver returns a driver over a fresh, empty store of s.
func NewDriver(t testing.TB, s testutil.Storage) driver.StorageDriver {
	t.Helper()
	return FromSection(t, s.Section(t))
}

// FromSection returns the driver the storage section describes.
func FromSection(t testing.TB, section string) driver.StorageDriver {
	t.Helper()
	cfg, err := configuration.Parse(strings.NewReader(testutil.RegistryConfig(section, "127.0.0.1:0", "")))
	if err != nil {
		t.Fatal(err)
	}
	d, err := server.NewStorageDriver(&cfg.Storage)
	if err != nil {
		t.Fatal(err)
	}
	return d
}
