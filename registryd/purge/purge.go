// Package purge removes abandoned blob uploads
// (storage.maintenance.uploadpurging).
//
// An upload lives in repositories/<name>/_uploads/<uuid>/ with its start
// time in the startedat file (RFC 3339). Purge removes every upload
// directory whose startedat is older than the cutoff; an upload without a
// readable startedat is kept (its age is unknown, as Distribution decides).
// A dry run only reports what would be removed.
//
// Schedule, as Distribution's: upload purging is on by default, also when
// the section is absent (age 168h, interval 24h, dryrun false). The first
// run waits a random jitter of whole minutes in [0, 60) so that replicas
// started together do not walk the storage at once; registryd caps that
// jitter at the interval, so that a short interval is honoured from the
// start. Then it runs every interval until the context ends. A run is
// skipped while the registry is read-only (ReadOnly), so that maintenance
// mode really leaves storage untouched; Distribution purges regardless.
package purge

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"path"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/berth-dev/berth/registryd/storage"
	"github.com/berth-dev/berth/registryd/storage/driver"
)

// Clock is the time source of the purger; tests substitute a fake one.
type Clock interface {
	Now() time.Time
	// After returns a channel that receives once d has elapsed.
	After(d time.Duration) <-chan time.Time
}

type realClock struct{}

func (realClock) Now() time.Time                         { return time.Now() }
func (realClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// RealClock is the wall clock.
var RealClock Clock = realClock{}

// Result is the outcome of one purge.
type Result struct {
	// Deleted are the upload directories removed, or that a dry run
	// would remove.
	Deleted []string
	// Errors are the uploads that could not be read or removed.
	Errors []error
}

// Purge removes (or, with dryRun, lists) the upload directories of drv
// started before olderThan. It keeps going after per-upload errors, which
// it collects; the returned error is the walk's own failure.
func Purge(ctx context.Context, drv driver.StorageDriver, olderThan time.Time, dryRun bool) (Result, error) {
	var res Result
	var uploads []string
	root := path.Join(storage.RootPath, "repositories")
	err := drv.Walk(ctx, root, func(fi driver.FileInfo) error {
		if !fi.IsDir() {
			return nil
		}
		base := path.Base(fi.Path())
		if path.Base(path.Dir(fi.Path())) == "_uploads" {
			if _, err := uuid.Parse(base); err == nil {
				uploads = append(uploads, fi.Path())
			}
			return driver.ErrSkipDir
		}
		if strings.HasPrefix(base, "_") && base != "_uploads" {
			return driver.ErrSkipDir // _layers, _manifests
		}
		return nil
	})
	if errors.Is(err, driver.ErrNotFound) {
		return res, nil // no repository yet
	}
	if err != nil {
		return res, err
	}
	for _, dir := range uploads {
		b, err := drv.GetContent(ctx, path.Join(dir, "startedat"))
		if err != nil {
			if !errors.Is(err, driver.ErrNotFound) {
				res.Errors = append(res.Errors, err)
			}
			continue
		}
		started, err := time.Parse(time.RFC3339, strings.TrimSpace(string(b)))
		if err != nil {
			res.Errors = append(res.Errors, errors.New(dir+": corrupt startedat: "+err.Error()))
			continue
		}
		if !started.Before(olderThan) {
			continue
		}
		if !dryRun {
			if err := drv.Delete(ctx, dir); err != nil && !errors.Is(err, driver.ErrNotFound) {
				res.Errors = append(res.Errors, err)
				continue
			}
		}
		res.Deleted = append(res.Deleted, dir)
	}
	return res, nil
}

// Purger runs Purge on a schedule.
type Purger struct {
	Driver   driver.StorageDriver
	Age      time.Duration
	Interval time.Duration
	DryRun   bool
	// ReadOnly, when set and true, skips a run.
	ReadOnly func() bool
	// Clock defaults to RealClock.
	Clock Clock
	// Jitter returns the delay of the first run; FirstRunJitter when nil.
	Jitter func(interval time.Duration) time.Duration
	// Logger defaults to discarding.
	Logger *slog.Logger
	// OnRun, when set, receives the result of every run (metrics, tests).
	OnRun func(Result)
}

// FirstRunJitter is a random whole number of minutes in [0, 60), capped at
// interval.
func FirstRunJitter(interval time.Duration) time.Duration {
	return min(time.Duration(rand.IntN(60))*time.Minute, interval) //nolint:gosec // G404: spreading replicas' first runs needs no secret randomness
}

// Run purges after the first-run jitter and then every Interval until ctx
// ends.
func (p *Purger) Run(ctx context.Context) {
	clock := p.Clock
	if clock == nil {
		clock = RealClock
	}
	jitter := p.Jitter
	if jitter == nil {
		jitter = FirstRunJitter
	}
	log := p.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	wait := jitter(p.Interval)
	log.Info("Upload purging scheduled", "firstrun", wait.String(), "interval", p.Interval.String(), "age", p.Age.String(), "dryrun", p.DryRun)
	for {
		select {
		case <-ctx.Done():
			return
		case <-clock.After(wait):
		}
		wait = p.Interval
		if p.ReadOnly != nil && p.ReadOnly() {
			log.Info("Upload purging skipped: registry is read-only")
			continue
		}
		res, err := Purge(ctx, p.Driver, clock.Now().Add(-p.Age), p.DryRun)
		if err != nil && ctx.Err() == nil {
			log.Error("Upload purging failed", "error", err)
		}
		for _, e := range res.Errors {
			log.Warn("Upload purging", "error", e)
		}
		if p.DryRun {
			for _, d := range res.Deleted {
				log.Info("Upload purging dry run: would remove", "upload", d)
			}
		}
		log.Info("Upload purging done", "removed", len(res.Deleted), "errors", len(res.Errors), "dryrun", p.DryRun)
		if p.OnRun != nil {
			p.OnRun(res)
		}
	}
}
