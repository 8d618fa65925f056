package storage

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"path"
	"slices"
	"strings"
	"sync"

	"github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-dev/berth/registryd/storage/driver"
)

// The referrers index.
//
// Which manifests of a repository name a given subject? Reading every
// manifest to answer is linear in the size of the repository, on every
// request. registryd keeps an index per repository instead:
//
//	repositories/<name>/_berth/referrers/indexed                              revisions already read: sorted digests, one per line
//	repositories/<name>/_berth/referrers/subjects/<alg>/<hex>/<alg>/<hex>      descriptor (JSON) of a referrer, filed under its subject
//
// The index lives in _berth because Distribution never looks there: its
// catalog, upload purging and garbage collector all skip the directories
// of a repository whose name starts with "_" other than their own, and no
// repository name can start with "_". It goes when its repository is
// deleted. Distribution neither reads nor updates it, which is why it is
// checked on every request:
//
//   - A request lists the repository's revisions (a listing, no manifest
//     read) and compares the list with indexed. A revision not in it,
//     pushed since by registryd or by any other writer such as
//     Distribution, is read once, its subject filed, and indexed
//     rewritten. Without indexed (a store Distribution wrote, or one from
//     before the index) every revision is new: the index is built on first
//     use. A revision whose content cannot be read is left out of indexed
//     and tried again next time.
//   - Manifests are content addressed, so an entry is a function of its
//     referrer's digest: never wrong, at most stale. Entries of referrers
//     that are no longer revisions (deleted, swept) are not served.
//     Entries are removed only by PruneReferrersIndex (garbage
//     collection), which removes their digests from indexed first, so that
//     a manifest pushed again is read again.
//   - Index writes are storage writes: each update asks the Store's write
//     admission (WithWriteAdmission) and is skipped while the registry is
//     read-only, when the answer is computed from the same listing in
//     memory. A failed index write is logged and the answer still served.
//
// With the index up to date, a request costs two listings (the revisions
// and the subject's entries), a stat of indexed and one read per referrer:
// the process keeps the SHA-256 of the indexed file it last found or
// wrote per repository, and reads the file again only when the listing no
// longer matches it. test/bench BenchmarkReferrers measures it on 10,000
// manifests.

const referrersDirName = "_berth"

func referrersIndexRoot(name string) string {
	return path.Join(RepositoryPath(name), referrersDirName, "referrers")
}

func referrersIndexedPath(name string) string {
	return path.Join(referrersIndexRoot(name), "indexed")
}

func referrersSubjectsPath(name string) string {
	return path.Join(referrersIndexRoot(name), "subjects")
}

func referrersSubjectPath(name string, subject digest.Digest) string {
	return path.Join(referrersSubjectsPath(name), subject.Algorithm().String(), subject.Encoded())
}

func referrerEntryPath(name string, subject, referrer digest.Digest) string {
	return path.Join(referrersSubjectPath(name, subject), referrer.Algorithm().String(), referrer.Encoded())
}

// indexLocks serialises index updates per repository (by hash), so that
// concurrent requests read each new revision once and the second sees
// what the first filed.
type indexLocks [64]sync.Mutex

func (l *indexLocks) of(name string) *sync.Mutex {
	h := fnv.New32a()
	h.Write([]byte(name))
	return &l[h.Sum32()%uint32(len(l))]
}

// referrer is a manifest with a subject: what the index files.
type referrer struct {
	subject digest.Digest
	desc    v1.Descriptor
}

// Referrers returns a descriptor of every manifest of repository name whose
// subject is d, sorted by digest. When artifactType is not empty only
// manifests of that artifact type are returned. A manifest's artifact type
// is its artifactType field, or its config's media type. It answers from
// the referrers index, bringing it up to date first (see above).
func (s *Store) Referrers(ctx context.Context, name string, d digest.Digest, artifactType string) ([]v1.Descriptor, error) {
	if err := checkDigest(d); err != nil {
		return nil, err
	}
	if err := checkName(name); err != nil {
		return nil, err
	}
	revs, unfiled, err := s.updateReferrersIndex(ctx, name)
	if err != nil {
		return nil, err
	}
	out, err := s.filedReferrers(ctx, name, d, revs)
	if err != nil {
		return nil, err
	}
	for _, r := range unfiled {
		if r.subject == d && !slices.ContainsFunc(out, func(o v1.Descriptor) bool { return o.Digest == r.desc.Digest }) {
			out = append(out, r.desc)
		}
	}
	if artifactType != "" {
		out = slices.DeleteFunc(out, func(o v1.Descriptor) bool { return o.ArtifactType != artifactType })
	}
	slices.SortFunc(out, func(a, b v1.Descriptor) int { return strings.Compare(string(a.Digest), string(b.Digest)) })
	return out, nil
}

