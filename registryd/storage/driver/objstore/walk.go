package objstore

import (
	"context"
	"strings"

	"github.com/berth-dev/berth/registryd/storage/driver"
)

// Walk visits everything below directory p as driver.StorageDriver.Walk
// does. It runs driver.WalkFallback over a listing view that answers List
// and Stat from listings it makes as the walk goes: the whole subtree of a
// directory in one flat listing when it has at most WalkBudget keys, else
// that directory's children in one delimited listing. A Stat never costs a
// request: every entry the walk stats was just listed.
func (t *Tree) Walk(ctx context.Context, p string, fn driver.WalkFn, options ...driver.WalkOption) error {
	v := &listingView{t: t, dirs: map[string][]driver.FileInfo{}, infos: map[string]driver.FileInfo{}}
	return driver.WalkFallback(ctx, v, p, fn, options...)
}

// listingView is the StorageDriver WalkFallback sees: List and Stat only.
type listingView struct {
	driver.StorageDriver // nil: WalkFallback calls nothing else
	t                    *Tree
	// dirs holds the children of directories inside a subtree listed flat
	// and not walked yet.
	dirs map[string][]driver.FileInfo
	// infos holds the entries listed and not stat'ed yet.
	infos map[string]driver.FileInfo
}

func (v *listingView) List(ctx context.Context, p string) ([]string, error) {
	children, ok := v.dirs[p]
	if ok {
		delete(v.dirs, p)
	} else {
		var err error
		if children, err = v.list(ctx, p); err != nil {
			return nil, err
		}
	}
	out := make([]string, len(children))
	for i, fi := range children {
		out[i] = fi.Path()
		v.infos[fi.Path()] = fi
	}
	return out, nil
}

func (v *listingView) Stat(ctx context.Context, p string) (driver.FileInfo, error) {
	if fi, ok := v.infos[p]; ok {
		delete(v.infos, p)
		return fi, nil
	}
	return v.t.Stat(ctx, p)
}

// list lists directory p: flat when its subtree fits the budget (keeping
// the children of every directory below it for later), else delimited.
func (v *listingView) list(ctx context.Context, p string) ([]driver.FileInfo, error) {
	budget := v.t.WalkBudget
	if budget <= 0 {
		budget = DefaultWalkBudget
	}
	objects, complete, err := v.flat(ctx, v.t.prefix(p), budget)
	if err != nil {
		return nil, err
	}
	if !complete {
		infos, found, err := v.t.children(ctx, p)
		if err != nil {
			return nil, err
		}
		if !found && p != "/" {
			return nil, v.t.NotFound(p)
		}
		return infos, nil
	}
	if len(objects) == 0 && p != "/" {
		return nil, v.t.NotFound(p)
	}
	tree := map[string][]driver.FileInfo{}
	seen := map[string]bool{}
	for _, o := range objects {
		op, ok := v.t.Path(o.Key)
		if !ok || !isBelow(p, op) {
			continue
		}
		// Register the object and every directory between p and it, up
		// to the first one an earlier object registered.
		child := fileInfo(op, o)
		for !seen[child.Path()] {
			seen[child.Path()] = true
			parent := parentOf(child.Path())
			tree[parent] = append(tree[parent], child)
			if parent == p {
				break
			}
			child = dirInfo(parent)
		}
	}
	children := tree[p]
	delete(tree, p)
	for d, c := range tree {
		v.dirs[d] = c
	}
	return children, nil
}

// flat lists every key below prefix, up to limit of them; complete is
// false when there are more.
func (v *listingView) flat(ctx context.Context, prefix string, limit int) (objects []Object, complete bool, err error) {
	token := ""
	for {
		page, err := v.t.Service.List(ctx, prefix, false, v.t.PageSize, token)
		if err != nil {
			return nil, false, err
		}
		objects = append(objects, page.Objects...)
		if page.Next == "" {
			return objects, true, nil
		}
		if len(objects) >= limit {
			return nil, false, nil
		}
		if err := ctx.Err(); err != nil {
			return nil, false, err
		}
		token = page.Next
	}
}

func isBelow(dir, p string) bool {
	if dir == "/" {
		return p != "/"
	}
	return strings.HasPrefix(p, dir+"/")
}

func parentOf(p string) string {
	i := strings.LastIndexByte(p, '/')
	if i <= 0 {
		return "/"
	}
	return p[:i]
}
