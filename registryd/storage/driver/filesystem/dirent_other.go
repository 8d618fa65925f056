//go:build !linux

package filesystem

import (
	"errors"
	"os"
)

// readDir lists directory name, saying which entries are directories
// (dirent_linux.go reads that from getdents64 directly).
func readDir(name string) ([]dirent, error) {
	f, err := openFile(name, os.O_RDONLY, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	entries, err := f.ReadDir(-1)
	if err != nil {
		return nil, err
	}
	out := make([]dirent, 0, len(entries))
	for _, e := range entries {
		out = append(out, dirent{name: e.Name(), isDir: e.Type().IsDir()})
	}
	return out, nil
}

// readDirNoFollow is readDir for deleting: a symbolic link is refused,
// not followed (checked before the open here; dirent_linux.go has the
// open refuse it).
func readDirNoFollow(name string) ([]dirent, error) {
	fi, err := os.Lstat(name)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: name, Err: err}
	}
	if !fi.IsDir() {
		return nil, &os.PathError{Op: "open", Path: name, Err: errNotDir}
	}
	return readDir(name)
}

var errNotDir = errors.New("not a directory")

func removeDir(name string) error { return os.Remove(name) }
