package testutil

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// RedisServer is a redis-server process (Debian's, installed by
// hack/install-redis.sh) serving on a free loopback port, with no
// persistence, in its own temporary directory.
type RedisServer struct {
	// Addr is host:port of the plain port; "" when only TLS is served.
	Addr string
	// TLSAddr is host:port of the TLS port, when started with TLS.
	TLSAddr string
	// Password is requirepass, if any.
	Password string

	cmd  *exec.Cmd
	dir  string
	done chan struct{}
	err  error
	log  *LockedBuffer
}

// RedisOptions tune StartRedis.
type RedisOptions struct {
	// Password sets requirepass.
	Password string
	// TLS serves TLS only, with this certificate, key and client CA; when
	// ClientCA is set clients must present a certificate it signed.
	TLSCert, TLSKey, TLSClientCA string
}

// redisBinary is $REDIS_SERVER or what hack/install-redis.sh prints.
func redisBinary() (string, error) { return LookupHackTool("REDIS_SERVER", "install-redis.sh") }

// StartRedis starts a redis-server and waits until it answers PING (at
// most 300 polls 20ms apart, failing at once if it exits). Stop it with
// Stop; tests use Redis, which stops it when the test ends.
func StartRedis(o RedisOptions) (*RedisServer, error) {
	bin, err := redisBinary()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "berth-redis-")
	if err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	r := &RedisServer{Password: o.Password, dir: dir, done: make(chan struct{}), log: &LockedBuffer{}}
	args := []string{"--bind", "127.0.0.1", "--dir", dir, "--save", "", "--appendonly", "no", "--daemonize", "no", "--loglevel", "warning", "--protected-mode", "no"}
	if o.TLSCert != "" {
		r.TLSAddr = "127.0.0.1:" + strconv.Itoa(port)
		args = append(args, "--port", "0", "--tls-port", strconv.Itoa(port), "--tls-cert-file", o.TLSCert, "--tls-key-file", o.TLSKey)
		if o.TLSClientCA != "" {
			args = append(args, "--tls-ca-cert-file", o.TLSClientCA, "--tls-auth-clients", "yes")
		} else {
			args = append(args, "--tls-auth-clients", "no")
		}
	} else {
		r.Addr = "127.0.0.1:" + strconv.Itoa(port)
		args = append(args, "--port", strconv.Itoa(port))
	}
	if o.Password != "" {
		args = append(args, "--requirepass", o.Password)
	}
	r.cmd = exec.Command(bin, args...)
	r.cmd.Stdout, r.cmd.Stderr = r.log, r.log
	if err := r.cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("starting redis-server: %w", err)
	}
	go func() {
		r.err = r.cmd.Wait()
		close(r.done)
	}()
	addr := r.Addr
	if addr == "" {
		addr = r.TLSAddr
	}
	exited := errors.New("redis-server exited before serving")
	err = Poll(func() error {
		select {
		case <-r.done:
			return Permanent(fmt.Errorf("%w: %w", exited, r.err))
		default:
		}
		if !r.answers(addr, o.TLSCert != "") {
			return errNotYet
		}
		return nil
	}, Every(20*time.Millisecond))
	switch {
	case errors.Is(err, exited):
		os.RemoveAll(dir)
		return nil, fmt.Errorf("%w\n%s", err, r.log)
	case err != nil:
		_ = r.Stop()
		return nil, fmt.Errorf("redis-server on %s: %w\n%s", addr, err, r.log)
	}
	return r, nil
}

// answers reports whether the server accepts connections: for plain TCP,
// whether it answers PING (+PONG, or NOAUTH with a password); for TLS,
// whether the port is open (the handshake needs the client's files).
func (r *RedisServer) answers(addr string, tls bool) bool {
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false
	}
	defer conn.Close()
	if tls {
		return true
	}
	_ = conn.SetDeadline(time.Now().Add(time.Second))
	if _, err := conn.Write([]byte("PING\r\n")); err != nil {
		return false
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	return err == nil && (strings.HasPrefix(line, "+PONG") || strings.HasPrefix(line, "-NOAUTH"))
}

// Redis starts a redis-server for the test and stops it when the test ends.
func Redis(t testing.TB, o RedisOptions) *RedisServer {
	t.Helper()
	r, err := StartRedis(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := r.Stop(); err != nil {
			t.Error(err)
		}
	})
	return r
}

// Stop sends SIGTERM to the process (by its PID), waits for it to exit,
// killing it after 10s, and removes its directory. Stopping twice is
// harmless.
func (r *RedisServer) Stop() error {
	defer os.RemoveAll(r.dir)
	select {
	case <-r.done:
		return nil
	default:
	}
	if err := r.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return err
	}
	select {
	case <-r.done:
		return nil
	case <-time.After(10 * time.Second):
		_ = r.cmd.Process.Kill()
		<-r.done
		return fmt.Errorf("redis-server did not stop on SIGTERM\n%s", r.log)
	}
}

// Log is what the server wrote so far.
func (r *RedisServer) Log() string { return r.log.String() }

// freePort returns a loopback TCP port nothing listens on right now.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
