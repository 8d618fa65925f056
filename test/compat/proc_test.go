package compat

import (
	"fmt"
	"testing"

	"github.com/berth-dev/berth/internal/testutil"
)

// config is the config.yml both registries are started with: the same
// file, so the test also shows registryd reads Distribution's.
const config = `version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: %s
  delete:
    enabled: true
http:
  addr: %s
  secret: compat-test-secret
`

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
		return fmt.Sprintf(config, root, addr)
	})
	return &registry{Registry: r, name: r.Name, addr: r.Addr}
}

func (r *registry) stop(t *testing.T)      { r.Stop(t) }
func (r *registry) url(path string) string { return r.URL(path) }
