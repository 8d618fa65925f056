package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/berth-dev/berth/registryd/gc"
	"github.com/berth-dev/berth/registryd/server"
)

// terminationLogPath is where a Kubernetes container reports why it ended;
// the summary is written there when the file is writable. A variable so
// tests can point it elsewhere.
var terminationLogPath = "/dev/termination-log"

// maxTerminationMessage is what the kubelet keeps of a termination message.
const maxTerminationMessage = 4096

func init() {
	commands["garbage-collect"] = command{
		summary: "delete blobs and manifests no tag or manifest references",
		run:     runGarbageCollect,
	}
}

func runGarbageCollect(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("garbage-collect", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dryRun := fs.Bool("dry-run", false, "delete nothing; report what would be deleted")
	deleteUntagged := fs.Bool("delete-untagged", false, "delete manifests no tag reaches (through index children and subjects)")
	quiet := fs.Bool("quiet", false, "log only warnings and errors")
	asJSON := fs.Bool("json", false, "print the summary as one JSON object on stdout")
	allowWritable := fs.Bool("allow-writable", false, "run although storage.maintenance.readonly is not enabled: only when no registry serves this storage")
	workers := fs.Int("workers", gc.DefaultWorkers, "repositories marked and deletions run at a time")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: registryd garbage-collect [--dry-run] [--delete-untagged] [--quiet] [--json] [--allow-writable] [--workers N] config.yml")
		fs.PrintDefaults()
	}
	// Accept flags after the config path too, as Distribution's cobra does.
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return err
		}
		if fs.NArg() == 0 {
			break
		}
		positional = append(positional, fs.Arg(0))
		args = fs.Args()[1:]
	}
	if len(positional) != 1 {
		fs.Usage()
		return fmt.Errorf("want exactly one configuration file, got %d arguments", len(positional))
	}

	sum, err := garbageCollect(ctx, positional[0], gcFlags{
		dryRun: *dryRun, deleteUntagged: *deleteUntagged, quiet: *quiet,
		allowWritable: *allowWritable, workers: *workers,
	}, stderr)
	ran := sum != nil
	if !ran {
		sum = &gc.Summary{DryRun: *dryRun, DeleteUntagged: *deleteUntagged, Error: err.Error()}
	}
	writeTerminationLog(sum)
	if *asJSON {
		enc := json.NewEncoder(stdout)
		if encErr := enc.Encode(sum); encErr != nil && err == nil {
			err = encErr
		}
	} else if ran {
		printSummary(stdout, sum, *quiet)
	}
	return err
}

type gcFlags struct {
	dryRun, deleteUntagged, quiet, allowWritable bool
	workers                                      int
}

// garbageCollect loads the configuration, checks it is safe to collect and
// runs the collector. The Summary is nil when it never started.
func garbageCollect(ctx context.Context, configPath string, f gcFlags, stderr io.Writer) (*gc.Summary, error) {
	cfg, _, err := loadConfiguration(configPath)
	if err != nil {
		return nil, err
	}
	if !cfg.Storage.Maintenance.ReadOnly.Enabled && !f.allowWritable {
		return nil, errors.New("refusing to collect garbage in storage a registry may be writing to: " +
			"set storage.maintenance.readonly.enabled: true on every registry serving it first, " +
			"or pass --allow-writable when no registry serves this storage")
	}
	logger, err := server.NewLogger(cfg, stderr)
	if err != nil {
		return nil, err
	}
	if f.quiet {
		logger = slog.New(minLevel{Handler: logger.Handler(), level: slog.LevelWarn})
	}
	drv, err := server.NewStorageDriver(&cfg.Storage, server.WithDriverLogger(logger))
	if err != nil {
		return nil, err
	}
	return gc.Run(ctx, drv, gc.Options{
		DryRun:         f.dryRun,
		DeleteUntagged: f.deleteUntagged,
		Workers:        f.workers,
		Logger:         logger,
	})
}

// minLevel drops records below level.
type minLevel struct {
	slog.Handler
	level slog.Level
}

func (h minLevel) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= h.level && h.Handler.Enabled(ctx, l)
}

func (h minLevel) WithAttrs(attrs []slog.Attr) slog.Handler {
	return minLevel{Handler: h.Handler.WithAttrs(attrs), level: h.level}
}

func (h minLevel) WithGroup(name string) slog.Handler {
	return minLevel{Handler: h.Handler.WithGroup(name), level: h.level}
}

// writeTerminationLog writes the summary, without the lists, to the
// termination log when there is one to write to. It never creates the file.
func writeTerminationLog(sum *gc.Summary) {
	short := *sum
	short.Deleted = nil
	b, err := json.Marshal(&short)
	if err != nil {
		return
	}
	for len(b) > maxTerminationMessage && len(short.Errors) > 0 {
		short.Errors = short.Errors[:len(short.Errors)/2]
		if b, err = json.Marshal(&short); err != nil {
			return
		}
	}
	f, err := os.OpenFile(terminationLogPath, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		return
	}
	defer f.Close()
	_, _ = f.Write(b)
}

func printSummary(w io.Writer, s *gc.Summary, quiet bool) {
	verb := "deleted"
	if s.DryRun {
		verb = "to delete"
		if !quiet {
			for _, m := range s.Deleted.Manifests {
				fmt.Fprintf(w, "manifest eligible for deletion: %s@%s\n", m.Repository, m.Digest)
			}
			for _, b := range s.Deleted.Blobs {
				fmt.Fprintf(w, "blob eligible for deletion: %s (%d bytes)\n", b.Digest, b.Size)
			}
			for _, l := range s.Deleted.LayerLinks {
				fmt.Fprintf(w, "layer link eligible for deletion: %s@%s\n", l.Repository, l.Digest)
			}
		}
		fmt.Fprintln(w, "dry run: nothing was deleted")
	}
	fmt.Fprintf(w, "repositories: %d\n", s.Repositories)
	fmt.Fprintf(w, "manifests: %d marked, %d %s (%d tag index entries)\n", s.ManifestsMarked, s.ManifestsDeleted, verb, s.TagIndexEntriesDeleted)
	fmt.Fprintf(w, "blobs: %d marked, %d %s, %d bytes freed\n", s.BlobsMarked, s.BlobsDeleted, verb, s.BytesFreed)
	fmt.Fprintf(w, "layer links: %d %s\n", s.LayerLinksDeleted, verb)
	fmt.Fprintf(w, "duration: %s\n", s.Duration().Round(time.Millisecond))
	if s.ErrorCount > 0 {
		fmt.Fprintf(w, "errors: %d\n  %s\n", s.ErrorCount, strings.Join(s.Errors, "\n  "))
	}
}
