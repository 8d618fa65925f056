package filesystem

// dirent is a directory entry as a listing reports it.
type dirent struct {
	name string
	kind entryKind
}

// entryKind is what a listing knows of an entry without a stat.
type entryKind uint8

const (
	kindOther entryKind = iota // a symbolic link, or unknown: stat it
	kindDir
	kindFile
)
