// Package filewatch tells registryd when files it serves from change on
// disk: the configuration, the htpasswd file, the TLS certificate and key.
//
// It watches the directories that hold the files, never the files' inodes.
// Kubernetes updates a mounted ConfigMap or Secret by writing a new
// timestamped directory and atomically renaming a `..data` symlink over the
// old one; the visible file (`config.yml -> ..data/config.yml`) is never
// written, so a watch on the file itself would see nothing (or watch a
// deleted inode forever). Watching the directory sees the rename. After
// every change the paths are resolved again and the directories of their
// current targets are watched too, so a symlink into another directory is
// followed as well.
//
// Events are debounced: a burst (truncate, write, chmod, rename) produces one
// call. The callback decides whether the content it cares about changed;
// spurious calls are expected.
package filewatch

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"time"

	"github.com/fsnotify/fsnotify"
)

// DefaultDebounce is how long a watcher waits after the last event of a
// burst before it calls back.
const DefaultDebounce = 50 * time.Millisecond

// Watcher watches the directories of a set of files.
type Watcher struct {
	paths    []string
	fs       *fsnotify.Watcher
	dirs     []string
	debounce time.Duration
	onError  func(error)
}

// New starts watching the directories of paths. The paths need not exist
// yet, but their directories must.
func New(paths ...string) (*Watcher, error) {
	fw, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, fmt.Errorf("watching files: %w", err)
	}
	w := &Watcher{paths: paths, fs: fw, debounce: DefaultDebounce, onError: func(error) {}}
	if err := w.rewatch(); err != nil {
		fw.Close()
		return nil, err
	}
	return w, nil
}

// OnError sets a function that receives watch errors (events the kernel
// dropped, directories that vanished); they are otherwise ignored.
func (w *Watcher) OnError(f func(error)) { w.onError = f }

// wanted lists the directories to watch: each path's own directory and the
// directory of what it resolves to now.
func (w *Watcher) wanted() []string {
	var dirs []string
	for _, p := range w.paths {
		abs, err := filepath.Abs(p)
		if err != nil {
			abs = p
		}
		dirs = append(dirs, filepath.Dir(abs))
		if real, err := filepath.EvalSymlinks(abs); err == nil {
			dirs = append(dirs, filepath.Dir(real))
		}
	}
	slices.Sort(dirs)
	return slices.Compact(dirs)
}

// rewatch brings the watched directories in line with wanted. Only the
// paths' own directories must be watchable; a resolved target's directory
// that cannot be watched is skipped (the own directory still sees the swap).
func (w *Watcher) rewatch() error {
	want := w.wanted()
	for _, d := range w.dirs {
		if !slices.Contains(want, d) {
			_ = w.fs.Remove(d)
		}
	}
	var have []string
	for _, d := range want {
		if slices.Contains(w.dirs, d) {
			have = append(have, d)
			continue
		}
		if err := w.fs.Add(d); err != nil {
			if w.isOwnDir(d) {
				return fmt.Errorf("watching %s: %w", d, err)
			}
			continue
		}
		have = append(have, d)
	}
	w.dirs = have
	return nil
}

func (w *Watcher) isOwnDir(d string) bool {
	for _, p := range w.paths {
		abs, err := filepath.Abs(p)
		if err == nil && filepath.Dir(abs) == d {
			return true
		}
	}
	return false
}

// Run calls onChange after each burst of changes in the watched directories
// until ctx ends, then releases the watch. onChange runs on Run's
// goroutine, one call at a time.
func (w *Watcher) Run(ctx context.Context, onChange func()) {
	defer w.fs.Close()
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case _, ok := <-w.fs.Events:
			if !ok {
				return
			}
			timer.Reset(w.debounce)
		case err, ok := <-w.fs.Errors:
			if !ok {
				return
			}
			w.onError(err)
		case <-timer.C:
			if err := w.rewatch(); err != nil {
				w.onError(err)
			}
			onChange()
		}
	}
}

// Close releases the watch of a Watcher that is never Run.
func (w *Watcher) Close() error { return w.fs.Close() }
