package bench

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding"
	"encoding/hex"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/berth-dev/berth/internal/testutil"
	"github.com/berth-dev/berth/registryd/storage"
)

// BenchmarkRegistry drives identical workloads at registryd and at the
// Distribution registry (the pinned version of hack/install-distribution.sh),
// each serving its own filesystem store in a temporary directory from the
// same config.yml (testutil.FilesystemConfig: no cache, delete enabled,
// access log off). Every workload runs on both, back to back, in every
// round; the order of the two alternates between rounds, so neither
// always gets the warmer or the quieter machine. Each figure is the
// median over the rounds, each ratio the median of the rounds' ratios.
//
// Workloads (sizes from the environment, defaults in brackets):
//
//   - large blobs: BERTH_BENCH_LARGE_COUNT (32) blobs of
//     BERTH_BENCH_LARGE_MIB (16) MiB, 4 at a time: push (POST, PATCH with
//     the body, PUT with the digest), then pull (GET, the client hashes
//     every byte and compares with the digest); MB/s.
//   - small blobs: BERTH_BENCH_SMALL_COUNT (2000) blobs of 4 KiB, 16 at a
//     time, pushed as above; blobs a second.
//   - manifests: BERTH_BENCH_MANIFESTS (2000) image manifests, 16 at a
//     time: PUT by tag, then GET by tag, then HEAD by digest; operations
//     a second.
//   - listing: the tags of a repository holding BERTH_BENCH_TAGS (10000)
//     tags in one request, and the whole catalog of
//     BERTH_BENCH_REPOS (5000) repositories (plus the benchmark's own)
//     1000 a page, following the Link header; milliseconds, the median
//     of BERTH_BENCH_LIST_REPEAT (5) walks a round.
//
// Each round also measures the machine's limits on the same filesystem:
// Go's SHA-256 on one goroutine, writing the large blobs' bytes with 4
// writers and an fsync per file, and creating 4 KiB files with an fsync
// each on 16 workers. Pushes are reported as a fraction of them.
//
// BERTH_BENCH_ROUNDS (5) sets the rounds, BERTH_BENCH_WORKLOADS a
// comma-separated subset of large,small,manifests,listing. With
// BERTH_BENCH_PROFILE=<dir>, both servers run a debug server and each
// workload of the second round is CPU-profiled on both (for as long as
// it took in the first round) into <dir>/<server>-<workload>.pprof.
func BenchmarkRegistry(b *testing.B) {
	cfg := registryBenchConfig{
		rounds:       envInt(b, "BERTH_BENCH_ROUNDS", 5),
		largeCount:   envInt(b, "BERTH_BENCH_LARGE_COUNT", 32),
		largeSize:    int64(envInt(b, "BERTH_BENCH_LARGE_MIB", 16)) << 20,
		smallCount:   envInt(b, "BERTH_BENCH_SMALL_COUNT", 2000),
		manifests:    envInt(b, "BERTH_BENCH_MANIFESTS", 2000),
		tags:         envInt(b, "BERTH_BENCH_TAGS", 10000),
		repos:        envInt(b, "BERTH_BENCH_REPOS", 5000),
		listRepeat:   envInt(b, "BERTH_BENCH_LIST_REPEAT", 5),
		profileDir:   os.Getenv("BERTH_BENCH_PROFILE"),
		workloads:    map[string]bool{},
		stepDeadline: 10 * time.Minute,
	}
	names := strings.Split(os.Getenv("BERTH_BENCH_WORKLOADS"), ",")
	if os.Getenv("BERTH_BENCH_WORKLOADS") == "" {
		names = []string{"large", "small", "manifests", "listing"}
	}
	for _, n := range names {
		switch n = strings.TrimSpace(n); n {
		case "large", "small", "manifests", "listing":
			cfg.workloads[n] = true
		default:
			b.Fatalf("BERTH_BENCH_WORKLOADS: unknown workload %q (want large, small, manifests, listing)", n)
		}
	}
	for range b.N {
		runRegistryBench(b, cfg)
	}
}

