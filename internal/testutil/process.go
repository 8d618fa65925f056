package testutil

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// Registry is one registry process, Distribution's `registry` or
// registryd (same command line, same config.yml), serving on loopback.
type Registry struct {
	Name string // for messages
	Addr string // host:port
	// ConfigPath is the config.yml the process was started with; registryd
	// applies live keys (read-only mode, log level) when it changes.
	ConfigPath string

	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited
	err  error         // Wait's result, valid once done is closed
	log  *LockedBuffer
}

// FreeAddr returns a loopback address nothing listens on right now.
func FreeAddr(t testing.TB) string {
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

// StartRegistry runs `bin serve config.yml` with the configuration
// config(addr) returns for a free loopback address, and waits until GET
// /v2/ answers 200: at most 300 polls 20ms apart, failing at once if the
// process exits. The process is stopped by its PID when the test ends,
// unless Stop was called before.
func StartRegistry(t testing.TB, name, bin string, config func(addr string) string) *Registry {
	t.Helper()
	addr := FreeAddr(t)
	cfgPath := filepath.Join(t.TempDir(), "config.yml")
	if err := os.WriteFile(cfgPath, []byte(config(addr)), 0o600); err != nil {
		t.Fatal(err)
	}
	r := &Registry{Name: name, Addr: addr, ConfigPath: cfgPath, done: make(chan struct{}), log: &LockedBuffer{}}
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
	t.Cleanup(func() { r.Stop(t) })

	client := &http.Client{Timeout: time.Second}
	err := Poll(func() error {
		select {
		case <-r.done:
			return Permanent(fmt.Errorf("exited before serving: %w", r.err))
		default:
		}
		return ServesV2(client, r.URL(""))
	}, Every(20*time.Millisecond))
	if err != nil {
		t.Fatalf("%s on %s: %v\n%s", name, addr, err, r.log)
	}
	return r
}

// Stop sends SIGTERM and waits for the process to exit, killing it after
// 10s. Stopping twice is harmless.
func (r *Registry) Stop(t testing.TB) {
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
		t.Errorf("%s did not stop on SIGTERM\n%s", r.Name, r.log)
	}
}

// URL is the address of path on the registry.
func (r *Registry) URL(path string) string { return "http://" + r.Addr + path }

// Pid is the process's ID.
func (r *Registry) Pid() int { return r.cmd.Process.Pid }

// Log is what the process wrote to stdout and stderr so far.
func (r *Registry) Log() string { return r.log.String() }

// FilesystemConfig is a config.yml that both registryd and the Distribution
// registry serve: filesystem storage under root, delete enabled, plain HTTP
// on addr, quiet logs and a fixed http.secret (Distribution signs upload
// state with it).
func FilesystemConfig(root, addr string) string {
	return fmt.Sprintf(`version: 0.1
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
  secret: berth-test-secret
`, root, addr)
}

// Process is a peer process a test started (an ACME server, a second
// registryd with a custom environment), stopped by its PID.
type Process struct {
	Name string
	cmd  *exec.Cmd
	done chan struct{}
	err  error
	log  *LockedBuffer
}

// StartProcess starts cmd (its output collected) and waits until ready
// reports true: at most 500 polls 20ms apart, failing at once if the
// process exits. The process is stopped when the test ends, unless Stop
// was called before.
func StartProcess(t testing.TB, name string, cmd *exec.Cmd, ready func() bool) *Process {
	t.Helper()
	p := &Process{Name: name, cmd: cmd, done: make(chan struct{}), log: &LockedBuffer{}}
	cmd.Stdout, cmd.Stderr = p.log, p.log
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", name, err)
	}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() { p.Stop(t) })
	err := Poll(func() error {
		select {
		case <-p.done:
			return Permanent(fmt.Errorf("exited before it was ready: %w", p.err))
		default:
		}
		if !ready() {
			return errNotYet
		}
		return nil
	}, Every(20*time.Millisecond))
	if err != nil {
		t.Fatalf("%s: %v\n%s", name, err, p.log)
	}
	return p
}

// Stop sends SIGTERM, waits for the process to exit, killing it after 10s.
// Stopping twice is harmless.
func (p *Process) Stop(t testing.TB) {
	t.Helper()
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
		t.Errorf("%s did not stop on SIGTERM\n%s", p.Name, p.log)
	}
}

// Log is what the process wrote so far.
func (p *Process) Log() string { return p.log.String() }

// ServesV2 returns nil when the registry at base ("http://host:port")
// answers GET /v2/ with 200, else why not: the condition a test polls
// while a registry starts.
func ServesV2(client *http.Client, base string) error {
	resp, err := client.Get(base + "/v2/")
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET /v2/: %s", resp.Status)
	}
	return nil
}
