package compat

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"
)

// registry is one registry process (Distribution's `registry` or
// registryd, which take the same command line and config.yml) serving a
// filesystem root on loopback.
type registry struct {
	name string
	addr string
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited
	err  error         // Wait's result, valid after done
	log  *lockedBuffer
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

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

// freeAddr returns a loopback address nothing listens on right now.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}

// startRegistry runs `bin serve config.yml` over root and waits until
// /v2/ answers. The process is stopped at the end of the test unless
// stopped before.
func startRegistry(t *testing.T, name, bin, root string) *registry {
	t.Helper()
	addr := freeAddr(t)
	cfgPath := filepath.Join(t.TempDir(), "config.yml")
	if err := os.WriteFile(cfgPath, fmt.Appendf(nil, config, root, addr), 0o600); err != nil {
		t.Fatal(err)
	}
	r := &registry{name: name, addr: addr, done: make(chan struct{}), log: &lockedBuffer{}}
	r.cmd = exec.Command(bin, "serve", cfgPath)
	r.cmd.Stdout = r.log
	r.cmd.Stderr = r.log
	if err := r.cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", name, err)
	}
	go func() {
		r.err = r.cmd.Wait()
		close(r.done)
	}()
	t.Cleanup(func() { r.stop(t) })

	// Poll /v2/ until it answers: at most 300 attempts 20ms apart (6s),
	// failing at once if the process exits.
	client := &http.Client{Timeout: time.Second}
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for range 300 {
		resp, err := client.Get("http://" + addr + "/v2/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return r
			}
		}
		select {
		case <-r.done:
			t.Fatalf("%s exited before serving: %v\n%s", name, r.err, r.log)
		case <-tick.C:
		}
	}
	t.Fatalf("%s did not answer on %s\n%s", name, addr, r.log)
	return nil
}

// stop sends SIGTERM to the process and waits for it to exit (SIGKILL
// after 10s). Stopping twice is harmless.
func (r *registry) stop(t *testing.T) {
	t.Helper()
	select {
	case <-r.done:
		return
	default:
	}
	_ = r.cmd.Process.Signal(syscall.SIGTERM)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	select {
	case <-r.done:
	case <-ctx.Done():
		_ = r.cmd.Process.Kill()
		<-r.done
		t.Errorf("%s did not stop on SIGTERM\n%s", r.name, r.log)
	}
}

func (r *registry) url(path string) string { return "http://" + r.addr + path }
