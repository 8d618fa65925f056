package storage

import (
	"context"
	"errors"
	"path"
	"slices"
	"strings"

	"github.com/berth-dev/berth/registryd/storage/driver"
)

// CompareNames orders repository names component by component, the order
// of the catalog (and of Distribution's catalog): "a/b" < "a-b".
func CompareNames(a, b string) int {
	return driver.ComparePaths("/"+a, "/"+b)
}

// Repositories returns up to n repository names that sort after last, in
// CompareNames order, and whether more exist. A repository is a directory
// under repositories/ that holds a _manifests entry, as in Distribution;
// directories whose name starts with "_" are not descended.
//
// It lists directories itself rather than walking: a repository is
// reported as soon as its own listing shows _manifests, before the
// repositories nested in it, and siblings are visited in name order, so
// names come out in catalog order and the listing stops once it has one
// more than n. Subtrees that sort entirely at or before last are not
// listed, and nothing is stat'ed: a page costs one listing per repository
// it returns (plus the directories leading to last), where a walk would
// list and stat every repository after last on every page.
func (s *Store) Repositories(ctx context.Context, last string, n int) ([]string, bool, error) {
	found := []string{}
	err := s.listRepositories(ctx, repositoriesRoot(), "", last, n, &found)
	if err != nil && !errors.Is(err, errPageFull) {
		return nil, false, err
	}
	if n >= 0 && len(found) > n {
		return found[:n], true, nil
	}
	return found, false, nil
}

// errPageFull ends a catalog listing that found enough.
var errPageFull = errors.New("catalog page full")

// listRepositories adds to found, in catalog order, the repositories at
// and below dir (the directory of repository name, or the root for ""),
// that sort after last. It returns errPageFull once found holds n+1.
func (s *Store) listRepositories(ctx context.Context, dir, name, last string, n int, found *[]string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	entries, err := s.driver.List(ctx, dir)
	switch {
	case errors.Is(err, driver.ErrNotFound):
		return nil // gone since its parent was listed, or no repository at all
	case err != nil:
		if fi, serr := s.driver.Stat(ctx, dir); serr == nil && !fi.IsDir() {
			return nil // a stray file, not a repository
		}
		return err
	}
	isRepo := false
	children := make([]string, 0, len(entries))
	for _, e := range entries {
		switch base := path.Base(e); {
		case base == "_manifests":
			isRepo = true
		case strings.HasPrefix(base, "_"):
		default:
			children = append(children, base)
		}
	}
	if isRepo && name != "" && (last == "" || CompareNames(name, last) > 0) {
		*found = append(*found, name)
		if n >= 0 && len(*found) > n {
			return errPageFull
		}
	}
	slices.Sort(children)
	for _, c := range children {
		child := c
		if name != "" {
			child = name + "/" + c
		}
		// Skip a subtree whose every name sorts before last: the child
		// itself does, and last is not below it. (Below a child equal to
		// last, every name sorts after it.)
		if last != "" && CompareNames(child, last) < 0 && !strings.HasPrefix(last, child+"/") {
			continue
		}
		if err := s.listRepositories(ctx, dir+"/"+c, child, last, n, found); err != nil {
			return err
		}
	}
	return nil
}
