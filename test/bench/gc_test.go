package bench

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/testutil"
	"github.com/berth-dev/berth/registryd/storage"
	"github.com/berth-dev/berth/registryd/storage/driver/filesystem"
)

// Store size, from the environment:
//
//	BERTH_BENCH_GC_REPOS        repositories (200)
//	BERTH_BENCH_GC_IMAGES       images per repository, every other one untagged (20)
//	BERTH_BENCH_GC_LAYER_BYTES  size of each image's own layer (1024)
func envInt(b *testing.B, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		b.Fatalf("%s=%q: want a positive integer", name, v)
	}
	return n
}

// BenchmarkGarbageCollect collects the same generated store with
// `registryd garbage-collect --delete-untagged` and Distribution's
// `registry garbage-collect --delete-untagged`, each on its own copy,
// BERTH_BENCH_GC_ROUNDS (3) times, alternating which runs first, and
// reports the median wall time and peak RSS of both and the ratios
// registryd ÷ Distribution (below 1 means registryd is faster or
// smaller). Both must leave the same files behind.
func BenchmarkGarbageCollect(b *testing.B) {
	repos := envInt(b, "BERTH_BENCH_GC_REPOS", 200)
	images := envInt(b, "BERTH_BENCH_GC_IMAGES", 20)
	layerBytes := envInt(b, "BERTH_BENCH_GC_LAYER_BYTES", 1024)
	rounds := envInt(b, "BERTH_BENCH_GC_ROUNDS", 3)
	// Each binary is copied into the benchmark's directory first: peak RSS
	// counts the binary's file pages mapped, and how many a fault maps
	// depends on how the page cache holds the file (a binary just written
	// by the linker measured 7 MiB more than the same file read back from
	// disk). Copies made the same way start both collectors alike.
	registryd := copyBinary(b, testutil.Registryd(b))
	dist := copyBinary(b, testutil.DistributionRegistry(b))

	src := b.TempDir()
	start := time.Now()
	if err := generateStore(src, repos, images, layerBytes); err != nil {
		b.Fatal(err)
	}
	b.Logf("generated %d repositories x %d images in %s", repos, images, time.Since(start).Round(time.Millisecond))

	for range b.N {
		var regTimes, distTimes, regRSS, distRSS, floorTimes []float64
		var deleted []string
		results.sampleLoad("garbage-collect start")
		for round := range rounds {
			regRoot, distRoot, floorRoot := filepath.Join(b.TempDir(), "r"), filepath.Join(b.TempDir(), "d"), filepath.Join(b.TempDir(), "f")
			for _, dst := range []string{regRoot, distRoot, floorRoot} {
				if out, err := exec.Command("cp", "-a", src, dst).CombinedOutput(); err != nil {
					b.Fatalf("cp: %v: %s", err, out)
				}
			}
			// Every timed run starts after a sync(2), so that none pays
			// for writing back what the copies or an earlier run left
			// dirty.
			// The generated store is new: without --grace-period=0
			// registryd would keep all of it for its age, and
			// Distribution has no grace period.
			runReg := func() {
				syscall.Sync()
				t, rss := runGC(b, registryd, regRoot, "--quiet", "--grace-period=0")
				regTimes, regRSS = append(regTimes, t.Seconds()), append(regRSS, float64(rss)/1024)
			}
			runDist := func() {
				syscall.Sync()
				t, rss := runGC(b, dist, distRoot, "--quiet")
				distTimes, distRSS = append(distTimes, t.Seconds()), append(distRSS, float64(rss)/1024)
			}
			if round%2 == 0 {
				runReg()
				runDist()
			} else {
				runDist()
				runReg()
			}
			if err := sameFiles(regRoot, distRoot); err != nil {
				b.Fatalf("registryd and Distribution left different stores: %v", err)
			}
			if deleted == nil {
				var err error
				if deleted, err = deletedDirs(src, regRoot); err != nil {
					b.Fatal(err)
				}
			}
			floorTimes = append(floorTimes, deleteDirs(b, floorRoot, deleted).Seconds())
			for _, dir := range []string{regRoot, distRoot, floorRoot} {
				if err := os.RemoveAll(dir); err != nil {
					b.Fatal(err)
				}
			}
		}
		results.sampleLoad("garbage-collect end")
		label := fmt.Sprintf("garbage-collect --delete-untagged, %d repositories × %d images", repos, images)
		results.addRow(compared(label+", time", "s", regTimes, distTimes, false, 0.2))
		results.addRow(compared(label+", peak RSS", "MiB", regRSS, distRSS, false, 1))
		floorLabel := fmt.Sprintf("deleting the %d directories both collectors delete, registryd's driver, %d at a time, no walk", len(deleted), floorWorkers)
		results.addLimit(limit{Figure: floorLabel, Unit: "s", Value: median(floorTimes), Rounds: floorTimes})
		var regFloor, distFloor []float64
		for i := range floorTimes {
			regFloor = append(regFloor, regTimes[i]/floorTimes[i])
			distFloor = append(distFloor, distTimes[i]/floorTimes[i])
		}
		r := row{Figure: "garbage-collect time ÷ deletion floor", Unit: "×", Registryd: median(regFloor), RegistrydRounds: regFloor, DistributionRounds: distFloor,
			Note: "each collector's time over the time registryd's filesystem driver takes to delete only what the collectors delete, same round: a collector deleting the way registryd does can go no lower than 1 ÷ Distribution's figure here"}
		d := median(distFloor)
		r.Distribution = &d
		results.addRow(r)
		b.ReportMetric(median(floorTimes), "floor-s")
		b.ReportMetric(median(regTimes), "registryd-s")
		b.ReportMetric(median(distTimes), "distribution-s")
		b.ReportMetric(median(regRSS), "registryd-maxrss-MiB")
		b.ReportMetric(median(distRSS), "distribution-maxrss-MiB")
	}
}

