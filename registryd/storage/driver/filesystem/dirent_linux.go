//go:build linux

package filesystem

import (
	"encoding/binary"
	"os"
	"sync"
	"syscall"
)

// direntBufSize is the getdents64(2) buffer: os.File reads directories 8
// KiB at a time too.
const direntBufSize = 8 << 10

var direntBufs = sync.Pool{New: func() any { b := make([]byte, direntBufSize); return &b }}

// readDir lists directory name in open(2), getdents64(2) until it returns
// nothing, and close(2), and reports from d_type which entries are
// directories. It
// makes no fcntl(2) and no stat(2), where os.File's listing adds an fcntl
// at open and os.ReadDir an lstat per entry on filesystems without d_type
// (and Readdirnames reports no kinds at all). A registry lists directories
// by the thousand: a catalog lists one per repository, garbage collection
// one per blob, and deleting a blob or a link lists its directory.
//
// A path that is not a directory fails with ENOTDIR from getdents64, as
// os.File's listing does (the open does not ask for O_DIRECTORY). A
// symbolic link is followed; see readDirNoFollow.
func readDir(name string) ([]dirent, error) {
	return readDirFlags(name, 0)
}

// readDirNoFollow is readDir for deleting: it opens name with O_NOFOLLOW
// and O_DIRECTORY, so that a directory replaced by a symbolic link since
// it was looked at fails the open (ELOOP or ENOTDIR) instead of listing
// the link's target, whose entries the caller would then delete.
func readDirNoFollow(name string) ([]dirent, error) {
	return readDirFlags(name, syscall.O_NOFOLLOW|syscall.O_DIRECTORY)
}

func readDirFlags(name string, flags int) ([]dirent, error) {
	fd, err := openFD(name, syscall.O_RDONLY|flags, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: name, Err: err}
	}
	defer syscall.Close(fd)
	bp := direntBufs.Get().(*[]byte)
	defer direntBufs.Put(bp)
	buf := *bp
	var out []dirent
	for {
		n, err := syscall.Getdents(fd, buf)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return nil, &os.PathError{Op: "getdents", Path: name, Err: err}
		}
		if n <= 0 {
			return out, nil
		}
		out = parseDirents(buf[:n], out)
	}
}

// parseDirents appends the entries of a getdents64 buffer to out, without
// "." and "..". Each record is struct linux_dirent64: d_ino (8 bytes),
// d_off (8), d_reclen (2), d_type (1), then the NUL-terminated name.
func parseDirents(buf []byte, out []dirent) []dirent {
	for len(buf) >= 19 {
		reclen := int(binary.NativeEndian.Uint16(buf[16:18]))
		if reclen < 19 || reclen > len(buf) {
			break
		}
		rec := buf[:reclen]
		buf = buf[reclen:]
		if binary.NativeEndian.Uint64(rec[0:8]) == 0 {
			continue // a deleted entry
		}
		name := rec[19:]
		for i, c := range name {
			if c == 0 {
				name = name[:i]
				break
			}
		}
		if s := string(name); s != "." && s != ".." {
			out = append(out, dirent{name: s, isDir: rec[18] == syscall.DT_DIR})
		}
	}
	return out
}

// removeDir is rmdir(2) with os.Remove's error: os.Remove tries unlink(2)
// first, two calls for every directory.
func removeDir(name string) error {
	if err := syscall.Rmdir(name); err != nil {
		return &os.PathError{Op: "rmdir", Path: name, Err: err}
	}
	return nil
}
