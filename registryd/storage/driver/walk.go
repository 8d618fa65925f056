package driver

import (
	"context"
	"errors"
	"slices"
	"strings"
)

// ComparePaths orders paths the way Walk visits them: component by
// component, so that a directory comes right before its own children and
// "/a/b/c" sorts before "/a/b-c" (as if "/" were lower than every other
// byte). It returns -1, 0 or +1.
func ComparePaths(a, b string) int {
	for a != "" || b != "" {
		if a == "" {
			return -1
		}
		if b == "" {
			return 1
		}
		ca, ra := cutComponent(a)
		cb, rb := cutComponent(b)
		if c := strings.Compare(ca, cb); c != 0 {
			return c
		}
		a, b = ra, rb
	}
	return 0
}

// cutComponent splits "/x/y" into "x" and "/y".
func cutComponent(p string) (string, string) {
	p = strings.TrimPrefix(p, "/")
	if i := strings.IndexByte(p, '/'); i >= 0 {
		return p[:i], p[i:]
	}
	return p, ""
}

// isAncestor reports whether dir is a proper ancestor of path.
func isAncestor(dir, path string) bool {
	if dir == "/" {
		return path != "/"
	}
	return strings.HasPrefix(path, dir+"/")
}

// WalkOptionsFrom applies options to a zero WalkOptions.
func WalkOptionsFrom(options ...WalkOption) WalkOptions {
	var o WalkOptions
	for _, opt := range options {
		opt(&o)
	}
	return o
}

// WalkFallback implements Walk for any driver with List and Stat: it lists
// each directory, sorts the children, stats each one and calls f, depth
// first. Drivers without a cheaper native walk use it as their Walk. With
// an EntryLister it stats only files and entries of unknown kind.
//
// An entry that disappears between List and Stat is skipped: a walk over a
// live registry must not fail because an upload was purged under it.
//
// StartAfterHint is honoured exactly: entries that sort (see ComparePaths)
// at or before the hint are neither reported nor descended into, except the
// hint itself and its ancestors, which are descended into without being
// reported.
func WalkFallback(ctx context.Context, d StorageDriver, from string, f WalkFn, options ...WalkOption) error {
	opts := WalkOptionsFrom(options...)
	err := walkDir(ctx, d, from, opts.StartAfterHint, f, false)
	if errors.Is(err, ErrFilledBuffer) {
		return nil
	}
	return err
}

// walkDir walks the children of dir. It returns ErrFilledBuffer when the
// walk must end early. With tolerateMissing a dir that vanished since it
// was listed is an empty one.
func walkDir(ctx context.Context, d StorageDriver, dir, hint string, f WalkFn, tolerateMissing bool) error {
	children, err := listEntries(ctx, d, dir)
	if tolerateMissing && errors.Is(err, ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	slices.SortFunc(children, func(a, b DirEntry) int { return ComparePaths(a.Path, b.Path) })
	for _, e := range children {
		child := e.Path
		if err := ctx.Err(); err != nil {
			return err
		}
		report := true
		if hint != "" {
			if c := ComparePaths(child, hint); c <= 0 {
				if c < 0 && !isAncestor(child, hint) {
					continue // child and its whole subtree sort before the hint
				}
				report = false // the hint itself or an ancestor: descend only
			}
		}
		var fi FileInfo = FileInfoInternal{FileInfoFields{Path: child, IsDir: true}}
		if !e.IsDir {
			fi, err = d.Stat(ctx, child)
			if errors.Is(err, ErrNotFound) {
				continue
			}
			if err != nil {
				return err
			}
		}
		if report {
			err := f(fi)
			if errors.Is(err, ErrSkipDir) {
				if fi.IsDir() {
					continue
				}
				return nil // a file asked to skip the rest of its directory
			}
			if err != nil {
				return err
			}
		}
		if fi.IsDir() {
			if err := walkDir(ctx, d, child, hint, f, true); err != nil {
				return err
			}
		}
	}
	return nil
}

// DirEntry is a child of a directory and what its listing knows of it.
type DirEntry struct {
	Path string
	// IsDir: the listing says it is a directory. False is a file or an
	// entry of unknown kind (List, a symbolic link, a filesystem without
	// d_type), which WalkFallback stats.
	IsDir bool
}

// EntryLister is implemented by drivers whose listing knows which entries
// are directories: the filesystem's getdents64 reports d_type. ListEntries
// is List with that. WalkFallback then stats only the other entries (a file
// for its size and time, or an entry of unknown kind): a directory it did
// not stat is reported with size 0 and a zero ModTime, which no walk of the
// store reads (a directory's time is not part of the storage layout, and the
// object stores have none).
type EntryLister interface {
	ListEntries(ctx context.Context, path string) ([]DirEntry, error)
}

// listEntries lists dir with ListEntries where d has it, else with List
// and no entry known for a directory.
func listEntries(ctx context.Context, d StorageDriver, dir string) ([]DirEntry, error) {
	if el, ok := d.(EntryLister); ok {
		return el.ListEntries(ctx, dir)
	}
	paths, err := d.List(ctx, dir)
	if err != nil {
		return nil, err
	}
	out := make([]DirEntry, len(paths))
	for i, p := range paths {
		out[i] = DirEntry{Path: p}
	}
	return out, nil
}
