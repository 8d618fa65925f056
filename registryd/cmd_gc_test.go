package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/berth-dev/berth/registryd/gc"
	"github.com/berth-dev/berth/registryd/storage"
	"github.com/berth-dev/berth/registryd/storage/driver/filesystem"
)

// gcStore writes a small store straight through the storage layer: a
// tagged image, an untagged one and a stray blob. It returns the root and
// the digests of the untagged manifest and the stray blob.
func gcStore(t *testing.T) (root string, untagged, stray digest.Digest) {
	t.Helper()
	root = t.TempDir()
	drv, err := filesystem.New(filesystem.Parameters{RootDirectory: root})
	if err != nil {
		t.Fatal(err)
	}
	s := storage.New(drv)
	ctx := context.Background()
	image := func(nonce string) digest.Digest {
		cfg := []byte(`{"nonce":"` + nonce + `"}`)
		layer := []byte("layer " + nonce)
		for _, b := range [][]byte{cfg, layer} {
			if _, err := s.PutBlob(ctx, "app", digest.FromBytes(b), b); err != nil {
				t.Fatal(err)
			}
		}
		m := fmt.Appendf(nil, `{"schemaVersion":2,"mediaType":%q,"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":%q,"size":%d},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":%q,"size":%d}]}`,
			storage.MediaTypeOCIManifest, digest.FromBytes(cfg), len(cfg), digest.FromBytes(layer), len(layer))
		d := digest.FromBytes(m)
		if err := s.PutManifest(ctx, "app", d, m); err != nil {
			t.Fatal(err)
		}
		return d
	}
	if err := s.Tag(ctx, "app", "v1", image("tagged")); err != nil {
		t.Fatal(err)
	}
	untagged = image("untagged")
	b := []byte("stray upload")
	stray = digest.FromBytes(b)
	if _, err := s.PutBlob(ctx, "app", stray, b); err != nil {
		t.Fatal(err)
	}
	return root, untagged, stray
}

func writeConfig(t *testing.T, root string, readOnly bool) string {
	t.Helper()
	cfg := fmt.Sprintf("version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: %s\n  maintenance:\n    readonly:\n      enabled: %v\n", root, readOnly)
	p := filepath.Join(t.TempDir(), "config.yml")
	if err := os.WriteFile(p, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// withTerminationLog points the termination log at a fresh empty file.
func withTerminationLog(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "termination-log")
	if err := os.WriteFile(p, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	old := terminationLogPath
	terminationLogPath = p
	t.Cleanup(func() { terminationLogPath = old })
	return p
}

func TestGarbageCollectRefusesWritableStorage(t *testing.T) {
	root, _, _ := gcStore(t)
	before := countFiles(t, root)
	tlog := withTerminationLog(t)
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"garbage-collect", "--delete-untagged", writeConfig(t, root, false)}, &stdout, &stderr)
	if code != 1 {
		t.Fatalf("exit %d, want 1; stderr: %s", code, stderr.String())
	}
	for _, want := range []string{"storage.maintenance.readonly.enabled: true", "--allow-writable"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("stderr does not mention %q: %s", want, stderr.String())
		}
	}
	if after := countFiles(t, root); after != before {
		t.Errorf("%d files before, %d after a refused run", before, after)
	}
	var sum gc.Summary
	if b, _ := os.ReadFile(tlog); json.Unmarshal(b, &sum) != nil || !strings.Contains(sum.Error, "refusing") {
		t.Errorf("termination log = %s, want the refusal", b)
	}
}