// runGC runs one collector binary on the store at root and returns its
// wall time and peak RSS in KiB. The RSS comes from GNU time (see
// hack/install-gnu-time.sh): the rusage os/exec reports for a child counts
// this test process's own RSS, since the child is started with vfork.
func runGC(b *testing.B, bin, root string, extra ...string) (time.Duration, int64) {
	b.Helper()
	dir := b.TempDir()
	cfg := filepath.Join(dir, "config.yml")
	yaml := fmt.Sprintf("version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: %s\n  maintenance:\n    readonly:\n      enabled: true\n", root)
	if err := os.WriteFile(cfg, []byte(yaml), 0o644); err != nil {
		b.Fatal(err)
	}
	rssFile := filepath.Join(dir, "maxrss")
	args := append([]string{"-f", "%M", "-o", rssFile, bin, "garbage-collect", "--delete-untagged"}, extra...)
	cmd := exec.Command(testutil.HackTool(b, "GNU_TIME", "install-gnu-time.sh"), append(args, cfg)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	start := time.Now()
	if err := cmd.Run(); err != nil {
		b.Fatalf("%s: %v\n%s", filepath.Base(bin), err, stderr.String())
	}
	elapsed := time.Since(start)
	raw, err := os.ReadFile(rssFile)
	if err != nil {
		b.Fatal(err)
	}
	kib, err := strconv.ParseInt(strings.TrimSpace(string(raw)), 10, 64)
	if err != nil {
		b.Fatalf("GNU time wrote %q: %v", raw, err)
	}
	return elapsed, kib
}

// generateStore writes a store of repos repositories holding images images
// each straight into Distribution's layout (no HTTP, no fsync). Each image
// has a config, a layer shared by its repository and a layer of its own;
// odd-numbered images are untagged, so --delete-untagged removes half.
func generateStore(root string, repos, images, layerBytes int) error {
	var wg sync.WaitGroup
	errs := make(chan error, repos)
	sem := make(chan struct{}, 8)
	for r := range repos {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			if err := generateRepository(root, r, images, layerBytes); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	return <-errs
}

func generateRepository(root string, r, images, layerBytes int) error {
	rng := rand.New(rand.NewPCG(uint64(r), 1))
	name := fmt.Sprintf("project%d/app%d", r/10, r)
	write := func(p string, content []byte) error {
		full := filepath.Join(root, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			return err
		}
		return os.WriteFile(full, content, 0o644)
	}
	blob := func(content []byte) (digest.Digest, error) {
		d := digest.FromBytes(content)
		if err := write(storage.BlobDataPath(d), content); err != nil {
			return "", err
		}
		return d, write(storage.LayerLinkPath(name, d), []byte(d))
	}
	random := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.UintN(256))
		}
		return b
	}
	base := random(layerBytes)
	baseDigest, err := blob(base)
	if err != nil {
		return err
	}
	for i := range images {
		cfg := fmt.Appendf(nil, `{"architecture":"amd64","os":"linux","repo":%d,"image":%d}`, r, i)
		cfgDigest, err := blob(cfg)
		if err != nil {
			return err
		}
		own := random(layerBytes)
		ownDigest, err := blob(own)
		if err != nil {
			return err
		}
		m := fmt.Appendf(nil, `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",`+
			`"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":%q,"size":%d},`+
			`"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":%q,"size":%d},`+
			`{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":%q,"size":%d}]}`,
			cfgDigest, len(cfg), baseDigest, len(base), ownDigest, len(own))
		md := digest.FromBytes(m)
		if err := write(storage.BlobDataPath(md), m); err != nil {
			return err
		}
		if err := write(storage.RevisionLinkPath(name, md), []byte(md)); err != nil {
			return err
		}
		if i%2 == 0 {
			tag := fmt.Sprintf("v%d", i)
			if err := write(storage.TagIndexLinkPath(name, tag, md), []byte(md)); err != nil {
				return err
			}
			if err := write(storage.TagCurrentLinkPath(name, tag), []byte(md)); err != nil {
				return err
			}
		}
	}
	return nil
}

