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
	"time"

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
		"read-only storage":       {readOnly: true, args: []string{"--json", "--delete-untagged", "--grace-period=0"}},
		"writable, allowed":       {args: []string{"--json", "--delete-untagged", "--allow-writable", "--grace-period", "0s"}},
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
				args = []string{"garbage-collect", cfg, "--delete-untagged", "--json", "--quiet", "--grace-period=0"}
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
	args := []string{"garbage-collect", "--dry-run", "--delete-untagged", "--grace-period=0", writeConfig(t, root, true)}
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

// ageStore sets every file below root two hours in the past.
func ageStore(t *testing.T, root string) {
	t.Helper()
	old := time.Now().Add(-2 * time.Hour)
	err := filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if err != nil || fi.IsDir() {
			return err
		}
		return os.Chtimes(p, old, old)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// runGC runs garbage-collect in process and decodes its --json summary.
func runGC(t *testing.T, args ...string) (code int, sum gc.Summary, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(context.Background(), append([]string{"garbage-collect", "--json"}, args...), &out, &errb)
	if err := json.Unmarshal(out.Bytes(), &sum); err != nil {
		t.Fatalf("stdout is not the JSON summary: %v: %q (stderr %s)", err, out.String(), errb.String())
	}
	return code, sum, errb.String()
}

func TestGarbageCollectGracePeriod(t *testing.T) {
	tests := map[string]struct {
		args []string
		aged bool
		// wanted: deleted and kept-as-young counts.
		manifests, blobs, manifestsYoung, blobsYoung int
		grace                                        float64
	}{
		"default keeps a new store":   {manifestsYoung: 1, blobsYoung: 4, grace: 3600},
		"default deletes old garbage": {aged: true, manifests: 1, blobs: 4, grace: 3600},
		"longer than the store's age": {args: []string{"--grace-period", "3h"}, aged: true, manifestsYoung: 1, blobsYoung: 4, grace: 10800},
		"zero":                        {args: []string{"--grace-period=0"}, manifests: 1, blobs: 4},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			root, _, _ := gcStore(t)
			if tc.aged {
				ageStore(t, root)
			}
			tlog := withTerminationLog(t)
			args := append(append([]string{"--delete-untagged"}, tc.args...), writeConfig(t, root, true))
			code, sum, stderr := runGC(t, args...)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			if sum.ManifestsDeleted != tc.manifests || sum.BlobsDeleted != tc.blobs || sum.ManifestsKeptYoung != tc.manifestsYoung ||
				sum.BlobsKeptYoung != tc.blobsYoung || sum.GracePeriodSeconds != tc.grace {
				t.Errorf("summary = %+v", sum)
			}
			b, err := os.ReadFile(tlog)
			if err != nil {
				t.Fatal(err)
			}
			var short map[string]any
			if err := json.Unmarshal(b, &short); err != nil {
				t.Fatal(err)
			}
			if short["gracePeriodSeconds"] != tc.grace || short["blobsKeptYoung"] != float64(tc.blobsYoung) || short["manifestsKeptYoung"] != float64(tc.manifestsYoung) {
				t.Errorf("termination log = %s", b)
			}
		})
	}
	t.Run("text summary", func(t *testing.T) {
		root, _, _ := gcStore(t)
		withTerminationLog(t)
		var stdout, stderr bytes.Buffer
		if code := run(context.Background(), []string{"garbage-collect", "--delete-untagged", "--grace-period", "2h", writeConfig(t, root, true)}, &stdout, &stderr); code != 0 {
			t.Fatalf("exit %d: %s", code, stderr.String())
		}
		if want := "grace period: 2h0m0s: 1 manifests and 4 blobs kept as younger"; !strings.Contains(stdout.String(), want) {
			t.Errorf("stdout lacks %q:\n%s", want, stdout.String())
		}
	})
	t.Run("negative", func(t *testing.T) {
		root, _, _ := gcStore(t)
		withTerminationLog(t)
		code, _, stderr := runGC(t, "--grace-period=-1m", writeConfig(t, root, true))
		if code != 1 || !strings.Contains(stderr, "--grace-period: -1m0s is negative") {
			t.Errorf("exit %d: %s", code, stderr)
		}
	})
}

