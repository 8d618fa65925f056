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
// under repositories/ that holds a _manifests directory, as in
// Distribution; directories whose name starts with "_" are not descended.
//
// The walk collects every repository after last before sorting: a nested
// repository whose name starts with a digit ("a/0") is met before its
// parent's _manifests ("a"), so the walk order alone is not the catalog
// order.
func (s *Store) Repositories(ctx context.Context, last string, n int) ([]string, bool, error) {
	root := repositoriesRoot()
	found := []string{}
	var opts []driver.WalkOption
	if last != "" && ValidName(last) {
		opts = append(opts, driver.WithStartAfterHint(path.Join(root, last)))
	}
	err := s.driver.Walk(ctx, root, func(fi driver.FileInfo) error {
		if !fi.IsDir() {
			return nil
		}
		p := fi.Path()
		base := path.Base(p)
		if base == "_manifests" {
			repo := strings.TrimPrefix(path.Dir(p), root+"/")
			if last == "" || CompareNames(repo, last) > 0 {
				found = append(found, repo)
			}
			return driver.ErrSkipDir
		}
		if strings.HasPrefix(base, "_") {
			return driver.ErrSkipDir
		}
		return nil
	}, opts...)
	if err != nil && !errors.Is(err, driver.ErrNotFound) {
		return nil, false, err
	}
	slices.SortFunc(found, CompareNames)
	found = slices.Compact(found)
	if n >= 0 && len(found) > n {
		return found[:n], true, nil
	}
	return found, false, nil
}
