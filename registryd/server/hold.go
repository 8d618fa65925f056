package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/berth-dev/berth/registryd/hold"
	"github.com/berth-dev/berth/registryd/internal/filewatch"
)

// The read-only hold (registryd serve --hold-file PATH; package hold).
//
// During a garbage-collection run the operator puts every replica in
// read-only mode with a hold: hold.json in the Registry's ConfigMap, next
// to config.yml, which stays exactly Distribution's format and keeps
// storage.maintenance.readonly.enabled for the user's own setting. The
// operator then makes the kubelet refresh the mounted ConfigMap at once
// (by patching a pod annotation, which makes the kubelet sync the pod's
// volumes) instead of waiting for its periodic sync, and the hold reaches
// the process through the same directory watch as the configuration file,
// the kubelet's ..data swap included. A pod that starts or restarts
// mid-run reads the hold at start, before serving its first request.
//
// The hold is applied while the file holds an active hold:
//
//   - a missing file (or a dangling link: the key left the ConfigMap) is no
//     hold;
//   - a file that cannot be read or parsed, or lacks id or expires, is no
//     hold: logged at error level and reported as holdInvalid in the
//     status;
//   - a hold whose expires has passed is no hold: a timer re-evaluates the
//     file at that instant and logs "Hold expired", so a manager that died
//     mid-run never leaves the registry read-only past the run's timeout.
//
// Hold applied, removed and expired are logged with id, holder and expiry.
type holdWatcher struct {
	path  string
	log   *slog.Logger
	watch *filewatch.Watcher
	apply func(active bool)
	now   func() time.Time

	// checking serializes check (the file watch and the expiry timer).
	checking sync.Mutex
	timer    *time.Timer
	stopped  bool
	// last is what the previous check saw, for logging transitions.
	last holdView

	mu      sync.Mutex
	current holdView
}

// holdView is what one check of the file found.
type holdView struct {
	hold    hold.Hold
	active  bool
	present bool   // a parsable hold, active or expired
	invalid string // why the file cannot be used; "" when it can
}

func newHoldWatcher(path string, log *slog.Logger, now func() time.Time) (*holdWatcher, error) {
	w, err := filewatch.New(path)
	if err != nil {
		return nil, fmt.Errorf("--hold-file: %w", err)
	}
	w.OnError(func(err error) { log.Warn("Watching the hold file", "path", path, "error", err) })
	return &holdWatcher{path: path, log: log, watch: w, now: now, apply: func(bool) {}}, nil
}

// read evaluates the file now.
func (h *holdWatcher) read() holdView {
	hd, err := hold.Read(h.path)
	switch {
	case errors.Is(err, hold.ErrNoHold):
		return holdView{}
	case err != nil:
		if err.Error() != h.last.invalid {
			h.log.Error("Hold file invalid; no hold applies", "path", h.path, "error", err)
		}
		return holdView{invalid: err.Error()}
	}
	return holdView{hold: hd, present: true, active: hd.Active(h.now())}
}

// check reads the file, logs what changed, applies it and sets the expiry
// timer.
func (h *holdWatcher) check() {
	h.checking.Lock()
	defer h.checking.Unlock()
	if h.stopped {
		return
	}
	v := h.read()
	h.logChange(h.last, v)
	h.last = v
	h.mu.Lock()
	h.current = v
	h.mu.Unlock()
	h.apply(v.active)
	if h.timer != nil {
		h.timer.Stop()
		h.timer = nil
	}
	if v.active {
		// Fires at the expiry instant; check finds it expired then (or, on
		// a clock that lags the timer, sets the timer again).
		h.timer = time.AfterFunc(v.hold.Expires.Sub(h.now()), h.check)
	}
}

func (h *holdWatcher) logChange(was, is holdView) {
	attrs := func(v holdView) []any {
		return []any{"id", v.hold.ID, "holder", v.hold.Holder, "expires", v.hold.Expires.UTC().Format(time.RFC3339Nano)}
	}
	sameHold := was.present && is.present && was.hold == is.hold
	switch {
	case is.active && !sameHold:
		h.log.Info("Hold applied", append(attrs(is), "path", h.path)...)
	case is.present && !is.active && (!sameHold || was.active):
		// An expired hold: seen expiring, or found already expired.
		h.log.Info("Hold expired", attrs(is)...)
	case !is.present && was.active:
		h.log.Info("Hold removed", attrs(was)...)
	}
	if was.active && is.active && !sameHold {
		h.log.Info("Hold replaced", "previousId", was.hold.ID, "id", is.hold.ID)
	}
}

// state is the last check's result.
func (h *holdWatcher) state() (hd hold.Hold, active, invalid bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.current.hold, h.current.active, h.current.invalid != ""
}

// Run re-reads the file after every change until ctx ends.
func (h *holdWatcher) Run(ctx context.Context) {
	h.watch.Run(ctx, h.check)
	h.checking.Lock()
	defer h.checking.Unlock()
	h.stopped = true
	if h.timer != nil {
		h.timer.Stop()
	}
}