func writeHold(t *testing.T, id string, expires time.Time) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "hold.json")
	b := fmt.Sprintf(`{"id":%q,"holder":"GarbageCollection default/gc-%s","expires":%q}`, id, id, expires.UTC().Format(time.RFC3339))
	if err := os.WriteFile(p, []byte(b), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestGarbageCollectHoldFile: an active hold with the run's id is proof
// enough on storage whose configuration is not read-only; anything else is
// refused before anything is read from storage; a hold about to expire
// leaves no time to delete.
func TestGarbageCollectHoldFile(t *testing.T) {
	hour := time.Now().Add(time.Hour)
	bad := filepath.Join(t.TempDir(), "bad.json")
	if err := os.WriteFile(bad, []byte(`{"id":"run-1"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := map[string]struct {
		args    []string
		wantErr string // "" for a run that deletes the garbage
	}{
		"active hold, same id":    {args: []string{"--hold-file", writeHold(t, "run-1", hour), "--hold-id", "run-1"}},
		"no hold file":            {args: []string{"--hold-file", filepath.Join(t.TempDir(), "hold.json"), "--hold-id", "run-1"}, wantErr: "does not exist, so no hold makes the registries read-only"},
		"another run's hold":      {args: []string{"--hold-file", writeHold(t, "run-2", hour), "--hold-id", "run-1"}, wantErr: `is "run-2" (GarbageCollection default/gc-run-2), not --hold-id "run-1"`},
		"expired hold":            {args: []string{"--hold-file", writeHold(t, "run-1", time.Now().Add(-time.Minute)), "--hold-id", "run-1"}, wantErr: `hold "run-1" in`},
		"invalid hold file":       {args: []string{"--hold-file", bad, "--hold-id", "run-1"}, wantErr: "bad.json: expires: missing"},
		"hold without its id":     {args: []string{"--hold-file", writeHold(t, "run-1", hour)}, wantErr: "--hold-file needs --hold-id"},
		"id without a hold":       {args: []string{"--hold-id", "run-1"}, wantErr: "--hold-id needs --hold-file"},
		"hold and allow-writable": {args: []string{"--hold-file", writeHold(t, "run-1", hour), "--hold-id", "run-1", "--allow-writable"}, wantErr: "alternatives"},
		// Expiring within hold.ExpiryMargin: the deadline is already past.
		"hold about to expire": {args: []string{"--hold-file", writeHold(t, "run-1", time.Now().Add(5*time.Second)), "--hold-id", "run-1"}, wantErr: "deadline reached while marking: nothing was deleted"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			root, _, _ := gcStore(t)
			before := countFiles(t, root)
			tlog := withTerminationLog(t)
			args := append(append([]string{"--delete-untagged", "--grace-period=0"}, tc.args...), writeConfig(t, root, false))
			code, sum, stderr := runGC(t, args...)
			if tc.wantErr == "" {
				if code != 0 || sum.ManifestsDeleted != 1 || sum.BlobsDeleted != 4 {
					t.Fatalf("exit %d, summary %+v: %s", code, sum, stderr)
				}
				return
			}
			if code != 1 || !strings.Contains(stderr, tc.wantErr) || !strings.Contains(sum.Error, tc.wantErr) {
				t.Errorf("exit %d, summary error %q, stderr:\n%s\nwant %q", code, sum.Error, stderr, tc.wantErr)
			}
			if after := countFiles(t, root); after != before {
				t.Errorf("%d files before, %d after a refused run", before, after)
			}
			var short gc.Summary
			if b, _ := os.ReadFile(tlog); json.Unmarshal(b, &short) != nil || !strings.Contains(short.Error, tc.wantErr) {
				t.Errorf("termination log = %s", b)
			}
		})
	}
}

// TestGarbageCollectDeadline: a deadline already past deletes nothing and
// fails with "deadline reached" and a summary; a later one changes
// nothing; the earlier of --deadline and the hold's expiry applies.
func TestGarbageCollectDeadline(t *testing.T) {
	past := time.Now().Add(-time.Minute).UTC().Format(time.RFC3339)
	future := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	tests := map[string]struct {
		args    []string
		hold    time.Time
		wantErr string
	}{
		"in the past":             {args: []string{"--deadline", past}, wantErr: "deadline reached while marking: nothing was deleted"},
		"in the future":           {args: []string{"--deadline", future}},
		"not a time":              {args: []string{"--deadline", "tomorrow"}, wantErr: `--deadline: want an RFC 3339 time such as 2026-03-01T12:00:00Z, got "tomorrow"`},
		"past, with a later hold": {args: []string{"--deadline", past}, hold: time.Now().Add(time.Hour), wantErr: "deadline reached"},
		"future, hold expiring":   {args: []string{"--deadline", future}, hold: time.Now().Add(5 * time.Second), wantErr: "deadline reached"},
		"future, hold much later": {args: []string{"--deadline", future}, hold: time.Now().Add(2 * time.Hour)},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			root, _, _ := gcStore(t)
			before := countFiles(t, root)
			withTerminationLog(t)
			args := append([]string{"--delete-untagged", "--grace-period=0"}, tc.args...)
			if !tc.hold.IsZero() {
				args = append(args, "--hold-file", writeHold(t, "run-1", tc.hold), "--hold-id", "run-1")
			}
			code, sum, stderr := runGC(t, append(args, writeConfig(t, root, tc.hold.IsZero()))...)
			if tc.wantErr == "" {
				if code != 0 || sum.BlobsDeleted != 4 {
					t.Fatalf("exit %d, summary %+v: %s", code, sum, stderr)
				}
				return
			}
			if code != 1 || !strings.Contains(stderr, tc.wantErr) || !strings.Contains(sum.Error, tc.wantErr) {
				t.Errorf("exit %d, summary error %q, stderr:\n%s\nwant %q", code, sum.Error, stderr, tc.wantErr)
			}
			if after := countFiles(t, root); after != before || sum.BlobsDeleted+sum.ManifestsDeleted != 0 {
				t.Errorf("%d files before, %d after; summary %+v", before, after, sum)
			}
		})
	}
}
