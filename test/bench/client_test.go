package bench

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/berth-dev/berth/internal/testutil"
)

// The load generator: plain net/http against one registry, the requests
// common clients send (docker, containerd's and go-containerregistry's
// pushers: POST, PATCH with the whole body, PUT with the digest). Every
// response is checked, every pulled blob hashed and compared with its
// digest. Its own CPU time is measured (rusage of this process) and
// reported beside the servers'.

// server is one registry under test.
type server struct {
	name   string // "registryd" or "distribution"
	reg    *testutil.Registry
	base   *url.URL
	client *http.Client
	debug  string // debug server address, "" when off
}

func newServer(name string, reg *testutil.Registry, debug string) *server {
	base, _ := url.Parse(reg.URL("/"))
	return &server{
		name: name, reg: reg, base: base, debug: debug,
		client: &http.Client{Transport: &http.Transport{
			MaxIdleConns:        256,
			MaxIdleConnsPerHost: 256,
			DisableCompression:  true,
			// Large enough that writing a blob is not split into many
			// small socket writes.
			WriteBufferSize: 256 << 10,
			ReadBufferSize:  256 << 10,
		}},
	}
}

func (s *server) url(p string) string { return s.base.ResolveReference(&url.URL{Path: p}).String() }

// send issues req, reads and closes the body and checks the status.
func (s *server) send(req *http.Request, want int) (*http.Response, []byte, error) {
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, nil, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, nil, err
	}
	if resp.StatusCode != want {
		return nil, nil, fmt.Errorf("%s %s: %d (want %d): %.200s", req.Method, req.URL.Path, resp.StatusCode, want, body)
	}
	return resp, body, nil
}

// location resolves a response's Location against the request's URL.
func location(resp *http.Response) (*url.URL, error) {
	loc, err := resp.Location()
	if err != nil {
		return nil, fmt.Errorf("%s %s: no Location: %w", resp.Request.Method, resp.Request.URL.Path, err)
	}
	return loc, nil
}

// pushBlob uploads size bytes from body as blob d of repo: POST, PATCH
// with the body, PUT with the digest.
func (s *server) pushBlob(ctx context.Context, repo string, d digest.Digest, size int64, body io.Reader) error {
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, s.url("/v2/"+repo+"/blobs/uploads/"), nil)
	resp, _, err := s.send(req, http.StatusAccepted)
	if err != nil {
		return err
	}
	loc, err := location(resp)
	if err != nil {
		return err
	}
	req, _ = http.NewRequestWithContext(ctx, http.MethodPatch, loc.String(), body)
	req.ContentLength = size
	req.Header.Set("Content-Type", "application/octet-stream")
	if resp, _, err = s.send(req, http.StatusAccepted); err != nil {
		return err
	}
	if loc, err = location(resp); err != nil {
		return err
	}
	q := loc.Query()
	q.Set("digest", d.String())
	loc.RawQuery = q.Encode()
	req, _ = http.NewRequestWithContext(ctx, http.MethodPut, loc.String(), nil)
	_, _, err = s.send(req, http.StatusCreated)
	return err
}

// pullBlob downloads blob d of repo and checks its length and digest.
func (s *server) pullBlob(ctx context.Context, repo string, d digest.Digest, size int64, buf []byte) error {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.url("/v2/"+repo+"/blobs/"+d.String()), nil)
	resp, err := s.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET blob %s: %d", d, resp.StatusCode)
	}
	h := sha256.New()
	n, err := io.CopyBuffer(h, resp.Body, buf)
	if err != nil {
		return err
	}
	if n != size {
		return fmt.Errorf("GET blob %s: %d bytes, want %d", d, n, size)
	}
	if got := "sha256:" + hex.EncodeToString(h.Sum(nil)); got != d.String() {
		return fmt.Errorf("GET blob %s: content hashes to %s", d, got)
	}
	return nil
}

// putManifest pushes content as manifest of repo under ref (a tag).
func (s *server) putManifest(ctx context.Context, repo, ref string, content []byte) error {
	req, _ := http.NewRequestWithContext(ctx, http.MethodPut, s.url("/v2/"+repo+"/manifests/"+ref), bytes.NewReader(content))
	req.Header.Set("Content-Type", mediaTypeOCIManifest)
	_, _, err := s.send(req, http.StatusCreated)
	return err
}

// getManifest fetches manifest ref of repo (GET, or HEAD when head) and
// checks the digest the registry reports and, for GET, the content.
func (s *server) getManifest(ctx context.Context, repo, ref string, want digest.Digest, head bool) error {
	method := http.MethodGet
	if head {
		method = http.MethodHead
	}
	req, _ := http.NewRequestWithContext(ctx, method, s.url("/v2/"+repo+"/manifests/"+ref), nil)
	req.Header.Set("Accept", mediaTypeOCIManifest)
	resp, body, err := s.send(req, http.StatusOK)
	if err != nil {
		return err
	}
	if got := resp.Header.Get("Docker-Content-Digest"); got != want.String() {
		return fmt.Errorf("%s manifest %s: digest %q, want %s", method, ref, got, want)
	}
	if !head && digest.FromBytes(body) != want {
		return fmt.Errorf("GET manifest %s: content does not match %s", ref, want)
	}
	return nil
}

// tagCount lists the tags of repo in one request.
func (s *server) tagCount(ctx context.Context, repo string) (int, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.url("/v2/"+repo+"/tags/list"), nil)
	_, body, err := s.send(req, http.StatusOK)
	if err != nil {
		return 0, err
	}
	var list struct{ Tags []string }
	if err := json.Unmarshal(body, &list); err != nil {
		return 0, err
	}
	return len(list.Tags), nil
}

// catalogCount walks the whole catalog n repositories a page, following
// the Link header, and returns how many repositories it holds.
func (s *server) catalogCount(ctx context.Context, n int) (int, error) {
	next := s.url("/v2/_catalog") + fmt.Sprintf("?n=%d", n)
	total := 0
	for pages := 0; next != ""; pages++ {
		if pages > 1000 {
			return 0, fmt.Errorf("catalog: more than 1000 pages")
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, next, nil)
		resp, body, err := s.send(req, http.StatusOK)
		if err != nil {
			return 0, err
		}
		var page struct{ Repositories []string }
		if err := json.Unmarshal(body, &page); err != nil {
			return 0, err
		}
		total += len(page.Repositories)
		next = ""
		if link := resp.Header.Get("Link"); link != "" {
			start, end := strings.Index(link, "<"), strings.Index(link, ">")
			if start < 0 || end < start {
				return 0, fmt.Errorf("catalog: bad Link %q", link)
			}
			u, err := resp.Request.URL.Parse(link[start+1 : end])
			if err != nil {
				return 0, err
			}
			next = u.String()
		}
	}
	return total, nil
}

// parallel calls fn(ctx, i) for every i below n on conc goroutines and
// returns the wall time. It stops at the first error, or when ctx ends.
func parallel(ctx context.Context, n, conc int, fn func(ctx context.Context, i int) error) (time.Duration, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		next     atomic.Int64
		wg       sync.WaitGroup
		firstErr error
		once     sync.Once
	)
	start := time.Now()
	for range min(conc, n) {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n || ctx.Err() != nil {
					return
				}
				if err := fn(ctx, i); err != nil {
					once.Do(func() { firstErr = err; cancel() })
					return
				}
			}
		})
	}
	wg.Wait()
	took := time.Since(start)
	if firstErr == nil {
		firstErr = ctx.Err()
	}
	return took, firstErr
}

// selfCPU is the CPU time this process has used.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

const mediaTypeOCIManifest = "application/vnd.oci.image.manifest.v1+json"