func TestGarbageCollectJSONAndTerminationLog(t *testing.T) {
	tests := map[string]struct {
		readOnly bool
		args     []string
	}{
		"read-only storage":       {readOnly: true, args: []string{"--json", "--delete-untagged"}},
		"writable, allowed":       {args: []string{"--json", "--delete-untagged", "--allow-writable"}},
		"flags after config path": {args: []string{"--json"}, readOnly: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			root, untagged, stray := gcStore(t)
			tlog := withTerminationLog(t)
			cfg := writeConfig(t, root, tc.readOnly)
			args := append([]string{"garbage-collect"}, tc.args...)
			args = append(args, cfg)
			if name == "flags after config path" {
				args = []string{"garbage-collect", cfg, "--delete-untagged", "--json", "--quiet"}
			}
			var stdout, stderr bytes.Buffer
			if code := run(context.Background(), args, &stdout, &stderr); code != 0 {
				t.Fatalf("exit %d; stderr: %s", code, stderr.String())
			}
			var sum gc.Summary
			dec := json.NewDecoder(&stdout)
			if err := dec.Decode(&sum); err != nil {
				t.Fatalf("stdout is not a JSON object: %v", err)
			}
			if dec.More() {
				t.Errorf("stdout holds more than one JSON value")
			}
			if sum.Repositories != 1 || sum.ManifestsMarked != 1 || sum.ManifestsDeleted != 1 ||
				sum.BlobsMarked != 3 || sum.BlobsDeleted != 4 || sum.LayerLinksDeleted != 3 || sum.BytesFreed <= 0 {
				t.Errorf("summary = %+v", sum)
			}
			if len(sum.Deleted.Manifests) != 1 || sum.Deleted.Manifests[0].Digest != untagged {
				t.Errorf("deleted manifests = %+v, want %s", sum.Deleted.Manifests, untagged)
			}
			found := false
			for _, b := range sum.Deleted.Blobs {
				found = found || b.Digest == stray
			}
			if !found {
				t.Errorf("stray blob %s not among the deleted %+v", stray, sum.Deleted.Blobs)
			}

			b, err := os.ReadFile(tlog)
			if err != nil {
				t.Fatal(err)
			}
			var short map[string]any
			if err := json.Unmarshal(b, &short); err != nil {
				t.Fatalf("termination log is not JSON: %v: %s", err, b)
			}
			if _, ok := short["deleted"]; ok {
				t.Errorf("termination log carries the lists: %s", b)
			}
			if short["blobsDeleted"] != float64(4) || short["manifestsDeleted"] != float64(1) || short["bytesFreed"] != float64(sum.BytesFreed) {
				t.Errorf("termination log = %s", b)
			}
			if strings.Contains(name, "after") && strings.Contains(stderr.String(), "level=INFO") {
				t.Errorf("--quiet still logs progress: %s", stderr.String())
			}
			if !strings.Contains(name, "after") && !strings.Contains(stderr.String(), "Garbage collection done") {
				t.Errorf("no progress log on stderr: %s", stderr.String())
			}
		})
	}
}

func TestGarbageCollectTextSummaryAndDryRun(t *testing.T) {
	root, untagged, _ := gcStore(t)
	before := countFiles(t, root)
	withTerminationLog(t)
	var stdout, stderr bytes.Buffer
	args := []string{"garbage-collect", "--dry-run", "--delete-untagged", writeConfig(t, root, true)}
	if code := run(context.Background(), args, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d; stderr: %s", code, stderr.String())
	}
	for _, want := range []string{
		"manifest eligible for deletion: app@" + untagged.String(),
		"dry run: nothing was deleted",
		"manifests: 1 marked, 1 to delete",
		"blobs: 3 marked, 4 to delete",
	} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("stdout lacks %q:\n%s", want, stdout.String())
		}
	}
	if after := countFiles(t, root); after != before {
		t.Errorf("dry run: %d files before, %d after", before, after)
	}
}

func TestGarbageCollectNoTerminationLog(t *testing.T) {
	root, _, _ := gcStore(t)
	p := filepath.Join(t.TempDir(), "absent")
	old := terminationLogPath
	terminationLogPath = p
	t.Cleanup(func() { terminationLogPath = old })
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"garbage-collect", "--quiet", writeConfig(t, root, true)}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d; stderr: %s", code, stderr.String())
	}
	if _, err := os.Stat(p); !os.IsNotExist(err) {
		t.Errorf("the termination log was created outside a container: %v", err)
	}
}

func countFiles(t *testing.T, root string) int {
	t.Helper()
	n := 0
	err := filepath.Walk(root, func(_ string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			n++
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}
