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
// nothing, and close(2), and reports each entry's kind from d_type. It
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
	fd, err := openFD(name, flags)
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

func openFD(name string, flags int) (int, error) {
	for {
		fd, err := syscall.Open(name, syscall.O_RDONLY|syscall.O_CLOEXEC|flags, 0)
		if err != syscall.EINTR {
			return fd, err
		}
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
			out = append(out, dirent{name: s, kind: kindOf(rec[18])})
		}
	}
	return out
}

func kindOf(t uint8) entryKind {
	switch t {
	case syscall.DT_DIR:
		return kindDir
	case syscall.DT_REG:
		return kindFile
	default:
		return kindOther // a symbolic link, or a filesystem without d_type
	}
}

// removeFile is unlink(2), and removeDir rmdir(2), with os.Remove's
// errors: os.Remove tries one and then the other, two calls for every
// directory.
func removeFile(name string) error { return pathErr("unlink", name, syscall.Unlink(name)) }
func removeDir(name string) error  { return pathErr("rmdir", name, syscall.Rmdir(name)) }

func pathErr(op, name string, err error) error {
	if err != nil {
		return &os.PathError{Op: op, Path: name, Err: err}
	}
	return nil
}
