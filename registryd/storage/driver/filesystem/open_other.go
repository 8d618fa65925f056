//go:build !unix

package filesystem

import "os"

// openFile is os.OpenFile (see open_unix.go for why unix differs).
func openFile(name string, flag int, perm os.FileMode) (*os.File, error) {
	return os.OpenFile(name, flag, perm)
}

// rename is os.Rename (see open_unix.go for why unix differs).
func rename(oldpath, newpath string) error { return os.Rename(oldpath, newpath) }
