package compat

import (
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/testutil"
	"github.com/berth-dev/berth/registryd/configuration"
	"github.com/berth-dev/berth/registryd/server"
	"github.com/berth-dev/berth/registryd/storage/driver"
)

// registry is a running registry process.
type registry struct {
	*testutil.Registry
	name string
	addr string
}

// startRegistry serves root with bin and waits until it answers.
func startRegistry(t *testing.T, name, bin, root string) *registry {
	t.Helper()
	return startOn(t, name, bin, filesystemSection(root))
}

// startOn serves the storage section (of config.yml, under storage:) with
// bin and waits until it answers.
func startOn(t *testing.T, name, bin, section string) *registry {
	t.Helper()
	r := testutil.StartRegistry(t, name, bin, func(addr string) string {
		return testutil.RegistryConfig(section, addr, "")
	})
	return &registry{Registry: r, name: r.Name, addr: r.Addr}
}

// storageDriver opens the storage section with registryd's own driver, to
// look at what a registry stored.
func storageDriver(t *testing.T, section string) driver.StorageDriver {
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

func filesystemSection(root string) string {
	return "  filesystem:\n    rootdirectory: " + root + "\n"
}

func (r *registry) stop(t *testing.T)      { r.Stop(t) }
func (r *registry) url(path string) string { return r.URL(path) }