// sameFiles reports the first regular file present below one root and not
// the other.
func sameFiles(a, b string) error {
	list := func(root string) (map[string]bool, error) {
		out := map[string]bool{}
		err := filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
			if err == nil && !fi.IsDir() {
				rel, _ := filepath.Rel(root, p)
				out[rel] = true
			}
			return err
		})
		return out, err
	}
	fa, err := list(a)
	if err != nil {
		return err
	}
	fb, err := list(b)
	if err != nil {
		return err
	}
	for p := range fa {
		if !fb[p] {
			return fmt.Errorf("%s only in registryd's copy", p)
		}
	}
	for p := range fb {
		if !fa[p] {
			return fmt.Errorf("%s only in Distribution's copy", p)
		}
	}
	return nil
}

// floorWorkers is how many directories the deletion floor removes at a
// time: the collectors' default worker count.
const floorWorkers = 8

// copyBinary copies the executable at src into a directory of the
// benchmark's, writes the copy to disk and drops it from the page cache
// (fsync, then POSIX_FADV_DONTNEED), so that each collector's pages are
// read back from disk when it runs, and returns the copy's path.
func copyBinary(b *testing.B, src string) string {
	b.Helper()
	dst := filepath.Join(b.TempDir(), filepath.Base(src))
	in, err := os.Open(src)
	if err != nil {
		b.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_EXCL, 0o755)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		b.Fatal(err)
	}
	if err := out.Sync(); err != nil {
		b.Fatal(err)
	}
	if err := unix.Fadvise(int(out.Fd()), 0, 0, unix.FADV_DONTNEED); err != nil {
		b.Fatal(err)
	}
	if err := out.Close(); err != nil {
		b.Fatal(err)
	}
	return dst
}

// deletedDirs lists, relative to the roots, the directories of the files
// present below before and gone below after: a collector deletes a
// blob's, a revision link's or a _layers link's directory with its file.
func deletedDirs(before, after string) ([]string, error) {
	var out []string
	seen := map[string]bool{}
	err := filepath.Walk(before, func(p string, fi os.FileInfo, err error) error {
		if err != nil || fi.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(before, p)
		if _, err := os.Lstat(filepath.Join(after, rel)); err == nil {
			return nil
		} else if !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		if dir := filepath.Dir(rel); !seen[dir] {
			seen[dir] = true
			out = append(out, dir)
		}
		return nil
	})
	return out, err
}

// deleteDirs removes dirs below root with the filesystem driver's Delete,
// the call registryd's collector deletes them with, floorWorkers at a time
// in a shuffled order, and returns how long it took: what those deletions
// cost on this storage with no walk, no reading and no deciding.
func deleteDirs(b *testing.B, root string, dirs []string) time.Duration {
	b.Helper()
	drv, err := filesystem.New(filesystem.Parameters{RootDirectory: root})
	if err != nil {
		b.Fatal(err)
	}
	ctx := b.Context()
	syscall.Sync()
	order := slices.Clone(dirs)
	rand.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
	ch := make(chan string)
	var mu sync.Mutex
	var firstErr error
	var wg sync.WaitGroup
	start := time.Now()
	for range floorWorkers {
		wg.Go(func() {
			for dir := range ch {
				if err := drv.Delete(ctx, "/"+filepath.ToSlash(dir)); err != nil {
					mu.Lock()
					firstErr = cmp.Or(firstErr, err)
					mu.Unlock()
				}
			}
		})
	}
	for _, dir := range order {
		ch <- dir
	}
	close(ch)
	wg.Wait()
	elapsed := time.Since(start)
	if firstErr != nil {
		b.Fatal(firstErr)
	}
	return elapsed
}
