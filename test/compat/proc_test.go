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
	r := testutil.StartRegistry(t, name, bin, func(addr string) string {
		return testutil.FilesystemConfig(root, addr)
	})
	return &registry{Registry: r, name: r.Name, addr: r.Addr}
}

func (r *registry) stop(t *testing.T)      { r.Stop(t) }
func (r *registry) url(path string) string { return r.URL(path) }
