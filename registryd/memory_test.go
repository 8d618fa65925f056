package main

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// peakRSS is the peak resident set size of process pid (VmHWM), in bytes.
func peakRSS(t *testing.T, pid int) int64 {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				t.Fatalf("VmHWM %q: %v", v, err)
			}
			return kb << 10
		}
	}
	t.Fatal("no VmHWM in /proc/<pid>/status")
	return 0
}

// largeManifest is an OCI image manifest of just under size bytes whose
// config and layers are blobs no repository has: the registry reads and
// parses all of it, then refuses it with MANIFEST_BLOB_UNKNOWN.
func largeManifest(t *testing.T, size int) []byte {
	t.Helper()
	randomDigest := func() string {
		var b [32]byte
		if _, err := rand.Read(b[:]); err != nil {
			t.Fatal(err)
		}
		return "sha256:" + hex.EncodeToString(b[:])
	}
	type desc struct {
		MediaType string `json:"mediaType"`
		Digest    string `json:"digest"`
		Size      int64  `json:"size"`
	}
	layer := func() desc { return desc{"application/vnd.oci.image.layer.v1.tar+gzip", randomDigest(), 1 << 20} }
	one, _ := json.Marshal(layer())
	layers := make([]desc, (size-512)/(len(one)+1))
	for i := range layers {
		layers[i] = layer()
	}
	m, err := json.Marshal(map[string]any{
		"schemaVersion": 2,
		"mediaType":     "application/vnd.oci.image.manifest.v1+json",
		"config":        desc{"application/vnd.oci.image.config.v1+json", randomDigest(), 100},
		"layers":        layers,
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(m) > size {
		t.Fatalf("manifest of %d bytes, over %d", len(m), size)
	}
	return m
}

// TestConcurrentLargeManifestPutsKeepMemoryBounded sends 200 concurrent PUTs
// of 4 MiB manifests (the size limit) to the real binary. Every one must
// be answered, with MANIFEST_BLOB_UNKNOWN once read, or TOOMANYREQUESTS
// with Retry-After past the queue, and the process's peak resident memory
// must stay under 256 MiB. Without a bound each manifest in flight costs
// about 10 MB, so 200 of them took about 1 GB.
func TestConcurrentLargeManifestPutsKeepMemoryBounded(t *testing.T) {
	const (
		puts    = 200
		size    = 4 << 20
		maxPeak = 256 << 20
	)
	dir := t.TempDir()
	config := filepath.Join(dir, "config.yml")
	yml := fmt.Sprintf("version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: 127.0.0.1:0\n  secret: memory-test\n", filepath.Join(dir, "data"))
	if err := os.WriteFile(config, []byte(yml), 0o600); err != nil {
		t.Fatal(err)
	}
	d := startDaemon(t, config)
	addr := d.waitLog(t, regexp.MustCompile(`msg=Listening network=tcp addr=(\S+)`))[1]
	before := peakRSS(t, d.cmd.Process.Pid)

	manifest := largeManifest(t, size) // one buffer, shared by every request
	client := &http.Client{Timeout: 3 * time.Minute}
	var (
		mu      sync.Mutex
		answers = map[string]int{} // "status CODE" -> count
		failed  []string
		wg      sync.WaitGroup
	)
	start := time.Now()
	for i := range puts {
		wg.Go(func() {
			req, err := http.NewRequest(http.MethodPut, fmt.Sprintf("http://%s/v2/flood/app/manifests/t%d", addr, i), bytes.NewReader(manifest))
			if err != nil {
				panic(err)
			}
			req.Header.Set("Content-Type", "application/vnd.oci.image.manifest.v1+json")
			resp, err := client.Do(req)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				failed = append(failed, err.Error())
				return
			}
			defer resp.Body.Close()
			var body struct {
				Errors []struct {
					Code string `json:"code"`
				} `json:"errors"`
			}
			raw, _ := io.ReadAll(resp.Body)
			_ = json.Unmarshal(raw, &body)
			key := strconv.Itoa(resp.StatusCode)
			if len(body.Errors) > 0 {
				key += " " + body.Errors[0].Code
			}
			if resp.StatusCode == http.StatusTooManyRequests && resp.Header.Get("Retry-After") == "" {
				key += " without Retry-After"
			}
			answers[key]++
		})
	}
	wg.Wait()
	took := time.Since(start)
	peak := peakRSS(t, d.cmd.Process.Pid)
	t.Logf("%d PUTs of %d bytes in %s: %v; peak RSS %d MiB (%d MiB at start)", puts, len(manifest), took.Round(time.Millisecond), answers, peak>>20, before>>20)

	if len(failed) > 0 {
		t.Errorf("%d requests got no answer, e.g. %s", len(failed), failed[0])
	}
	for k, n := range answers {
		if k != "400 MANIFEST_BLOB_UNKNOWN" && k != "429 TOOMANYREQUESTS" {
			t.Errorf("%d answers %q; want only 400 MANIFEST_BLOB_UNKNOWN and 429 TOOMANYREQUESTS with Retry-After", n, k)
		}
	}
	if answers["400 MANIFEST_BLOB_UNKNOWN"] == 0 {
		t.Error("no manifest was read at all")
	}
	if peak > maxPeak {
		t.Errorf("peak RSS %d MiB, over %d MiB", peak>>20, maxPeak>>20)
	}
}