type registryBenchConfig struct {
	rounds                  int
	largeCount              int
	largeSize               int64
	smallCount, manifests   int
	tags, repos, listRepeat int
	profileDir              string
	workloads               map[string]bool
	stepDeadline            time.Duration
}

const (
	largeConcurrency    = 4
	smallConcurrency    = 16
	manifestConcurrency = 16
	smallBlobSize       = 4 << 10
	catalogPageSize     = 1000

	largeRepo    = "bench/large"
	smallRepo    = "bench/small"
	manifestRepo = "bench/manifests"
	tagsRepo     = "bench/tags"
)

// figures collects each figure's per-round values for both servers.
type figures struct {
	values map[string]map[string][]float64 // figure -> server -> rounds
	costs  map[string]*cost
	walls  map[string]map[string]time.Duration // workload -> server -> last wall
}

func newFigures() *figures {
	return &figures{values: map[string]map[string][]float64{}, costs: map[string]*cost{}, walls: map[string]map[string]time.Duration{}}
}

func (f *figures) add(figure, srv string, v float64) {
	if f.values[figure] == nil {
		f.values[figure] = map[string][]float64{}
	}
	f.values[figure][srv] = append(f.values[figure][srv], v)
}

func (f *figures) get(figure, srv string) []float64 { return f.values[figure][srv] }

