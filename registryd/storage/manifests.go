package storage

import (
	"context"
	"errors"
	"path"
	"slices"
	"strings"

	"github.com/opencontainers/go-digest"
	"golang.org/x/sync/errgroup"

	"github.com/berth-dev/berth/registryd/storage/driver"
)

// GetManifest returns the content of manifest d of repository name. The
// revision link is checked in storage every time; the content comes from
// the manifest cache when it holds d (manifestcache.go).
func (s *Store) GetManifest(ctx context.Context, name string, d digest.Digest) ([]byte, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	if err := checkDigest(d); err != nil {
		return nil, err
	}
	if s.manifests.get(d) != nil {
		sm, err := s.ReadManifest(ctx, name, d)
		if err != nil {
			return nil, err
		}
		return sm.Content, nil
	}
	return s.readManifestContent(ctx, name, d)
}

// readManifestContent reads manifest d of repository name from storage:
// its revision link, then the content the link names.
func (s *Store) readManifestContent(ctx context.Context, name string, d digest.Digest) ([]byte, error) {
	target, err := s.readLink(ctx, RevisionLinkPath(name, d), ErrManifestUnknown)
	if err != nil {
		return nil, err
	}
	b, err := s.driver.GetContent(ctx, BlobDataPath(target))
	if errors.Is(err, driver.ErrNotFound) {
		return nil, ErrManifestUnknown
	}
	return b, err
}

// ManifestExists reports whether manifest d is stored in repository name.
func (s *Store) ManifestExists(ctx context.Context, name string, d digest.Digest) (bool, error) {
	_, err := s.GetManifest(ctx, name, d)
	if errors.Is(err, ErrManifestUnknown) {
		return false, nil
	}
	return err == nil, err
}

// PutManifest stores content as manifest d of repository name and points
// each of tags at it: the content goes to the global blob store, a
// revision link into the repository, and for each tag its index entry and
// current link, in Distribution's order. Manifests are not linked under
// _layers, as in Distribution.
//
// Everything is written in one driver.PutContents call: the content is
// durable before any link appears, and the links follow in order, so the
// filesystem driver waits for a few rounds of fsyncs instead of one per
// file.
func (s *Store) PutManifest(ctx context.Context, name string, d digest.Digest, content []byte, tags ...string) error {
	if err := checkName(name); err != nil {
		return err
	}
	if err := checkDigest(d); err != nil {
		return err
	}
	for _, t := range tags {
		if !ValidTag(t) {
			return ErrTagInvalid
		}
	}
	if d.Algorithm().FromBytes(content) != d {
		return ErrDigestMismatch
	}
	var groups [][]driver.ContentWrite
	switch _, err := s.statGlobalBlob(ctx, d); {
	case errors.Is(err, ErrBlobUnknown):
		groups = append(groups, []driver.ContentWrite{{Path: BlobDataPath(d), Content: content}})
	case err != nil:
		return err
	}
	link := []byte(d.String())
	links := []driver.ContentWrite{{Path: RevisionLinkPath(name, d), Content: link}}
	for _, t := range tags {
		links = append(links,
			driver.ContentWrite{Path: TagIndexLinkPath(name, t, d), Content: link},
			driver.ContentWrite{Path: TagCurrentLinkPath(name, t), Content: link})
	}
	if err := driver.PutContents(ctx, s.driver, append(groups, links)...); err != nil {
		return err
	}
	// The next read of it is likely close: keep it, when it parses as a
	// stored manifest would.
	_, _ = s.parseStored(d, content)
	return nil
}

// DeleteManifest removes manifest d from repository name, and every tag
// whose current link points at it (Distribution's handler does the same).
// It returns the tags removed. The content stays in the blob store until
// garbage collection.
func (s *Store) DeleteManifest(ctx context.Context, name string, d digest.Digest) ([]string, error) {
	if _, err := s.GetManifest(ctx, name, d); err != nil {
		return nil, err
	}
	if err := s.driver.Delete(ctx, path.Dir(RevisionLinkPath(name, d))); err != nil && !errors.Is(err, driver.ErrNotFound) {
		return nil, err
	}
	tags, err := s.TagsFor(ctx, name, d)
	if err != nil {
		return nil, err
	}
	for _, t := range tags {
		if err := s.Untag(ctx, name, t); err != nil && !errors.Is(err, ErrTagUnknown) {
			return nil, err
		}
	}
	return tags, nil
}

// ResolveTag returns the digest tag points at in repository name.
func (s *Store) ResolveTag(ctx context.Context, name, tag string) (digest.Digest, error) {
	if err := checkName(name); err != nil {
		return "", err
	}
	if !ValidTag(tag) {
		return "", ErrTagInvalid
	}
	return s.readLink(ctx, TagCurrentLinkPath(name, tag), ErrTagUnknown)
}

// Tag points tag at manifest d: it writes the tag's index entry, then its
// current link, in Distribution's order.
func (s *Store) Tag(ctx context.Context, name, tag string, d digest.Digest) error {
	if err := checkName(name); err != nil {
		return err
	}
	if !ValidTag(tag) {
		return ErrTagInvalid
	}
	if err := checkDigest(d); err != nil {
		return err
	}
	if err := s.writeLink(ctx, TagIndexLinkPath(name, tag, d), d); err != nil {
		return err
	}
	return s.writeLink(ctx, TagCurrentLinkPath(name, tag), d)
}

// Untag removes tag, with its whole history (the tag directory), as
// Distribution does. The manifests stay.
func (s *Store) Untag(ctx context.Context, name, tag string) error {
	if _, err := s.ResolveTag(ctx, name, tag); err != nil {
		return err
	}
	err := s.driver.Delete(ctx, tagPath(name, tag))
	if errors.Is(err, driver.ErrNotFound) {
		return ErrTagUnknown
	}
	return err
}

// Tags returns the tags of repository name in lexical order.
// ErrRepositoryUnknown is returned when the repository does not exist.
func (s *Store) Tags(ctx context.Context, name string) ([]string, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	entries, err := s.driver.List(ctx, tagsPath(name))
	if errors.Is(err, driver.ErrNotFound) {
		return emptyListing[string](ctx, s, name)
	}
	if err != nil {
		return nil, err
	}
	tags := make([]string, 0, len(entries))
	for _, e := range entries {
		if t := path.Base(e); ValidTag(t) {
			tags = append(tags, t)
		}
	}
	slices.Sort(tags)
	return tags, nil
}

// TagsFor returns the tags of repository name whose current link points at
// d, in lexical order. It reads every tag's link, at most
// WithTagConcurrency of them at a time.
func (s *Store) TagsFor(ctx context.Context, name string, d digest.Digest) ([]string, error) {
	tags, err := s.Tags(ctx, name)
	if errors.Is(err, ErrRepositoryUnknown) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	match := make([]bool, len(tags))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(s.tagConcurrency)
	for i, t := range tags {
		g.Go(func() error {
			target, err := s.ResolveTag(gctx, name, t)
			if errors.Is(err, ErrTagUnknown) {
				return nil
			}
			if err != nil {
				return err
			}
			match[i] = target == d
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	var out []string
	for i, t := range tags {
		if match[i] {
			out = append(out, t)
		}
	}
	return out, nil
}

// ManifestDigests returns the digests of every manifest revision of
// repository name, sorted.
func (s *Store) ManifestDigests(ctx context.Context, name string) ([]digest.Digest, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	out, err := s.linkedDigests(ctx, revisionsPath(name))
	if err != nil {
		return nil, err
	}
	slices.SortFunc(out, func(a, b digest.Digest) int { return strings.Compare(string(a), string(b)) })
	return out, nil
}