// updateReferrersIndex files the revisions of repository name not yet in
// the index. It returns the sorted revisions, and the referrers it read
// but could not file (read-only, or a failed write).
func (s *Store) updateReferrersIndex(ctx context.Context, name string) ([]digest.Digest, []referrer, error) {
	mu := s.indexLocks.of(name)
	mu.Lock()
	defer mu.Unlock()
	revs, err := s.ManifestDigests(ctx, name)
	if err != nil || len(revs) == 0 {
		return revs, nil, err
	}
	file := indexedFile(revs)
	sum := sha256.Sum256(file)
	if s.indexedIs(ctx, name, sum, len(file)) {
		return revs, nil, nil
	}
	indexed, err := s.readIndexed(ctx, name)
	if err != nil {
		return nil, nil, err
	}
	fresh := sortedMinus(revs, indexed)
	var found []referrer
	var unreadable []digest.Digest
	for _, rev := range fresh {
		r, ok, err := s.readReferrer(ctx, name, rev)
		switch {
		case errors.Is(err, ErrManifestUnknown):
			unreadable = append(unreadable, rev)
		case err != nil:
			return nil, nil, err
		case ok:
			found = append(found, r)
		}
	}
	if len(fresh) == 0 && len(indexed) == len(revs) {
		s.indexedSums.Store(name, sum)
		return revs, nil, nil
	}
	release, admitted := s.admitWrite()
	if !admitted {
		return revs, found, nil
	}
	defer release()
	for i, r := range found {
		if err := s.writeEntry(ctx, name, r); err != nil {
			s.log.WarnContext(ctx, "Writing the referrers index failed; answering without it", "repository", name, "error", err)
			return revs, found[i:], nil
		}
	}
	if len(unreadable) > 0 {
		file = indexedFile(sortedMinus(revs, unreadable))
	}
	if err := s.driver.PutContent(ctx, referrersIndexedPath(name), file); err != nil {
		s.log.WarnContext(ctx, "Writing the referrers index failed", "repository", name, "error", err)
	} else if len(unreadable) == 0 {
		s.indexedSums.Store(name, sum)
	}
	return revs, nil, nil
}

// indexedIs reports whether indexed is known to hold exactly the listing
// whose file has this sum and length: this process read or wrote it so,
// and it is still there with that length. The listing is compared on
// every request; indexed is read again only when it changed.
func (s *Store) indexedIs(ctx context.Context, name string, sum [32]byte, size int) bool {
	known, ok := s.indexedSums.Load(name)
	if !ok || known.([32]byte) != sum {
		return false
	}
	fi, err := s.driver.Stat(ctx, referrersIndexedPath(name))
	return err == nil && fi.Size() == int64(size)
}

// indexedFile is the content of indexed for revs.
func indexedFile(revs []digest.Digest) []byte {
	b := make([]byte, 0, len(revs)*(len(digest.Canonical)+66))
	for _, d := range revs {
		b = append(b, d...)
		b = append(b, '\n')
	}
	return b
}

// readReferrer reads revision rev; ok is false when it has no subject (or
// is not a manifest registryd can parse, which has no subject either).
func (s *Store) readReferrer(ctx context.Context, name string, rev digest.Digest) (referrer, bool, error) {
	content, err := s.GetManifest(ctx, name, rev)
	if err != nil {
		return referrer{}, false, err
	}
	m, mt, err := ParseManifest(content, "")
	if err != nil || m.Subject == nil {
		return referrer{}, false, nil //nolint:nilerr // a manifest registryd cannot parse has no subject either
	}
	at := m.ArtifactType
	if at == "" && m.Config != nil {
		at = m.Config.MediaType
	}
	return referrer{subject: m.Subject.Digest, desc: v1.Descriptor{
		MediaType:    mt,
		Digest:       rev,
		Size:         int64(len(content)),
		ArtifactType: at,
		Annotations:  m.Annotations,
	}}, true, nil
}

func (s *Store) writeEntry(ctx context.Context, name string, r referrer) error {
	b, err := json.Marshal(r.desc)
	if err != nil {
		return err
	}
	return s.driver.PutContent(ctx, referrerEntryPath(name, r.subject, r.desc.Digest), b)
}