func runRegistryBench(b *testing.B, cfg registryBenchConfig) {
	registrydBin := testutil.Registryd(b)
	distBin := testutil.DistributionRegistry(b)
	regRoot, distRoot := filepath.Join(b.TempDir(), "registryd"), filepath.Join(b.TempDir(), "distribution")
	scratch := b.TempDir()

	if cfg.workloads["listing"] {
		start := time.Now()
		var wg sync.WaitGroup
		errs := make([]error, 2)
		for i, root := range []string{regRoot, distRoot} {
			wg.Go(func() { errs[i] = generateListingStore(root, cfg.tags, cfg.repos) })
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				b.Fatal(err)
			}
		}
		b.Logf("generated %d tags and %d repositories in each store in %s", cfg.tags, cfg.repos, time.Since(start).Round(time.Millisecond))
	}

	start := func(name, bin, root string) *server {
		debug := ""
		if cfg.profileDir != "" {
			debug = testutil.FreeAddr(b)
		}
		reg := testutil.StartRegistry(b, name, bin, func(addr string) string {
			c := testutil.FilesystemConfig(root, addr)
			if debug != "" {
				c += "  debug:\n    addr: " + debug + "\n"
			}
			return c
		})
		return newServer(name, reg, debug)
	}
	servers := []*server{start("registryd", registrydBin, regRoot), start("distribution", distBin, distRoot)}
	if cfg.profileDir != "" {
		if err := os.MkdirAll(cfg.profileDir, 0o755); err != nil {
			b.Fatal(err)
		}
	}

	rng := rand.New(rand.NewChaCha8([32]byte{'b', 'e', 'r', 't', 'h'}))
	figs := newFigures()
	ctx := context.Background()

	// Blobs the manifests reference, pushed once.
	manifestConfig := []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}`)
	manifestLayer := randomBytes(rng, smallBlobSize)
	if cfg.workloads["manifests"] {
		for _, s := range servers {
			for _, blob := range [][]byte{manifestConfig, manifestLayer} {
				if err := s.pushBlob(ctx, manifestRepo, digest.FromBytes(blob), int64(len(blob)), bytes.NewReader(blob)); err != nil {
					b.Fatalf("%s: %v", s.name, err)
				}
			}
		}
	}
	// The large blobs share all but their last 64 bytes: the client keeps
	// one buffer, and each digest costs a hash of 64 bytes from a saved
	// state.
	var shared []byte
	var sharedState []byte
	if cfg.workloads["large"] {
		shared = randomBytes(rng, int(cfg.largeSize-largeTail))
		h := sha256.New()
		h.Write(shared)
		var err error
		if sharedState, err = h.(encoding.BinaryMarshaler).MarshalBinary(); err != nil {
			b.Fatal(err)
		}
	}
	limitBuf := randomBytes(rng, 64<<20)

	b.ResetTimer()
	for round := range cfg.rounds {
		order := slices.Clone(servers)
		if round%2 == 1 {
			slices.Reverse(order)
		}
		load := results.sampleLoad(fmt.Sprintf("round %d start", round+1))
		b.Logf("round %d/%d, load %.2f, %s first", round+1, cfg.rounds, load.Load1, order[0].name)

		// The machine's limits.
		figs.add("limit sha256", "", sha256Throughput(limitBuf, 1<<30))
		if cfg.workloads["large"] {
			v, err := writeFsyncThroughput(filepath.Join(scratch, "write"), limitBuf, cfg.largeCount, largeConcurrency, cfg.largeSize)
			if err != nil {
				b.Fatal(err)
			}
			figs.add("limit write", "", v)
		}
		if cfg.workloads["small"] || cfg.workloads["manifests"] {
			v, err := smallFileRate(filepath.Join(scratch, "small"), limitBuf[:smallBlobSize], cfg.smallCount, smallConcurrency)
			if err != nil {
				b.Fatal(err)
			}
			figs.add("limit small", "", v)
		}

		step := func(workload string, fn func(ctx context.Context, s *server) (float64, error), figure string) {
			for _, s := range order {
				stop := startProfile(b, cfg, figs, round, workload, s)
				ctx, cancel := context.WithTimeout(ctx, cfg.stepDeadline)
				cpu0, srv0 := selfCPU(), procCPU(s.reg.Pid())
				t0 := time.Now()
				v, err := fn(ctx, s)
				wall := time.Since(t0)
				cpu1, srv1 := selfCPU(), procCPU(s.reg.Pid())
				cancel()
				stop()
				if err != nil {
					b.Fatalf("round %d, %s, %s: %v", round+1, workload, s.name, err)
				}
				figs.add(figure, s.name, v)
				figs.charge(workload, s.name, wall, cpu1-cpu0, srv1-srv0)
			}
		}

		if cfg.workloads["large"] {
			blobs := make([]largeBlob, cfg.largeCount)
			for i := range blobs {
				blobs[i] = newLargeBlob(sharedState, int64(len(shared)), round, i)
			}
			total := int64(cfg.largeCount) * cfg.largeSize
			step("large blob push", func(ctx context.Context, s *server) (float64, error) {
				took, err := parallel(ctx, len(blobs), largeConcurrency, func(ctx context.Context, i int) error {
					bl := blobs[i]
					return s.pushBlob(ctx, largeRepo, bl.digest, cfg.largeSize, io.MultiReader(bytes.NewReader(shared), bytes.NewReader(bl.tail)))
				})
				return mbps(total, took), err
			}, "large push")
			step("large blob pull", func(ctx context.Context, s *server) (float64, error) {
				bufs := make(chan []byte, largeConcurrency)
				for range largeConcurrency {
					bufs <- make([]byte, 256<<10)
				}
				took, err := parallel(ctx, len(blobs), largeConcurrency, func(ctx context.Context, i int) error {
					buf := <-bufs
					defer func() { bufs <- buf }()
					return s.pullBlob(ctx, largeRepo, blobs[i].digest, cfg.largeSize, buf)
				})
				return mbps(total, took), err
			}, "large pull")
		}

		if cfg.workloads["small"] {
			content := randomBytes(rng, cfg.smallCount*smallBlobSize)
			digests := make([]digest.Digest, cfg.smallCount)
			for i := range digests {
				digests[i] = digest.FromBytes(content[i*smallBlobSize : (i+1)*smallBlobSize])
			}
			step("small blob push", func(ctx context.Context, s *server) (float64, error) {
				took, err := parallel(ctx, cfg.smallCount, smallConcurrency, func(ctx context.Context, i int) error {
					return s.pushBlob(ctx, smallRepo, digests[i], smallBlobSize, bytes.NewReader(content[i*smallBlobSize:(i+1)*smallBlobSize]))
				})
				return float64(cfg.smallCount) / took.Seconds(), err
			}, "small push")
		}

		if cfg.workloads["manifests"] {
			manifests := make([][]byte, cfg.manifests)
			digests := make([]digest.Digest, cfg.manifests)
			tags := make([]string, cfg.manifests)
			for i := range manifests {
				tags[i] = fmt.Sprintf("r%d-%d", round, i)
				manifests[i] = imageManifest(manifestConfig, manifestLayer, tags[i])
				digests[i] = digest.FromBytes(manifests[i])
			}
			ops := func(fn func(ctx context.Context, s *server, i int) error) func(ctx context.Context, s *server) (float64, error) {
				return func(ctx context.Context, s *server) (float64, error) {
					took, err := parallel(ctx, cfg.manifests, manifestConcurrency, func(ctx context.Context, i int) error { return fn(ctx, s, i) })
					return float64(cfg.manifests) / took.Seconds(), err
				}
			}
			step("manifest PUT", ops(func(ctx context.Context, s *server, i int) error {
				return s.putManifest(ctx, manifestRepo, tags[i], manifests[i])
			}), "manifest put")
			step("manifest GET", ops(func(ctx context.Context, s *server, i int) error {
				return s.getManifest(ctx, manifestRepo, tags[i], digests[i], false)
			}), "manifest get")
			step("manifest HEAD", ops(func(ctx context.Context, s *server, i int) error {
				return s.getManifest(ctx, manifestRepo, digests[i].String(), digests[i], true)
			}), "manifest head")
		}

		if cfg.workloads["listing"] {
			wantRepos := cfg.repos + 1 // the generated ones and tagsRepo
			if cfg.workloads["manifests"] {
				wantRepos++
			}
			step("tag list", func(ctx context.Context, s *server) (float64, error) {
				return medianLatency(cfg.listRepeat, func() error {
					n, err := s.tagCount(ctx, tagsRepo)
					if err == nil && n != cfg.tags {
						err = fmt.Errorf("%d tags, want %d", n, cfg.tags)
					}
					return err
				})
			}, "tag list")
			step("catalog", func(ctx context.Context, s *server) (float64, error) {
				return medianLatency(cfg.listRepeat, func() error {
					n, err := s.catalogCount(ctx, catalogPageSize)
					if err == nil && n != wantRepos {
						err = fmt.Errorf("%d repositories, want %d", n, wantRepos)
					}
					return err
				})
			}, "catalog")
		}
	}
	results.sampleLoad("registry benchmark end")
	b.StopTimer()
	figs.report(cfg)
}

// charge adds a step's costs to its workload's.
func (f *figures) charge(workload, srv string, wall, client, server time.Duration) {
	c := f.costs[workload]
	if c == nil {
		c = &cost{Workload: workload}
		f.costs[workload] = c
	}
	if srv == "registryd" {
		c.WallRegistryd += wall.Seconds()
		c.ClientRegistryd += client.Seconds()
		c.ServerRegistryd += server.Seconds()
	} else {
		c.WallDist += wall.Seconds()
		c.ClientDist += client.Seconds()
		c.ServerDist += server.Seconds()
	}
	if f.walls[workload] == nil {
		f.walls[workload] = map[string]time.Duration{}
	}
	f.walls[workload][srv] = wall
}

// report turns the collected figures into the table's rows.
func (f *figures) report(cfg registryBenchConfig) {
	both := func(figure, label, unit string, higher bool, target float64) {
		reg, dist := f.get(figure, "registryd"), f.get(figure, "distribution")
		if len(reg) == 0 {
			return
		}
		results.addRow(compared(label, unit, reg, dist, higher, target))
	}
	// fraction reports figure as a fraction of limit, round by round.
	fraction := func(figure, limitFigure, label string, target float64) {
		lim := f.get(limitFigure, "")
		reg, dist := f.get(figure, "registryd"), f.get(figure, "distribution")
		if len(reg) == 0 || len(lim) == 0 {
			return
		}
		var rf, df []float64
		for i := range min(len(reg), len(dist), len(lim)) {
			rf = append(rf, reg[i]/lim[i])
			df = append(df, dist[i]/lim[i])
		}
		r := row{Figure: label, Unit: "fraction", Registryd: median(rf), RegistrydRounds: rf, DistributionRounds: df}
		d := median(df)
		r.Distribution = &d
		if target > 0 {
			met := r.Registryd >= target
			r.Target, r.Met = fmt.Sprintf("registryd ≥ %s", trimFloat(target)), &met
		}
		results.addRow(r)
	}
	mib := cfg.largeSize >> 20
	both("large push", fmt.Sprintf("large blob push, %d × %d MiB, %d at a time", cfg.largeCount, mib, largeConcurrency), "MB/s", true, 1)
	fraction("large push", "limit write", "large blob push ÷ write+fsync limit", 0.8)
	both("large pull", fmt.Sprintf("large blob pull, digest checked, %d at a time", largeConcurrency), "MB/s", true, 1)
	both("small push", fmt.Sprintf("small blob push, %d × 4 KiB, %d at a time", cfg.smallCount, smallConcurrency), "blobs/s", true, 2)
	fraction("small push", "limit small", "small blob push ÷ small-file limit", 0)
	both("manifest put", fmt.Sprintf("manifest PUT by tag, %d at a time", manifestConcurrency), "ops/s", true, 2)
	fraction("manifest put", "limit small", "manifest PUT ÷ small-file limit", 0)
	both("manifest get", fmt.Sprintf("manifest GET by tag, %d at a time", manifestConcurrency), "ops/s", true, 3)
	both("manifest head", fmt.Sprintf("manifest HEAD by digest, %d at a time", manifestConcurrency), "ops/s", true, 3)
	both("tag list", fmt.Sprintf("tag list, %d tags", cfg.tags), "ms", false, 0.5)
	both("catalog", fmt.Sprintf("catalog, %d repositories, %d a page", cfg.repos, catalogPageSize), "ms", false, 0.5)

	addLimit := func(figure, label, unit string) {
		if v := f.get(figure, ""); len(v) > 0 {
			results.addLimit(limit{Figure: label, Unit: unit, Value: median(v), Rounds: v})
		}
	}
	addLimit("limit sha256", "Go sha256, one goroutine", "MB/s")
	addLimit("limit write", fmt.Sprintf("write + fsync, %d writers, %d MiB files", largeConcurrency, mib), "MB/s")
	addLimit("limit small", fmt.Sprintf("create + write + fsync, %d workers, 4 KiB files", smallConcurrency), "files/s")

	for _, w := range []string{"large blob push", "large blob pull", "small blob push", "manifest PUT", "manifest GET", "manifest HEAD", "tag list", "catalog"} {
		if c := f.costs[w]; c != nil {
			results.addCost(*c)
		}
	}
}

// startProfile starts a CPU profile of s for workload when profiling is
// on and this is the second round, for as long as the workload took s in
// the first; the returned function waits for it and saves it.
func startProfile(b *testing.B, cfg registryBenchConfig, figs *figures, round int, workload string, s *server) func() {
	if cfg.profileDir == "" || round != 1 || s.debug == "" {
		return func() {}
	}
	secs := max(1, int(math.Ceil(figs.walls[workload][s.name].Seconds())))
	done := make(chan struct{})
	go func() {
		defer close(done)
		resp, err := http.Get(fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", s.debug, secs))
		if err != nil {
			b.Logf("profile of %s %s: %v", s.name, workload, err)
			return
		}
		defer resp.Body.Close()
		raw, err := io.ReadAll(resp.Body)
		if err != nil || resp.StatusCode != http.StatusOK {
			b.Logf("profile of %s %s: %d %v", s.name, workload, resp.StatusCode, err)
			return
		}
		name := strings.ReplaceAll(workload, " ", "-")
		if err := os.WriteFile(filepath.Join(cfg.profileDir, s.name+"-"+name+".pprof"), raw, 0o644); err != nil {
			b.Log(err)
		}
	}()
	return func() { <-done }
}

// medianLatency runs fn n times and returns the median duration in ms.
func medianLatency(n int, fn func() error) (float64, error) {
	var ms []float64
	for range n {
		start := time.Now()
		if err := fn(); err != nil {
			return 0, err
		}
		ms = append(ms, float64(time.Since(start).Microseconds())/1000)
	}
	return median(ms), nil
}

// largeTail is the part of each large blob that differs between blobs.
const largeTail = 64

// largeBlob is one large blob: the shared bytes and its own tail.
type largeBlob struct {
	tail   []byte
	digest digest.Digest
}

func newLargeBlob(sharedState []byte, sharedLen int64, round, i int) largeBlob {
	tail := make([]byte, largeTail)
	copy(tail, fmt.Sprintf("berth bench, round %d, blob %d", round, i))
	h := sha256.New()
	if err := h.(encoding.BinaryUnmarshaler).UnmarshalBinary(sharedState); err != nil {
		panic(err) // the state was marshalled by the same package
	}
	h.Write(tail)
	return largeBlob{tail: tail, digest: digest.Digest("sha256:" + hex.EncodeToString(h.Sum(nil)))}
}

func randomBytes(rng *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := 0; i+8 <= n; i += 8 {
		v := rng.Uint64()
		for j := range 8 {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	return b
}

// imageManifest is an OCI image manifest of config and one layer, made
// unique by an annotation.
func imageManifest(config, layer []byte, unique string) []byte {
	return fmt.Appendf(nil, `{"schemaVersion":2,"mediaType":%q,`+
		`"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":%q,"size":%d},`+
		`"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":%q,"size":%d}],`+
		`"annotations":{"org.berth.bench":%q}}`,
		mediaTypeOCIManifest, digest.FromBytes(config), len(config), digest.FromBytes(layer), len(layer), unique)
}

// generateListingStore writes, straight into Distribution's layout (no
// HTTP, no fsync), repository tagsRepo with tags tags on one manifest,
// and repos repositories of one manifest each.
func generateListingStore(root string, tags, repos int) error {
	write := func(p string, content []byte) error {
		full := filepath.Join(root, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			return err
		}
		return os.WriteFile(full, content, 0o644)
	}
	config := []byte(`{"architecture":"amd64","os":"linux"}`)
	m := imageManifest(config, config, "listing")
	md := digest.FromBytes(m)
	for _, blob := range [][]byte{config, m} {
		if err := write(storage.BlobDataPath(digest.FromBytes(blob)), blob); err != nil {
			return err
		}
	}
	link := []byte(md)
	if err := write(storage.RevisionLinkPath(tagsRepo, md), link); err != nil {
		return err
	}
	for i := range tags {
		tag := fmt.Sprintf("v%05d", i)
		if err := write(storage.TagIndexLinkPath(tagsRepo, tag, md), link); err != nil {
			return err
		}
		if err := write(storage.TagCurrentLinkPath(tagsRepo, tag), link); err != nil {
			return err
		}
	}
	for i := range repos {
		name := fmt.Sprintf("catalog/group%02d/repo%05d", i%50, i)
		if err := write(storage.RevisionLinkPath(name, md), link); err != nil {
			return err
		}
	}
	return nil
}
