// Package driver defines the storage driver contract of registryd.
//
// A driver stores opaque byte content under slash-separated paths. It knows
// nothing about registries, manifests or HTTP: the layout package builds
// Distribution's on-disk layout on top of it, and the HTTP handlers reach
// storage only through that layout code.
//
// The method set mirrors the CNCF Distribution storage driver so that a
// backend's behaviour can be checked against the same expectations: every
// driver runs the shared conformance suite in package testsuites.
//
// Paths are absolute, use "/" as separator, and every component matches
// [A-Za-z0-9._-]+ and is not "." or ".." (see ValidPath; upper case is
// allowed, as in Distribution). The root "/" is valid for List, Stat and
// Walk only. Drivers do not check paths themselves: their constructors wrap
// the implementation with Validating, the one place paths are checked.
// Drivers without a native ordered walk use WalkFallback.
package driver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"
)

// StorageDriver is the interface every storage backend implements.
//
// Implementations must be safe for concurrent use. Readers never observe a
// torn PutContent. Whether bytes written through a FileWriter are visible
// at its path before Commit is up to the driver (filesystem and inmemory
// write in place, as Distribution's do; the object stores publish on Close
// and Commit), so callers must not rely on either.
type StorageDriver interface {
	// Name returns the driver's registered name ("filesystem", "inmemory", ...).
	Name() string

	// GetContent returns the whole content stored at path.
	GetContent(ctx context.Context, path string) ([]byte, error)

	// PutContent stores content at path, replacing what was there.
	PutContent(ctx context.Context, path string, content []byte) error

	// Reader returns a reader positioned at offset. An offset past the end
	// of the content yields InvalidOffsetError; an offset equal to the size
	// yields a reader at EOF.
	Reader(ctx context.Context, path string, offset int64) (io.ReadCloser, error)

	// Writer returns a FileWriter for path. With append it continues an
	// existing (uncommitted or committed) write; Size reports what is there.
	Writer(ctx context.Context, path string, append bool) (FileWriter, error)

	// Stat describes the object or directory at path.
	Stat(ctx context.Context, path string) (FileInfo, error)

	// List returns the full paths of the direct children of path, unsorted.
	List(ctx context.Context, path string) ([]string, error)

	// Move renames sourcePath to destPath, replacing destPath if present.
	// It is atomic where the backend allows it: a reader of destPath sees
	// either the old content or the new one.
	Move(ctx context.Context, sourcePath, destPath string) error

	// Delete removes the object at path, or the directory and everything
	// below it.
	Delete(ctx context.Context, path string) error

	// RedirectURL returns a URL from which a client can fetch the content
	// at path with the given HTTP method, or "" when the driver does not
	// redirect (the content is then served by registryd itself).
	RedirectURL(ctx context.Context, method string, path string) (string, error)

	// Walk visits every file and directory below path in lexical order,
	// depth first. See WalkFn for how the callback steers the walk.
	Walk(ctx context.Context, path string, f WalkFn, options ...WalkOption) error
}

// FileWriter writes one object incrementally. Commit makes the content
// durable and visible at the path; Cancel discards what was written (the
// path then holds nothing). Close without Commit keeps what was written for
// a later Writer opened with append. After Commit or Cancel, Write fails and
// Close returns nil. A FileWriter is used by one goroutine at a time.
type FileWriter interface {
	io.WriteCloser

	// Size is the number of bytes written so far, including bytes written
	// by earlier writers of the same path when opened with append.
	Size() int64

	// Cancel discards the content written so far.
	Cancel(ctx context.Context) error

	// Commit flushes the content and makes it visible at the path.
	Commit(ctx context.Context) error
}

// FileInfo describes an object or directory.
type FileInfo interface {
	Path() string
	Size() int64
	ModTime() time.Time
	IsDir() bool
}

// FileInfoFields is a plain FileInfo implementation drivers can share.
type FileInfoFields struct {
	Path    string
	Size    int64
	ModTime time.Time
	IsDir   bool
}

// FileInfoInternal wraps FileInfoFields to satisfy FileInfo.
type FileInfoInternal struct{ FileInfoFields }

func (fi FileInfoInternal) Path() string       { return fi.FileInfoFields.Path }
func (fi FileInfoInternal) Size() int64        { return fi.FileInfoFields.Size }
func (fi FileInfoInternal) ModTime() time.Time { return fi.FileInfoFields.ModTime }
func (fi FileInfoInternal) IsDir() bool        { return fi.FileInfoFields.IsDir }

// WalkFn is called for every entry Walk visits. A directory's FileInfo may
// carry a zero ModTime (see EntryLister): only files' are part of the
// storage layout. Returning ErrSkipDir for a directory skips its children
// (for a file, the rest of its directory); returning ErrFilledBuffer stops
// the walk without error; any other error stops the walk and is returned by
// Walk.
type WalkFn func(fi FileInfo) error

// WalkOptions tune a walk.
type WalkOptions struct {
	// StartAfterHint lets a driver skip every path that sorts lexically at
	// or before it. It is a hint: drivers may still visit such paths.
	StartAfterHint string
}

// WalkOption sets a WalkOptions field.
type WalkOption func(*WalkOptions)

