package filesystem

// dirent is a directory entry as a listing reports it: isDir when the
// listing says the entry is a directory; a file, a symbolic link and an
// entry of a filesystem without d_type are all false.
type dirent struct {
	name  string
	isDir bool
}
