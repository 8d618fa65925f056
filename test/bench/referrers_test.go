package bench

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/berth-dev/berth/internal/testutil"
	"github.com/berth-dev/berth/registryd/storage"
)

// BenchmarkReferrers asks the registryd binary, on filesystem storage, for
// the referrers of one subject in a repository of
// BERTH_BENCH_REFERRERS_MANIFESTS manifests (10000), of which
// BERTH_BENCH_REFERRERS_COUNT (10) refer to that subject. It reports the
// time of a request with the referrers index up to date (ms/request, the
// target is under 50 ms), of the first request, which builds the index by
// reading every manifest (first-ms, about what every request cost before
// the index), and of a request after one more referrer was pushed
// (after-push-ms). server-cpu-ms/request is the CPU time registryd spent
// per request, a figure that does not grow when other work shares the
// machine, as wall time does. Distribution has no referrers API: there is
// no ratio.
func BenchmarkReferrers(b *testing.B) {
	manifests := envInt(b, "BERTH_BENCH_REFERRERS_MANIFESTS", 10000)
	count := envInt(b, "BERTH_BENCH_REFERRERS_COUNT", 10)
	const repo = "bench/referrers"
	root := b.TempDir()
	subject, err := generateReferrersRepository(root, repo, manifests, count)
	if err != nil {
		b.Fatal(err)
	}
	reg := testutil.StartRegistry(b, "registryd", testutil.Registryd(b), func(addr string) string {
		return testutil.FilesystemConfig(root, addr)
	})
	url := reg.URL("/v2/" + repo + "/referrers/" + subject.String())
	ask := func(want int) time.Duration {
		start := time.Now()
		resp, err := http.Get(url)
		if err != nil {
			b.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		took := time.Since(start)
		var idx struct{ Manifests []json.RawMessage }
		if err != nil || resp.StatusCode != http.StatusOK || json.Unmarshal(body, &idx) != nil || len(idx.Manifests) != want {
			b.Fatalf("referrers: %d, %d manifests (want %d), %v", resp.StatusCode, len(idx.Manifests), want, err)
		}
		return took
	}

	first := ask(count)
	cpu := processCPU(b, reg.Pid())
	for b.Loop() {
		ask(count)
	}
	perRequest := b.Elapsed() / time.Duration(b.N)
	cpuPerRequest := (processCPU(b, reg.Pid()) - cpu) / time.Duration(b.N)

	// One more referrer, pushed through the API.
	cfg := []byte(`{"pushed":"after"}`)
	cfgDigest := digest.FromBytes(cfg)
	resp, err := http.Post(reg.URL("/v2/"+repo+"/blobs/uploads/?digest="+cfgDigest.String()), "application/octet-stream", bytes.NewReader(cfg))
	if err != nil || resp.StatusCode != http.StatusCreated {
		b.Fatalf("pushing a config: %v %v", resp, err)
	}
	resp.Body.Close()
	m := referrerManifest(subject, cfgDigest, len(cfg), "after")
	req, _ := http.NewRequest(http.MethodPut, reg.URL("/v2/"+repo+"/manifests/"+digest.FromBytes(m).String()), bytes.NewReader(m))
	req.Header.Set("Content-Type", "application/vnd.oci.image.manifest.v1+json")
	resp, err = http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusCreated {
		b.Fatalf("pushing a referrer: %v %v", resp, err)
	}
	resp.Body.Close()
	afterPush := ask(count + 1)

	b.ReportMetric(float64(perRequest.Microseconds())/1000, "ms/request")
	b.ReportMetric(float64(cpuPerRequest.Microseconds())/1000, "server-cpu-ms/request")
	b.ReportMetric(float64(first.Microseconds())/1000, "first-ms")
	b.ReportMetric(float64(afterPush.Microseconds())/1000, "after-push-ms")
	b.ReportMetric(float64(manifests), "manifests")
	results.addRow(single(fmt.Sprintf("referrers of a subject, %d manifests, index up to date", manifests), "ms",
		[]float64{float64(perRequest.Microseconds()) / 1000}, false, 50, "< 50 ms"))
}

// referrerManifest is an OCI artifact manifest referring to subject.
func referrerManifest(subject, cfg digest.Digest, cfgSize int, seed string) []byte {
	return fmt.Appendf(nil, `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",`+
		`"artifactType":"application/vnd.berth.bench.sig","config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":%q,"size":%d},`+
		`"layers":[],"subject":{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":%q,"size":100},`+
		`"annotations":{"seed":%q}}`, cfg, cfgSize, subject, seed)
}

// generateReferrersRepository writes manifests manifest revisions into
// repository name straight into Distribution's layout (no HTTP, no fsync):
// one subject, count referrers of it, and plain image manifests for the
// rest. It returns the subject's digest.
func generateReferrersRepository(root, name string, manifests, count int) (digest.Digest, error) {
	write := func(p string, content []byte) error {
		full := filepath.Join(root, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			return err
		}
		return os.WriteFile(full, content, 0o644)
	}
	manifest := func(content []byte) (digest.Digest, error) {
		d := digest.FromBytes(content)
		if err := write(storage.BlobDataPath(d), content); err != nil {
			return "", err
		}
		return d, write(storage.RevisionLinkPath(name, d), []byte(d))
	}
	image := func(i int) []byte {
		return fmt.Appendf(nil, `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",`+
			`"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":%q,"size":10},"layers":[]}`,
			digest.FromString(fmt.Sprint("config", i)))
	}
	subject, err := manifest(image(-1))
	if err != nil {
		return "", err
	}
	for i := range manifests - 1 {
		content := image(i)
		if i < count {
			content = referrerManifest(subject, digest.FromString("empty"), 2, fmt.Sprint(i))
		}
		if _, err := manifest(content); err != nil {
			return "", err
		}
	}
	return subject, nil
}

// processCPU is the CPU time (user and system) process pid has used.
func processCPU(b *testing.B, pid int) time.Duration {
	b.Helper()
	d, err := readProcCPU(pid)
	if err != nil {
		b.Fatal(err)
	}
	return d
}

// procCPU is processCPU for callers that cannot fail: 0 when unknown.
func procCPU(pid int) time.Duration {
	d, _ := readProcCPU(pid)
	return d
}

// readProcCPU reads the CPU time (user and system) of process pid from
// /proc/<pid>/stat, in clock ticks of 10 ms.
func readProcCPU(pid int) (time.Duration, error) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// Fields after the command name, which is in parentheses: state is
	// field 3, utime 14 and stime 15.
	fields := strings.Fields(string(raw[bytes.LastIndexByte(raw, ')')+1:]))
	if len(fields) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: %q", pid, raw)
	}
	utime, err1 := strconv.ParseInt(fields[11], 10, 64)
	stime, err2 := strconv.ParseInt(fields[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc/%d/stat: %q", pid, raw)
	}
	return time.Duration(utime+stime) * 10 * time.Millisecond, nil
}
