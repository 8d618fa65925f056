package storage

import (
	"path"
	"regexp"
	"strconv"

	"github.com/opencontainers/go-digest"
)

// RootPath is where Distribution (and therefore registryd) keeps everything
// inside a storage driver.
const RootPath = "/docker/registry/v2"

const (
	// MaxNameLength is the longest repository name accepted, as in
	// Distribution.
	MaxNameLength = 255
)

var (
	// nameComponent is one path component of a repository name (OCI
	// distribution-spec).
	nameRegexp = regexp.MustCompile(`^[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*$`)
	tagRegexp  = regexp.MustCompile(`^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$`)
	// uploadIDRegexp matches the lower-case UUIDs registryd and Distribution
	// use as upload session ids.
	uploadIDRegexp = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)
)

// ValidName reports whether name is a repository name registryd accepts.
// Every accepted name maps to driver path components of [a-z0-9._-], so
// no name can climb out of the repositories directory.
func ValidName(name string) bool {
	return len(name) <= MaxNameLength && nameRegexp.MatchString(name)
}

// ValidTag reports whether tag matches the OCI tag grammar.
func ValidTag(tag string) bool { return tagRegexp.MatchString(tag) }

// ValidUploadID reports whether id looks like an upload session id.
func ValidUploadID(id string) bool { return uploadIDRegexp.MatchString(id) }

// ParseDigest parses and validates a digest whose algorithm is available
// (sha256, sha384 and sha512 are registered by this package).
func ParseDigest(s string) (digest.Digest, error) {
	d, err := digest.Parse(s)
	if err != nil {
		return "", ErrDigestInvalid
	}
	return d, nil
}

// Path builders. They are only ever called with validated names, tags,
// digests and upload ids.

func blobDir(d digest.Digest) string {
	enc := d.Encoded()
	return path.Join(RootPath, "blobs", d.Algorithm().String(), enc[:2], enc)
}

// BlobDataPath is where the content of d lives:
// blobs/<alg>/<first two hex>/<hex>/data.
func BlobDataPath(d digest.Digest) string { return path.Join(blobDir(d), "data") }

func blobsRoot() string { return path.Join(RootPath, "blobs") }

func repositoriesRoot() string { return path.Join(RootPath, "repositories") }

// RepositoryPath is the directory of repository name.
func RepositoryPath(name string) string { return path.Join(repositoriesRoot(), name) }

// LayerLinkPath is repositories/<name>/_layers/<alg>/<hex>/link.
func LayerLinkPath(name string, d digest.Digest) string {
	return path.Join(RepositoryPath(name), "_layers", d.Algorithm().String(), d.Encoded(), "link")
}

func manifestsPath(name string) string { return path.Join(RepositoryPath(name), "_manifests") }

func revisionsPath(name string) string { return path.Join(manifestsPath(name), "revisions") }

// RevisionLinkPath is repositories/<name>/_manifests/revisions/<alg>/<hex>/link.
func RevisionLinkPath(name string, d digest.Digest) string {
	return path.Join(revisionsPath(name), d.Algorithm().String(), d.Encoded(), "link")
}

func tagsPath(name string) string { return path.Join(manifestsPath(name), "tags") }

func tagPath(name, tag string) string { return path.Join(tagsPath(name), tag) }

// TagCurrentLinkPath is repositories/<name>/_manifests/tags/<tag>/current/link.
func TagCurrentLinkPath(name, tag string) string {
	return path.Join(tagPath(name, tag), "current", "link")
}

// TagIndexLinkPath is repositories/<name>/_manifests/tags/<tag>/index/<alg>/<hex>/link.
func TagIndexLinkPath(name, tag string, d digest.Digest) string {
	return path.Join(tagPath(name, tag), "index", d.Algorithm().String(), d.Encoded(), "link")
}

func uploadPath(name, id string) string { return path.Join(RepositoryPath(name), "_uploads", id) }

// UploadDataPath is repositories/<name>/_uploads/<id>/data.
func UploadDataPath(name, id string) string { return path.Join(uploadPath(name, id), "data") }

// UploadStartedAtPath is repositories/<name>/_uploads/<id>/startedat.
func UploadStartedAtPath(name, id string) string {
	return path.Join(uploadPath(name, id), "startedat")
}

// UploadHashStatePath is
// repositories/<name>/_uploads/<id>/hashstates/<alg>/<offset>: the state of
// alg's hash after the first offset bytes of the upload, where
// Distribution keeps it.
func UploadHashStatePath(name, id string, alg digest.Algorithm, offset int64) string {
	return path.Join(uploadPath(name, id), "hashstates", alg.String(), strconv.FormatInt(offset, 10))
}
