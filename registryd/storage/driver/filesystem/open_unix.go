//go:build unix

package filesystem

import (
	"os"
	"syscall"
)

// openFile is os.OpenFile without the attempt to register the file with
// the runtime's network poller. On Linux os.OpenFile makes five system
// calls beyond openat(2) for every file: two fcntl to set O_NONBLOCK, an
// epoll_ctl that fails with EPERM for regular files and directories, and
// two fcntl to clear O_NONBLOCK again. os.NewFile makes one (an fcntl to
// read the flags). A registry opens thousands of small files a second
// (links, directory listings): in a CPU profile of the catalog the fcntl
// calls alone were 11% of registryd's time.
func openFile(name string, flag int, perm os.FileMode) (*os.File, error) {
	fd, err := openFD(name, flag, uint32(perm.Perm()))
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: name, Err: err}
	}
	return os.NewFile(uintptr(fd), name), nil
}

// openFD is open(2) with O_CLOEXEC, retried on EINTR.
func openFD(name string, flag int, perm uint32) (int, error) {
	for {
		fd, err := syscall.Open(name, flag|syscall.O_CLOEXEC, perm)
		if err != syscall.EINTR {
			return fd, err
		}
	}
}

// rename is os.Rename without its lstat(2) of newpath, made so that
// renaming a directory over an existing one fails on every platform. The
// driver renames only files, and rename(2) refuses a file over a
// directory (EISDIR) by itself; the lstat was one more path lookup per
// file a manifest PUT writes.
func rename(oldpath, newpath string) error {
	if err := syscall.Rename(oldpath, newpath); err != nil {
		return &os.LinkError{Op: "rename", Old: oldpath, New: newpath, Err: err}
	}
	return nil
}
