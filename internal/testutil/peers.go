package testutil

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// Object-store peers: Azurite (azure), versitygw (s3) and fake-gcs-server
// (gcs), each installed by its hack/install-*.sh script, started on
// loopback the first time a test of the package asks for it, and stopped
// by PID when the package's tests end. A package that uses them runs its
// tests through Main:
//
//	func TestMain(m *testing.M) { testutil.Main(m) }

// Main runs the package's tests, then stops every peer they started.
func Main(m *testing.M) {
	code := m.Run()
	StopPeers()
	os.Exit(code)
}

// Peer is an emulator process serving on loopback.
type Peer struct {
	// Name says which peer, for messages.
	Name string
	// Addr is the host:port it serves on.
	Addr string

	cmd  *exec.Cmd
	dir  string
	done chan struct{}
	err  error
	log  *LockedBuffer
}

// Log is what the peer wrote so far.
func (p *Peer) Log() string { return p.log.String() }

var (
	peersMu sync.Mutex
	peers   = map[string]*peerOnce{}
)

type peerOnce struct {
	once sync.Once
	peer any
	err  error
}

// startOnce starts the named peer the first time it is asked for.
func startOnce[T any](t testing.TB, name string, start func() (T, error)) T {
	t.Helper()
	peersMu.Lock()
	po, ok := peers[name]
	if !ok {
		po = &peerOnce{}
		peers[name] = po
	}
	peersMu.Unlock()
	po.once.Do(func() { po.peer, po.err = start() })
	if po.err != nil {
		t.Fatalf("starting %s: %v", name, po.err)
	}
	return po.peer.(T)
}

// StopPeers stops every peer started so far (SIGTERM, then SIGKILL after
// 10 s) and removes their data directories.
func StopPeers() {
	peersMu.Lock()
	defer peersMu.Unlock()
	for name, po := range peers {
		var p *Peer
		switch v := po.peer.(type) {
		case *S3Server:
			p = v.Peer
		case *Azurite:
			p = v.Peer
		case *GCSServer:
			p = v.Peer
		}
		if p != nil {
			p.stop()
		}
		delete(peers, name)
	}
}

