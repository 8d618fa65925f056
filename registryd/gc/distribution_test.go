package gc_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/testutil"
	"github.com/berth-dev/berth/registryd/gc"
	"github.com/berth-dev/berth/registryd/storage/driver/filesystem"
)

// TestMatchesDistributionGarbageCollect pushes random stores through the
// real Distribution registry, stops it, and collects one copy with
// `registry garbage-collect` and another with `registryd garbage-collect`
// (same flags). Both must leave the same files, except that registryd
// keeps the referrers of live subjects (with --delete-untagged), which
// Distribution deletes: those extra files must be exactly the revisions,
// tag history, blobs and _layers links of such referrers.
//
// Layers are not shared across repositories here: Distribution's
// order-dependent handling of shared layers is a documented difference.
func TestMatchesDistributionGarbageCollect(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the Distribution registry")
	}
	dist := testutil.DistributionRegistry(t)
	registryd := testutil.Registryd(t)
	for _, seed := range []uint64{11, 12, 13} {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			root := tempDir(t)
			m := pushThroughDistribution(t, dist, root, seed)
			for _, untagged := range []bool{false, true} {
				t.Run(fmt.Sprintf("delete-untagged=%v", untagged), func(t *testing.T) {
					distRoot, regRoot := tempDir(t), tempDir(t)
					copyTree(t, root, distRoot)
					copyTree(t, root, regRoot)
					flags := []string{}
					if untagged {
						flags = append(flags, "--delete-untagged")
					}

					args := append([]string{"garbage-collect"}, flags...)
					runBinary(t, dist, append(args, writeGCConfig(t, distRoot))...)
					out := runBinary(t, registryd, append(append(args, "--json", "--quiet", "--grace-period=0"), writeGCConfig(t, regRoot))...)
					var sum gc.Summary
					if err := json.Unmarshal(out, &sum); err != nil {
						t.Fatalf("registryd output: %v: %s", err, out)
					}

					distFiles, regFiles := files(t, distRoot), files(t, regRoot)
					liveR, blobsR := m.live(untagged, true)
					liveD, blobsD := m.live(untagged, false)
					kept := 0
					extra := func(rel string) bool {
						repo, kind, d := layoutDigest(rel)
						switch kind {
						case "revision", "tagindex":
							return liveR[repo][d] && !liveD[repo][d]
						case "blob", "layer":
							return blobsR[d] && !blobsD[d]
						}
						return false
					}
					for rel, content := range distFiles {
						got, ok := regFiles[rel]
						if !ok {
							t.Errorf("registryd deleted %s, Distribution kept it", rel)
						} else if got != content {
							t.Errorf("%s differs", rel)
						}
					}
					for rel := range regFiles {
						if _, ok := distFiles[rel]; ok {
							continue
						}
						if !extra(rel) {
							t.Errorf("registryd kept %s, Distribution deleted it, and it belongs to no referrer of a live subject", rel)
						}
						kept++
					}
					for rel := range regFiles {
						if extra(rel) {
							if _, ok := distFiles[rel]; ok {
								t.Errorf("Distribution kept %s of a referrer of a live subject", rel)
							}
						}
					}
					if untagged && kept == 0 {
						t.Errorf("the store has no referrer of a live subject: the difference was not exercised")
					}
					if !untagged && kept != 0 {
						t.Errorf("without --delete-untagged the results differ in %d files", kept)
					}
					t.Logf("registryd deleted %d manifests, %d blobs, %d layer links; kept %d files of live referrers Distribution deleted",
						sum.ManifestsDeleted, sum.BlobsDeleted, sum.LayerLinksDeleted, kept)

					// What registryd kept is served, byte for byte, by registryd.
					drv, err := filesystem.New(filesystem.Parameters{RootDirectory: regRoot})
					if err != nil {
						t.Fatal(err)
					}
					checkLiveServed(t, m, serve(t, drv), liveR)
				})
			}
		})
	}
}

// pushThroughDistribution runs `registry serve` on root, builds a random
// store through it and stops it.
func pushThroughDistribution(t *testing.T, dist, root string, seed uint64) *model {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	cfg := filepath.Join(t.TempDir(), "serve.yml")
	yaml := fmt.Sprintf("version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: %s\n  delete:\n    enabled: true\nhttp:\n  addr: %s\n", root, addr)
	if err := os.WriteFile(cfg, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	var logs testutil.LockedBuffer
	cmd := exec.Command(dist, "serve", cfg)
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		_ = cmd.Process.Signal(os.Interrupt)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case _ = <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			_ = <-done
		}
	}
	t.Cleanup(stop)
	base := "http://" + addr
	err = testutil.Poll(func() error {
		return testutil.ServesV2(http.DefaultClient, base)
	}, testutil.Within(30*time.Second), testutil.Every(50*time.Millisecond))
	if err != nil {
		t.Fatalf("the Distribution registry did not start: %v\n%s", err, logs.String())
	}
	m := newModel(&client{t: t, base: base}, seed, 3, false)
	m.build(20)
	stop()
	return m
}

func writeGCConfig(t *testing.T, root string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "gc.yml")
	yaml := fmt.Sprintf("version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: %s\n  maintenance:\n    readonly:\n      enabled: true\n", root)
	if err := os.WriteFile(p, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func runBinary(t *testing.T, bin string, args ...string) []byte {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %v: %v\n%s", filepath.Base(bin), args, err, stderr.String())
	}
	return stdout.Bytes()
}
