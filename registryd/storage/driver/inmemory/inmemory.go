// Package inmemory is a storage driver that keeps everything in process
// memory. It is meant for tests and for throw-away registries
// (storage: inmemory in config.yml); its content is lost when the process
// exits.
//
// Decisions:
//
//   - The store is a tree of nodes under one RWMutex, mirroring a
//     filesystem: directories exist while they were created by a write below
//     them, and stay (like the filesystem driver's) after their last child is
//     deleted. A path cannot be both a file and a directory; writing a file
//     below a file, or over a directory, is an error.
//   - A FileWriter writes in place, like the filesystem driver: bytes are at
//     the path as they are written, Close keeps them for a later append, and
//     Commit only marks the writer finished. Callers must not rely on
//     content being invisible before Commit (object-store drivers differ).
//   - Readers never copy: a file's bytes are only ever appended in place or
//     replaced by a new slice, so a reader holding a capacity-capped slice of
//     the old content never races with a writer.
//   - Path validation happens in driver.Validating, which New applies.
//   - Modification times come from a clock, time.Now unless WithClock
//     sets another: tests of age-based decisions (the garbage collector's
//     grace period) write content "in the past" through the real driver
//     instead of faking Stat.
package inmemory

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/berth-dev/berth/registryd/storage/driver"
)

// DriverName is the name of this driver in configuration.
const DriverName = "inmemory"

// Option configures a driver made by New.
type Option func(*memDriver)

// WithClock makes the driver take modification times from now instead of
// time.Now.
func WithClock(now func() time.Time) Option {
	return func(d *memDriver) { d.now = now }
}

// New returns an empty in-memory driver.
func New(opts ...Option) driver.StorageDriver {
	d := &memDriver{now: time.Now}
	for _, o := range opts {
		o(d)
	}
	d.root = newDir(d.now())
	return driver.Validating(d)
}

type node struct {
	dir      bool
	children map[string]*node // dir only
	data     []byte           // file only
	modTime  time.Time
}

func newDir(t time.Time) *node {
	return &node{dir: true, children: map[string]*node{}, modTime: t}
}

type memDriver struct {
	mu   sync.RWMutex
	root *node
	now  func() time.Time
}

var errNotDir = errors.New("not a directory")

func components(path string) []string {
	if path == "/" {
		return nil
	}
	return strings.Split(path[1:], "/")
}

func (d *memDriver) notFound(path string) error {
	return driver.PathNotFoundError{Path: path, DriverName: DriverName}
}

// split returns the parent directory and the last component of path.
func split(path string) (dir, name string) {
	i := strings.LastIndexByte(path, '/')
	if i == 0 {
		return "/", path[1:]
	}
	return path[:i], path[i+1:]
}

// lookup returns the node at path, or nil. Caller holds d.mu.
func (d *memDriver) lookup(path string) *node {
	n := d.root
	for _, c := range components(path) {
		if !n.dir {
			return nil
		}
		n = n.children[c]
		if n == nil {
			return nil
		}
	}
	return n
}

// parentFor returns the directory that holds path, creating missing
// directories. Caller holds d.mu for writing.
func (d *memDriver) parentFor(path string, now time.Time) (*node, string, error) {
	cs := components(path)
	n := d.root
	for _, c := range cs[:len(cs)-1] {
		child := n.children[c]
		if child == nil {
			child = newDir(now)
			n.children[c] = child
			n.modTime = now
		}
		if !child.dir {
			return nil, "", fmt.Errorf("%s: %s: %w", DriverName, path, errNotDir)
		}
		n = child
	}
	return n, cs[len(cs)-1], nil
}

// putFile installs f at path. Caller holds d.mu for writing.
func (d *memDriver) putFile(path string, f *node) error {
	parent, name, err := d.parentFor(path, f.modTime)
	if err != nil {
		return err
	}
	if old := parent.children[name]; old != nil && old.dir {
		return fmt.Errorf("%s: %s is a directory", DriverName, path)
	}
	parent.children[name] = f
	parent.modTime = f.modTime
	return nil
}

func (d *memDriver) Name() string { return DriverName }

func (d *memDriver) GetContent(ctx context.Context, path string) ([]byte, error) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	n := d.lookup(path)
	if n == nil || n.dir {
		return nil, d.notFound(path)
	}
	return bytes.Clone(n.data), nil
}

func (d *memDriver) PutContent(ctx context.Context, path string, content []byte) error {
	f := &node{data: bytes.Clone(content), modTime: d.now()}
	if f.data == nil {
		f.data = []byte{}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.putFile(path, f)
}

func (d *memDriver) Reader(ctx context.Context, path string, offset int64) (io.ReadCloser, error) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	n := d.lookup(path)
	if n == nil || n.dir {
		return nil, d.notFound(path)
	}
	if offset < 0 || offset > int64(len(n.data)) {
		return nil, driver.InvalidOffsetError{Path: path, Offset: offset, DriverName: DriverName}
	}
	size := len(n.data)
	return io.NopCloser(bytes.NewReader(n.data[offset:size:size])), nil
}

