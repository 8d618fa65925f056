package server

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"reflect"
	"strings"
	"sync"

	"github.com/berth-dev/berth/registryd/configuration"
	"github.com/berth-dev/berth/registryd/internal/filewatch"
)

// Live reload of the configuration file.
//
// registryd watches the directory of the configuration file it was started
// with (never the file's inode: Kubernetes swaps a ..data symlink; see
// package filewatch) and reads the file again whenever something there
// changes. When its bytes differ from those last applied it is parsed
// exactly as at start (REGISTRY_* overrides included) and:
//
//   - the live keys take effect at once: storage.maintenance.readonly.enabled
//     (through the write gate, see readonly.go), log.level (and the
//     deprecated loglevel);
//   - every other key that differs from the configuration the process
//     started with is logged as needing a restart, by key path, and keeps
//     its running value;
//   - a file that cannot be read, parsed or validated is logged (with the
//     error) and reported as reloadFailed in the status endpoint (without
//     it: an error can quote a configuration value); the running
//     configuration stays, and configHash keeps naming the bytes last
//     applied, so the operator can tell that a replica has not taken an
//     update. reloadFailed clears when a good file is applied, or when the
//     file is back to the bytes last applied.
//
// The htpasswd file, the TLS certificate and key and the TLS client CAs are
// watched by their own reloaders (auth.Htpasswd, certReloader), whatever
// the configuration file does; their paths are restart keys.
type configReloader struct {
	path    string
	started *configuration.Configuration
	log     *slog.Logger
	level   *slog.LevelVar
	// setReadOnly applies storage.maintenance.readonly.enabled.
	setReadOnly func(bool)
	watch       *filewatch.Watcher

	mu         sync.Mutex
	generation uint64
	hash       string
	failed     bool
}

func newConfigReloader(path string, cfg *configuration.Configuration, log *slog.Logger, level *slog.LevelVar, setReadOnly func(bool)) (*configReloader, error) {
	w, err := filewatch.New(path)
	if err != nil {
		return nil, fmt.Errorf("watching the configuration file: %w", err)
	}
	w.OnError(func(err error) { log.Warn("Watching the configuration file", "path", path, "error", err) })
	c := &configReloader{path: path, started: cfg, log: log, level: level, setReadOnly: setReadOnly, watch: w}
	// Apply the file as it is now (generation 1), so the status is exact
	// from the first request; the watch set up above misses nothing since.
	c.check()
	return c, nil
}

// Run applies the file again after every change until ctx ends.
func (c *configReloader) Run(ctx context.Context) {
	c.watch.Run(ctx, c.check)
}

// fail logs err before the status reports the failure, so whoever sees
// reloadFailed finds the reason in the log already.
func (c *configReloader) fail(err error) {
	c.log.Error("Configuration reload failed; keeping the running configuration", "path", c.path, "error", err)
	c.mu.Lock()
	c.failed = true
	c.mu.Unlock()
}

// check applies the file when its bytes changed.
func (c *configReloader) check() {
	data, err := os.ReadFile(c.path)
	if err != nil {
		c.fail(err)
		return
	}
	sum := sha256.Sum256(data)
	hash := "sha256:" + hex.EncodeToString(sum[:])
	c.mu.Lock()
	same := hash == c.hash
	if same && c.failed {
		// Back to the bytes applied: nothing failed to apply any more.
		c.failed = false
		c.log.Info("Configuration file is back to the applied one", "path", c.path, "hash", hash)
	}
	c.mu.Unlock()
	if same {
		return
	}
	cfg, err := configuration.Parse(bytes.NewReader(data))
	if err != nil {
		c.fail(err)
		return
	}
	level, err := LogLevel(cfg)
	if err != nil {
		c.fail(err)
		return
	}
	readOnly := cfg.Storage.Maintenance.ReadOnly.Enabled
	c.setReadOnly(readOnly)
	if c.level != nil {
		c.level.Set(level)
	}
	c.mu.Lock()
	c.generation++
	c.hash = hash
	c.failed = false
	gen := c.generation
	c.mu.Unlock()
	if keys := restartKeys(c.started, cfg); len(keys) > 0 {
		c.log.Warn("Configuration changes need a restart to take effect", "path", c.path, "keys", strings.Join(keys, ","))
	}
	c.log.Info("Configuration applied", "path", c.path, "generation", gen, "hash", hash, "readOnly", readOnly, "level", level.String())
}

// restartKeys lists the key paths whose values differ between a and b,
// leaving out the live keys.
func restartKeys(a, b *configuration.Configuration) []string {
	x, y := *a, *b
	for _, c := range []*configuration.Configuration{&x, &y} {
		c.Storage.Maintenance.ReadOnly.Enabled = false
		c.Log.Level = ""
		c.Loglevel = "" //nolint:staticcheck // SA1019: the deprecated key is still read, as Distribution reads it
	}
	var keys []string
	diffKeys("", reflect.ValueOf(x), reflect.ValueOf(y), &keys)
	return keys
}

// diffKeys appends the yaml key paths under path where a and b differ,
// descending into structs and non-nil pointers; other values (maps, lists,
// scalars) are compared whole.
func diffKeys(path string, a, b reflect.Value, keys *[]string) {
	if reflect.DeepEqual(a.Interface(), b.Interface()) {
		return
	}
	switch a.Kind() {
	case reflect.Pointer:
		if a.IsNil() || b.IsNil() {
			*keys = append(*keys, path)
			return
		}
		diffKeys(path, a.Elem(), b.Elem(), keys)
	case reflect.Struct:
		t := a.Type()
		for i := range t.NumField() {
			f := t.Field(i)
			if !f.IsExported() {
				continue
			}
			name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if name == "-" {
				continue
			}
			if name == "" {
				name = strings.ToLower(f.Name)
			}
			p := name
			switch {
			case strings.Contains(opts, "inline"):
				p = path
			case path != "":
				p = path + "." + name
			}
			diffKeys(p, a.Field(i), b.Field(i), keys)
		}
	default:
		*keys = append(*keys, path)
	}
}
