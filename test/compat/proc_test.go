package compat

import (
	"testing"

	"github.com/berth-dev/berth/internal/testutil"
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

func filesystemSection(root string) string {
	return "  filesystem:\n    rootdirectory: " + root + "\n"
}

func (r *registry) stop(t *testing.T)      { r.Stop(t) }
func (r *registry) url(path string) string { return r.URL(path) }