func (d *memDriver) Writer(ctx context.Context, path string, append bool) (driver.FileWriter, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	n := d.lookup(path)
	switch {
	case n != nil && n.dir:
		return nil, fmt.Errorf("%s: %s is a directory", DriverName, path)
	case n == nil:
		n = &node{data: []byte{}, modTime: d.now()}
		if err := d.putFile(path, n); err != nil {
			return nil, err
		}
	case !append:
		n.data = []byte{} // a new slice: readers keep the old one
		n.modTime = d.now()
	}
	return &writer{d: d, path: path, f: n, size: int64(len(n.data))}, nil
}

func (d *memDriver) Stat(ctx context.Context, path string) (driver.FileInfo, error) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	n := d.lookup(path)
	if n == nil {
		return nil, d.notFound(path)
	}
	return driver.FileInfoInternal{FileInfoFields: driver.FileInfoFields{
		Path: path, Size: int64(len(n.data)), ModTime: n.modTime, IsDir: n.dir,
	}}, nil
}

func (d *memDriver) List(ctx context.Context, path string) ([]string, error) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	n := d.lookup(path)
	if n == nil {
		return nil, d.notFound(path)
	}
	if !n.dir {
		return nil, fmt.Errorf("%s: %s: %w", DriverName, path, errNotDir)
	}
	prefix := path
	if prefix != "/" {
		prefix += "/"
	}
	out := make([]string, 0, len(n.children))
	for name := range n.children {
		out = append(out, prefix+name)
	}
	return out, nil
}

func (d *memDriver) Move(ctx context.Context, sourcePath, destPath string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	src := d.lookup(sourcePath)
	if src == nil {
		return d.notFound(sourcePath)
	}
	if sourcePath == destPath {
		return nil
	}
	if src.dir && strings.HasPrefix(destPath, sourcePath+"/") {
		return fmt.Errorf("%s: cannot move %s below itself", DriverName, sourcePath)
	}
	now := d.now()
	parent, name, err := d.parentFor(destPath, now)
	if err != nil {
		return err
	}
	if old := parent.children[name]; old != nil && old.dir {
		return fmt.Errorf("%s: %s is a directory", DriverName, destPath)
	}
	srcDir, srcName := split(sourcePath)
	srcParent := d.lookup(srcDir)
	delete(srcParent.children, srcName)
	srcParent.modTime = now
	parent.children[name] = src
	parent.modTime = now
	return nil
}

func (d *memDriver) Delete(ctx context.Context, path string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	dir, name := split(path)
	parent := d.lookup(dir)
	if parent == nil || !parent.dir || parent.children[name] == nil {
		return d.notFound(path)
	}
	delete(parent.children, name)
	parent.modTime = d.now()
	return nil
}

func (d *memDriver) RedirectURL(ctx context.Context, method string, path string) (string, error) {
	return "", nil
}

func (d *memDriver) Walk(ctx context.Context, path string, f driver.WalkFn, options ...driver.WalkOption) error {
	return driver.WalkFallback(ctx, d, path, f, options...)
}

// writer appends to a file node in place.
type writer struct {
	d    *memDriver
	path string
	f    *node
	size int64
	driver.WriterState
}

func (w *writer) usable() error { return w.Usable(DriverName, w.path) }

func (w *writer) Write(p []byte) (int, error) {
	if err := w.usable(); err != nil {
		return 0, err
	}
	w.d.mu.Lock()
	defer w.d.mu.Unlock()
	w.f.data = append(w.f.data, p...)
	w.f.modTime = w.d.now()
	w.size = int64(len(w.f.data))
	return len(p), nil
}

func (w *writer) Size() int64 { return w.size }

func (w *writer) Close() error {
	if w.Closed {
		return fmt.Errorf("%s: writer for %s already closed", DriverName, w.path)
	}
	w.Closed = true
	return nil
}

func (w *writer) Cancel(ctx context.Context) error {
	if err := w.usable(); err != nil {
		return err
	}
	w.Cancelled = true
	w.d.mu.Lock()
	defer w.d.mu.Unlock()
	// Remove the file only if it is still the one this writer wrote.
	dir, name := split(w.path)
	if parent := w.d.lookup(dir); parent != nil && parent.dir && parent.children[name] == w.f {
		delete(parent.children, name)
	}
	return nil
}

func (w *writer) Commit(ctx context.Context) error {
	if err := w.usable(); err != nil {
		return err
	}
	w.Committed = true
	return nil
}
