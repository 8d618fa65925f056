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

	"github.com/berth-dev/berth/registryd/configuration"
	"github.com/berth-dev/berth/registryd/gc"
	"github.com/berth-dev/berth/registryd/hold"
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
	gracePeriod := fs.Duration("grace-period", defaultGracePeriod, "never delete blobs, _layers links' blobs and (with --delete-untagged) untagged manifests modified less than this before the run; 0 keeps nothing for its age")
	holdFile := fs.String("hold-file", "", "read-only hold file: with --hold-id, proof that the registries serving this storage refuse writes; deletions stop before the hold expires")
	holdID := fs.String("hold-id", "", "the id the hold in --hold-file must have (the GC run's UID)")
	deadline := fs.String("deadline", "", "RFC 3339 time from which no deletion starts; the run then fails with \"deadline reached\"")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: registryd garbage-collect [--dry-run] [--delete-untagged] [--grace-period D] [--deadline T]\n"+
			"       [--hold-file PATH --hold-id ID | --allow-writable] [--quiet] [--json] [--workers N] config.yml")
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

	f := gcFlags{
		dryRun: *dryRun, deleteUntagged: *deleteUntagged, quiet: *quiet,
		allowWritable: *allowWritable, workers: *workers,
		gracePeriod: *gracePeriod, holdFile: *holdFile, holdID: *holdID,
	}
	var sum *gc.Summary
	err := f.parseDeadline(*deadline)
	if err == nil {
		sum, err = garbageCollect(ctx, positional[0], f, stderr)
	}
	ran := sum != nil
	if !ran {
		sum = &gc.Summary{DryRun: *dryRun, DeleteUntagged: *deleteUntagged, GracePeriodSeconds: gracePeriod.Seconds(), Error: err.Error()}
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

// defaultGracePeriod is --grace-period's default: what the peers use
// (zot's gcDelay and OpenShift's pruner: 1h; Harbor: 2h) for the same
// reason, a push that straddles the run.
const defaultGracePeriod = time.Hour

type gcFlags struct {
	dryRun, deleteUntagged, quiet, allowWritable bool
	workers                                      int
	gracePeriod                                  time.Duration
	holdFile, holdID                             string
	deadline                                     time.Time
}

func (f *gcFlags) parseDeadline(s string) error {
	if s == "" {
		return nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return fmt.Errorf("--deadline: want an RFC 3339 time such as 2026-03-01T12:00:00Z, got %q", s)
	}
	f.deadline = t
	return nil
}

// check validates the flags on their own.
func (f *gcFlags) check() error {
	switch {
	case f.gracePeriod < 0:
		return fmt.Errorf("--grace-period: %s is negative", f.gracePeriod)
	case f.holdFile != "" && f.holdID == "":
		return errors.New("--hold-file needs --hold-id: the id of the run the hold must belong to")
	case f.holdID != "" && f.holdFile == "":
		return errors.New("--hold-id needs --hold-file")
	case f.holdFile != "" && f.allowWritable:
		return errors.New("--hold-file and --allow-writable are alternatives: pass one")
	}
	return nil
}

// proveReadOnly checks that the registries serving the storage refuse
// writes: an active hold with the run's id (which also bounds the
// deadline), the configuration's read-only flag, or --allow-writable.
func (f *gcFlags) proveReadOnly(readOnlyConfigured bool, now time.Time) error {
	if f.holdFile != "" {
		h, err := hold.Read(f.holdFile)
		switch {
		case errors.Is(err, hold.ErrNoHold):
			return fmt.Errorf("refusing to collect garbage: --hold-file %s does not exist, so no hold makes the registries read-only", f.holdFile)
		case err != nil:
			return fmt.Errorf("refusing to collect garbage: --hold-file: %w", err)
		case h.ID != f.holdID:
			return fmt.Errorf("refusing to collect garbage: the hold in %s is %q (%s), not --hold-id %q", f.holdFile, h.ID, h.Holder, f.holdID)
		case !h.Active(now):
			return fmt.Errorf("refusing to collect garbage: hold %q in %s expired at %s", h.ID, f.holdFile, h.Expires.UTC().Format(time.RFC3339))
		}
		// Stop deleting before any replica can see the hold expire.
		if stop := h.Expires.Add(-hold.ExpiryMargin); f.deadline.IsZero() || stop.Before(f.deadline) {
			f.deadline = stop
		}
		return nil
	}
	if !readOnlyConfigured && !f.allowWritable {
		return errors.New("refusing to collect garbage in storage a registry may be writing to: " +
			"set storage.maintenance.readonly.enabled: true on every registry serving it first " +
			"(or give the operator's read-only hold with --hold-file and --hold-id), " +
			"or pass --allow-writable when no registry serves this storage")
	}
	return nil
}

// garbageCollect loads the configuration, checks it is safe to collect and
// runs the collector. The Summary is nil when it never started.
func garbageCollect(ctx context.Context, configPath string, f gcFlags, stderr io.Writer) (*gc.Summary, error) {
	if err := f.check(); err != nil {
		return nil, err
	}
	cfg, _, err := loadConfiguration(configPath)
	if err != nil {
		return nil, err
	}
	if err := f.proveReadOnly(cfg.Storage.Maintenance.ReadOnly.Enabled, time.Now()); err != nil {
		return nil, err
	}
	logger, closeHooks, err := server.NewLogging(cfg, stderr, new(slog.LevelVar))
	if err != nil {
		return nil, err
	}
	defer func() {
		drainCtx, cancel := context.WithTimeout(context.Background(), server.HookDrain)
		defer cancel()
		_ = closeHooks(drainCtx)
	}()
	if f.quiet {
		logger = slog.New(minLevel{Handler: logger.Handler(), level: slog.LevelWarn})
	}
	drv, err := server.NewStorageDriver(&cfg.Storage, server.WithDriverLogger(logger))
	if err != nil {
		return nil, err
	}
	opts := gc.Options{
		DryRun:         f.dryRun,
		DeleteUntagged: f.deleteUntagged,
		Workers:        f.workers,
		GracePeriod:    f.gracePeriod,
		Deadline:       f.deadline,
		Logger:         logger,
	}
	switch cfg.Storage.Cache.Kind() {
	case configuration.CacheRedis:
		// The registries serving this storage share the redis cache:
		// what the run sweeps is evicted from it. Without redis that
		// cannot happen, so the run does not start.
		c, err := server.NewRedisCache(cfg.Redis, logger)
		if err != nil {
			return nil, err
		}
		defer c.Close()
		pingCtx, cancel := context.WithTimeout(ctx, redisPingTimeout)
		defer cancel()
		if err := c.Ping(pingCtx); err != nil {
			return nil, fmt.Errorf("storage.cache.blobdescriptor is redis, but redis does not answer (%w): "+
				"refusing to collect garbage, since what the run deletes would stay in the registries' cache", err)
		}
		opts.Cache = c
	case configuration.CacheInMemory:
		logger.Info("The registries' in-memory blob descriptor caches are dropped when they leave read-only mode")
	}
	return gc.Run(ctx, drv, opts)
}

// redisPingTimeout bounds the check that redis answers before a run.
const redisPingTimeout = 10 * time.Second

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
	fmt.Fprintf(w, "grace period: %s: %d manifests and %d blobs kept as younger\n",
		time.Duration(s.GracePeriodSeconds*float64(time.Second)), s.ManifestsKeptYoung, s.BlobsKeptYoung)
	fmt.Fprintf(w, "duration: %s\n", s.Duration().Round(time.Millisecond))
	if s.ErrorCount > 0 {
		fmt.Fprintf(w, "errors: %d\n  %s\n", s.ErrorCount, strings.Join(s.Errors, "\n  "))
	}
}