// WithStartAfterHint sets WalkOptions.StartAfterHint.
func WithStartAfterHint(path string) WalkOption {
	return func(o *WalkOptions) { o.StartAfterHint = path }
}

var (
	// ErrSkipDir is returned by a WalkFn to skip a directory.
	ErrSkipDir = errors.New("skip this directory")
	// ErrFilledBuffer is returned by a WalkFn to end a walk early, successfully.
	ErrFilledBuffer = errors.New("we have enough entries")
	// ErrUnsupportedMethod is returned by drivers that cannot do an operation.
	ErrUnsupportedMethod = errors.New("unsupported method")
	// ErrNotFound matches every PathNotFoundError via errors.Is.
	ErrNotFound = errors.New("path not found")
)

// PathNotFoundError is returned when no object or directory exists at Path.
type PathNotFoundError struct {
	Path       string
	DriverName string
}

func (e PathNotFoundError) Error() string {
	return fmt.Sprintf("%s: path not found: %s", e.DriverName, e.Path)
}

// Is makes errors.Is(err, ErrNotFound) true for PathNotFoundError.
func (e PathNotFoundError) Is(target error) bool { return target == ErrNotFound }

// InvalidPathError is returned for a path that fails ValidPath.
type InvalidPathError struct {
	Path       string
	DriverName string
}

func (e InvalidPathError) Error() string {
	return fmt.Sprintf("%s: invalid path: %q", e.DriverName, e.Path)
}

// InvalidOffsetError is returned when a Reader is asked for an offset past
// the end of the content, or a negative one.
type InvalidOffsetError struct {
	Path       string
	Offset     int64
	DriverName string
}

func (e InvalidOffsetError) Error() string {
	return fmt.Sprintf("%s: invalid offset %d for path %s", e.DriverName, e.Offset, e.Path)
}

// ValidPath reports whether path may be used for an object: absolute,
// "/" separated, every component a non-empty run of [A-Za-z0-9._-] other
// than "." and "..", so that no path escapes the root. It is a byte loop,
// not a regular expression: drivers check every name a listing returns.
func ValidPath(path string) bool {
	if len(path) < 2 || path[0] != '/' {
		return false
	}
	start := 1
	for i := 1; i <= len(path); i++ {
		if i < len(path) && path[i] != '/' {
			if !pathByte(path[i]) {
				return false
			}
			continue
		}
		if c := path[start:i]; c == "" || c == "." || c == ".." {
			return false
		}
		start = i + 1
	}
	return true
}

func pathByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-'
}

// ValidDirPath reports whether path may be listed, stat'ed or walked: a
// ValidPath or the root "/".
func ValidDirPath(path string) bool { return path == "/" || ValidPath(path) }

// WriterState tracks where a FileWriter is in its life, so that every
// driver refuses the same calls with the same errors. Drivers embed it.
type WriterState struct {
	Closed, Committed, Cancelled bool
}

// Usable returns an error naming the writer's state when it can no longer
// be written to, committed or cancelled.
func (s WriterState) Usable(driverName, path string) error {
	switch {
	case s.Closed:
		return fmt.Errorf("%s: writer for %s already closed", driverName, path)
	case s.Committed:
		return fmt.Errorf("%s: writer for %s already committed", driverName, path)
	case s.Cancelled:
		return fmt.Errorf("%s: writer for %s already cancelled", driverName, path)
	}
	return nil
}

// Close marks the writer closed. Unless it was committed or cancelled, it
// first publishes what was written (publish is the driver's step, run
// whatever its outcome); closing twice is an error.
func (s *WriterState) Close(driverName, path string, publish func() error) error {
	if s.Closed {
		return fmt.Errorf("%s: writer for %s already closed", driverName, path)
	}
	if s.Committed || s.Cancelled {
		s.Closed = true
		return nil
	}
	err := publish()
	s.Closed = true
	return err
}

// Commit publishes what was written and marks the writer committed once
// that succeeded; usable is the driver's check that the writer may still
// be committed.
func (s *WriterState) Commit(usable, publish func() error) error {
	if err := usable(); err != nil {
		return err
	}
	if err := publish(); err != nil {
		return err
	}
	s.Committed = true
	return nil
}

// FileDeleter is an optional capability of drivers that delete many files
// in few requests (an object store's batch delete): the garbage collector
// uses it to remove blobs in batches rather than one request each.
type FileDeleter interface {
	// DeleteFiles deletes the files at paths — the objects themselves,
	// never what lies below them — and reports the paths it could not
	// delete, with why. A path already gone is not a failure. err is
	// set when nothing could be tried (a request that failed as a
	// whole); failed and err may both be set.
	DeleteFiles(ctx context.Context, paths []string) (failed map[string]error, err error)
}

// AsFileDeleter finds the FileDeleter behind d and the wrappers around it
// (anything with an Unwrap() StorageDriver method, Validating included).
// Paths given to it are not validated: callers pass layout paths.
func AsFileDeleter(d StorageDriver) (FileDeleter, bool) {
	for d != nil {
		if fd, ok := d.(FileDeleter); ok {
			return fd, true
		}
		u, ok := d.(interface{ Unwrap() StorageDriver })
		if !ok {
			return nil, false
		}
		d = u.Unwrap()
	}
	return nil, false
}