// startPeer runs bin with args (and env added to the environment) in a
// fresh data directory, then waits until ready answers true: at most 600
// polls 50 ms apart, failing at once if the process exits.
func startPeer(name, bin string, args, env []string, addr string, ready func() bool) (*Peer, error) {
	p := &Peer{Name: name, Addr: addr, done: make(chan struct{}), log: &LockedBuffer{}}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
	// Its own process group, so a signal to the test binary's group (^C)
	// does not reach it before StopPeers does.
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := p.cmd.Start(); err != nil {
		return nil, err
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for range 600 {
		if ready() {
			return p, nil
		}
		select {
		case <-p.done:
			return nil, fmt.Errorf("%s exited before serving: %w\n%s", name, p.err, p.log)
		case <-tick.C:
		}
	}
	p.stop()
	return nil, fmt.Errorf("%s did not answer on %s within 30s\n%s", name, addr, p.log)
}

func (p *Peer) stop() {
	select {
	case <-p.done:
	default:
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	}
	if p.dir != "" {
		_ = os.RemoveAll(p.dir)
	}
}

// httpAnswers reports whether GET url answers at all (any status).
func httpAnswers(url string) func() bool {
	client := &http.Client{Timeout: time.Second}
	return func() bool {
		resp, err := client.Get(url)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return true
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// UniqueName is a lower-case name unique to this run, for buckets,
// containers and prefixes: prefix, "-" and 12 hex digits.
func UniqueName(prefix string) string { return prefix + "-" + randomHex(6) }

// ---- S3: versitygw ----

// S3Server is versitygw's posix backend serving an S3 API on loopback.
type S3Server struct {
	*Peer
	// AccessKey and SecretKey are the root user's, random per run.
	AccessKey, SecretKey string
	// Region is the region the server signs for.
	Region string
}

// S3 returns the package's S3 server, starting it on first use. The
// binary comes from $VERSITYGW or hack/install-versitygw.sh.
func S3(t testing.TB) *S3Server {
	t.Helper()
	bin := HackTool(t, "VERSITYGW", "install-versitygw.sh")
	return startOnce(t, "versitygw", func() (*S3Server, error) {
		return StartS3Server(bin, "127.0.0.1:0")
	})
}

// StartS3Server starts versitygw on addr ("host:0" picks a free port) with
// a fresh data directory. The caller stops it with Stop.
func StartS3Server(bin, addr string) (*S3Server, error) {
	addr, err := resolvePort(addr)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "berth-versitygw-")
	if err != nil {
		return nil, err
	}
	s := &S3Server{AccessKey: "berth" + randomHex(8), SecretKey: randomHex(20), Region: "us-east-1"}
	args := []string{"--port", addr, "--access", s.AccessKey, "--secret", s.SecretKey, "--region", s.Region, "--quiet", "posix", dir}
	p, err := startPeer("versitygw", bin, args, nil, addr, httpAnswers("http://"+addr+"/"))
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	p.dir = dir
	s.Peer = p
	return s, nil
}

// Stop stops the server and removes its data.
func (s *S3Server) Stop() { s.stop() }

// Endpoint is the server's URL.
func (s *S3Server) Endpoint() string { return "http://" + s.Addr }

// ---- Azure: Azurite ----

// Azurite is Azurite's blob service on loopback, with one account whose
// key is random per run.
type Azurite struct {
	*Peer
	AccountName, AccountKey string
}

// AzureEmulator returns the package's Azurite, starting it on first use.
// The executable comes from $AZURITE or hack/install-azurite.sh.
func AzureEmulator(t testing.TB) *Azurite {
	t.Helper()
	bin := HackTool(t, "AZURITE", "install-azurite.sh")
	return startOnce(t, "azurite", func() (*Azurite, error) {
		return StartAzurite(bin, "127.0.0.1:0")
	})
}

// StartAzurite starts Azurite's blob service on addr ("host:0" picks a
// free port) with a fresh data directory. The caller stops it with Stop.
func StartAzurite(bin, addr string) (*Azurite, error) {
	addr, err := resolvePort(addr)
	if err != nil {
		return nil, err
	}
	host, port, _ := net.SplitHostPort(addr)
	dir, err := os.MkdirTemp("", "berth-azurite-")
	if err != nil {
		return nil, err
	}
	key := make([]byte, 64)
	_, _ = rand.Read(key)
	a := &Azurite{AccountName: "berth" + randomHex(4), AccountKey: base64.StdEncoding.EncodeToString(key)}
	args := []string{"--blobHost", host, "--blobPort", port, "--location", dir, "--silent", "--skipApiVersionCheck", "--loose", "--disableTelemetry"}
	env := []string{"AZURITE_ACCOUNTS=" + a.AccountName + ":" + a.AccountKey}
	p, err := startPeer("azurite", bin, args, env, addr, httpAnswers("http://"+addr+"/"+a.AccountName+"?comp=list"))
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	p.dir = dir
	a.Peer = p
	return a, nil
}

// Stop stops Azurite and removes its data.
func (a *Azurite) Stop() { a.stop() }

// ServiceURL is the account's blob service URL.
func (a *Azurite) ServiceURL() string { return "http://" + a.Addr + "/" + a.AccountName }

// ---- GCS: fake-gcs-server ----

// GCSServer is fake-gcs-server on loopback.
type GCSServer struct {
	*Peer
}

// GCS returns the package's GCS emulator, starting it on first use, and
// points the Google Cloud Storage client of this process at it
// (STORAGE_EMULATOR_HOST, which the client reads when it is created). The
// binary comes from $FAKE_GCS_SERVER or hack/install-fake-gcs-server.sh.
func GCS(t testing.TB) *GCSServer {
	t.Helper()
	bin := HackTool(t, "FAKE_GCS_SERVER", "install-fake-gcs-server.sh")
	g := startOnce(t, "fake-gcs-server", func() (*GCSServer, error) {
		return StartGCSServer(bin, "127.0.0.1:0")
	})
	if os.Getenv("STORAGE_EMULATOR_HOST") != g.Endpoint() {
		if err := os.Setenv("STORAGE_EMULATOR_HOST", g.Endpoint()); err != nil {
			t.Fatal(err)
		}
	}
	return g
}

// StartGCSServer starts fake-gcs-server on addr ("host:0" picks a free
// port), keeping objects in memory. The caller stops it with Stop.
func StartGCSServer(bin, addr string) (*GCSServer, error) {
	addr, err := resolvePort(addr)
	if err != nil {
		return nil, err
	}
	host, port, _ := net.SplitHostPort(addr)
	// The memory backend: the filesystem one reads every object of a
	// bucket to answer each listing page, which makes a registry's many
	// listings slow. Nothing outlives the test binary anyway.
	args := []string{"-scheme", "http", "-host", host, "-port", port, "-backend", "memory",
		"-public-host", addr, "-external-url", "http://" + addr, "-log-level", "warn"}
	p, err := startPeer("fake-gcs-server", bin, args, nil, addr, httpAnswers("http://"+addr+"/storage/v1/b"))
	if err != nil {
		return nil, err
	}
	return &GCSServer{Peer: p}, nil
}

// Stop stops the server; its data goes with it.
func (g *GCSServer) Stop() { g.stop() }

// Endpoint is the server's URL, the value of STORAGE_EMULATOR_HOST.
func (g *GCSServer) Endpoint() string { return "http://" + g.Addr }

// resolvePort replaces port 0 of addr with a port free right now.
func resolvePort(addr string) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", err
	}
	if port != "0" {
		return addr, nil
	}
	l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// CreateBucket creates bucket name on the server.
func (s *S3Server) CreateBucket(t TB, name string) {
	t.Helper()
	client := s3.New(s3.Options{
		Region:       s.Region,
		BaseEndpoint: aws.String(s.Endpoint()),
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider(s.AccessKey, s.SecretKey, ""),
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := client.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(name)}); err != nil {
		t.Fatalf("creating bucket %s: %v", name, err)
	}
}

// CreateBucket creates bucket name on the emulator (JSON API).
func (g *GCSServer) CreateBucket(t TB, name string) {
	t.Helper()
	body := strings.NewReader(`{"name":"` + name + `"}`)
	resp, err := http.Post(g.Endpoint()+"/storage/v1/b?project=berth", "application/json", body)
	if err != nil {
		t.Fatalf("creating bucket %s: %v", name, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("creating bucket %s: %s: %s", name, resp.Status, b)
	}
}