// readIndexed reads the revisions the index holds; none when it has no
// indexed file, or an unreadable one (it is then rebuilt).
func (s *Store) readIndexed(ctx context.Context, name string) ([]digest.Digest, error) {
	b, err := s.driver.GetContent(ctx, referrersIndexedPath(name))
	if errors.Is(err, driver.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	out := make([]digest.Digest, 0, len(lines))
	for _, l := range lines {
		if l == "" {
			continue
		}
		// Sorted is all the merge with the listing needs: a line that is
		// no digest matches no revision, which is then read again.
		d := digest.Digest(l)
		if len(out) > 0 && out[len(out)-1] >= d {
			s.log.WarnContext(ctx, "Referrers index unreadable; rebuilding it", "repository", name, "path", referrersIndexedPath(name))
			return nil, nil
		}
		out = append(out, d)
	}
	return out, nil
}

func (s *Store) putIndexed(ctx context.Context, name string, revs []digest.Digest) error {
	return s.driver.PutContent(ctx, referrersIndexedPath(name), indexedFile(revs))
}

// filedReferrers reads the entries filed under subject d whose referrer is
// among revs (sorted).
func (s *Store) filedReferrers(ctx context.Context, name string, d digest.Digest, revs []digest.Digest) ([]v1.Descriptor, error) {
	out := []v1.Descriptor{}
	err := s.walkEntries(ctx, referrersSubjectPath(name, d), func(p string, ref digest.Digest) error {
		if _, live := slices.BinarySearch(revs, ref); !live {
			return nil
		}
		b, err := s.driver.GetContent(ctx, p)
		if errors.Is(err, driver.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		var desc v1.Descriptor
		if err := json.Unmarshal(b, &desc); err != nil || desc.Digest != ref {
			return fmt.Errorf("corrupt referrers index entry %s", p)
		}
		out = append(out, desc)
		return nil
	})
	return out, err
}

// walkEntries calls fn for every entry <dir>/<alg>/<hex> with the digest
// its path spells.
func (s *Store) walkEntries(ctx context.Context, dir string, fn func(p string, ref digest.Digest) error) error {
	algs, err := s.driver.List(ctx, dir)
	if errors.Is(err, driver.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, algDir := range algs {
		entries, err := s.driver.List(ctx, algDir)
		if errors.Is(err, driver.ErrNotFound) {
			continue
		}
		if err != nil {
			return err
		}
		for _, p := range entries {
			alg, enc := path.Base(algDir), path.Base(p)
			if !validEncoded(alg, enc) {
				continue
			}
			ref := digest.Digest(alg + ":" + enc)
			if err := fn(p, ref); err != nil {
				return err
			}
		}
	}
	return nil
}

// PruneReferrersIndex removes from the referrers index of repository name
// what no longer has a revision: first from indexed, then the entries. It
// is garbage collection's, and like it must run while nothing writes to
// the repository. It returns how many entries it removed; a repository
// without an index is left as it is.
func (s *Store) PruneReferrersIndex(ctx context.Context, name string) (int, error) {
	if err := checkName(name); err != nil {
		return 0, err
	}
	if _, err := s.driver.Stat(ctx, referrersIndexRoot(name)); errors.Is(err, driver.ErrNotFound) {
		return 0, nil
	}
	revs, err := s.ManifestDigests(ctx, name)
	if err != nil {
		return 0, err
	}
	indexed, err := s.readIndexed(ctx, name)
	if err != nil {
		return 0, err
	}
	if gone := sortedMinus(indexed, revs); len(gone) > 0 {
		if err := s.putIndexed(ctx, name, sortedMinus(indexed, gone)); err != nil {
			return 0, err
		}
	}
	removed := 0
	algs, err := s.driver.List(ctx, referrersSubjectsPath(name))
	if errors.Is(err, driver.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	for _, algDir := range algs {
		subjects, err := s.driver.List(ctx, algDir)
		if err != nil && !errors.Is(err, driver.ErrNotFound) {
			return removed, err
		}
		for _, subjectDir := range subjects {
			kept := 0
			err := s.walkEntries(ctx, subjectDir, func(p string, ref digest.Digest) error {
				if _, live := slices.BinarySearch(revs, ref); live {
					kept++
					return nil
				}
				if err := s.driver.Delete(ctx, p); err != nil && !errors.Is(err, driver.ErrNotFound) {
					return err
				}
				removed++
				return nil
			})
			if err != nil {
				return removed, err
			}
			if kept == 0 {
				if err := s.driver.Delete(ctx, subjectDir); err != nil && !errors.Is(err, driver.ErrNotFound) {
					return removed, err
				}
			}
		}
	}
	return removed, nil
}

// sortedMinus returns the elements of a (sorted) not in b (sorted).
func sortedMinus(a, b []digest.Digest) []digest.Digest {
	var out []digest.Digest
	j := 0
	for _, d := range a {
		for j < len(b) && b[j] < d {
			j++
		}
		if j < len(b) && b[j] == d {
			continue
		}
		out = append(out, d)
	}
	return out
}
