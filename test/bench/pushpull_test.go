package bench

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/testutil"
)

func TestMain(m *testing.M) { testutil.Main(m) }

// BenchmarkPushPull pushes a blob to registryd and pulls it back, on every
// storage driver — the object stores against their emulators on loopback
// (Azurite, versitygw, fake-gcs-server) — and reports push and pull
// throughput in MB/s (10^6 bytes). The push is what Docker and
// go-containerregistry send: one streamed PATCH and a closing PUT. The
// pull is a GET that follows the redirect to the store's signed URL, as
// clients do (filesystem and inmemory serve the bytes themselves).
//
//	BERTH_BENCH_BLOB_MB  size of the blob in MiB (64)
func BenchmarkPushPull(b *testing.B) {
	size := envInt(b, "BERTH_BENCH_BLOB_MB", 64) << 20
	blob := make([]byte, size)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range blob {
		blob[i] = byte(r.Uint32())
	}
	registryd := testutil.Registryd(b)
	for _, store := range testutil.Storages() {
		b.Run(store.Name, func(b *testing.B) {
			section := store.Section(b)
			reg := testutil.StartRegistry(b, "registryd", registryd, func(addr string) string {
				return testutil.RegistryConfig(section, addr, "")
			})
			var pushTime, pullTime time.Duration
			b.SetBytes(int64(2 * size))
			b.ResetTimer()
			for i := range b.N {
				// A distinct blob each round: nothing is deduplicated.
				blob[0], blob[1] = byte(i), byte(i>>8)
				d := fmt.Sprintf("sha256:%x", sha256.Sum256(blob))
				start := time.Now()
				push(b, reg, blob, d)
				pushTime += time.Since(start)
				start = time.Now()
				pull(b, reg, d, len(blob))
				pullTime += time.Since(start)
			}
			b.StopTimer()
			mb := float64(size) * float64(b.N) / 1e6
			b.ReportMetric(mb/pushTime.Seconds(), "push-MB/s")
			b.ReportMetric(mb/pullTime.Seconds(), "pull-MB/s")
		})
	}
}

func push(b *testing.B, reg *testutil.Registry, blob []byte, d string) {
	b.Helper()
	resp, err := http.Post(reg.URL("/v2/bench/blobs/uploads/"), "", nil)
	if err != nil {
		b.Fatal(err)
	}
	resp.Body.Close()
	loc := resp.Header.Get("Location")
	if i := strings.Index(loc, "/v2/"); i >= 0 {
		loc = loc[i:]
	}
	req, _ := http.NewRequest(http.MethodPatch, reg.URL(loc), bytes.NewReader(blob))
	req.Header.Set("Content-Type", "application/octet-stream")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		b.Fatalf("PATCH: %s", resp.Status)
	}
	if l := resp.Header.Get("Location"); l != "" {
		loc = l[strings.Index(l, "/v2/"):]
	}
	sep := "?"
	if strings.Contains(loc, "?") {
		sep = "&"
	}
	req, _ = http.NewRequest(http.MethodPut, reg.URL(loc+sep+"digest="+d), nil)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		b.Fatalf("PUT: %s", resp.Status)
	}
}

func pull(b *testing.B, reg *testutil.Registry, d string, size int) {
	b.Helper()
	resp, err := http.Get(reg.URL("/v2/bench/blobs/" + d))
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	h := sha256.New()
	n, err := io.Copy(h, resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK || int(n) != size || fmt.Sprintf("sha256:%x", h.Sum(nil)) != d {
		b.Fatalf("GET blob: %s, %d bytes, err %v", resp.Status, n, err)
	}
}
