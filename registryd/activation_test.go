package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/testutil"
)

// TestSocketActivation starts registryd the way a service manager does:
// the listening socket is file descriptor 3, LISTEN_FDS=1 and LISTEN_PID
// names the process; config.yml has no http.addr. registryd serves on that
// socket.
func TestSocketActivation(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f, err := l.(*net.TCPListener).File()
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // the child holds the socket now
	defer f.Close()

	cfg := filepath.Join(t.TempDir(), "config.yml")
	if err := os.WriteFile(cfg, []byte("version: 0.1\nlog: {accesslog: {disabled: true}}\nstorage: {inmemory: {}}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// LISTEN_PID must be the registryd process: the shell sets it to its
	// own PID and execs registryd, which keeps the PID and descriptor 3.
	cmd := exec.Command("/bin/sh", "-c", `LISTEN_PID=$$ LISTEN_FDS=1 exec "$0" serve "$1"`, testutil.Registryd(t), cfg)
	cmd.ExtraFiles = []*os.File{f}
	var logs testutil.LockedBuffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case _ = <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			_ = <-exited
		}
	}()

	client := &http.Client{Timeout: time.Second}
	testutil.EventuallyNoError(t, "registryd serves on the activated socket "+addr, func() error {
		select {
		case err := <-exited:
			return testutil.Permanent(fmt.Errorf("registryd exited: %w\n%s", err, logs.String()))
		default:
		}
		return testutil.ServesV2(client, "http://"+addr)
	}, testutil.Every(20*time.Millisecond))
}

// TestServeRefusesNoAddressWithoutActivation: without http.addr and without
// a socket passed, registryd refuses to start instead of listening on a
// random port.
func TestServeRefusesNoAddressWithoutActivation(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "config.yml")
	if err := os.WriteFile(cfg, []byte("version: 0.1\nstorage: {inmemory: {}}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	t.Setenv("LISTEN_FDS", "")
	var stdout, stderr bytes.Buffer
	if code := run(ctx, []string{"serve", cfg}, &stdout, &stderr); code == 0 {
		t.Fatalf("registryd serve exited 0:\n%s", stderr.String())
	}
	if !strings.Contains(stderr.String(), "http.addr: not set, and registryd was not socket-activated") {
		t.Errorf("stderr does not explain:\n%s", stderr.String())
	}
}

// TestFatalLevelIsMailed: when registryd serve stops on an error after its
// logger exists (here: its port is taken), the failure is logged at the
// fatal level, and a mail hook for fatal delivers it before the process
// exits.
func TestFatalLevelIsMailed(t *testing.T) {
	box := testutil.Mailbox(t, nil, "", "")
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	cfg := filepath.Join(t.TempDir(), "config.yml")
	yml := "version: 0.1\nstorage: {inmemory: {}}\nhttp: {addr: \"" + taken.Addr().String() + "\"}\n" +
		"log:\n  hooks:\n    - type: mail\n      levels: [fatal]\n      options:\n        smtp: {addr: \"" + box.Addr + "\"}\n" +
		"        from: registry@example.com\n        to: [ops@example.com]\n"
	if err := os.WriteFile(cfg, []byte(yml), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var stdout, stderr bytes.Buffer
	if code := run(ctx, []string{"serve", cfg}, &stdout, &stderr); code == 0 {
		t.Fatalf("registryd serve exited 0 on a taken port:\n%s", stderr.String())
	}
	// run returned: the hook's queue was delivered before.
	got := box.Received()
	if len(got) != 1 || !strings.Contains(got[0].Data, "Subject: [fatal] 127.0.0.1: registryd stopped") || !strings.Contains(got[0].Data, "address already in use") {
		t.Fatalf("received %+v\nstderr:\n%s", got, stderr.String())
	}
	if !strings.Contains(stderr.String(), "level=FATAL") {
		t.Errorf("stderr lacks the fatal line:\n%s", stderr.String())
	}
}
