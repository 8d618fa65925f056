// Package objstore is what registryd's object-store drivers (azure, gcs,
// s3) share: the mapping between driver paths and object keys, and the
// directory view the driver contract asks for (Stat of a directory, List,
// Walk, recursive Delete), built on a service's flat, paginated listing.
//
// An object store has no directories: a directory is a key prefix ending in
// "/" that at least one object starts with. Tree turns a Service (list one
// page, describe one object, delete a batch of objects) into that view; a
// driver implements the object operations itself (GetContent, PutContent,
// Reader, Writer, Move, RedirectURL) and takes the rest from Tree.
//
// Decisions:
//
//   - Keys are the rootdirectory with its slashes trimmed, "/", then the
//     driver path without its leading "/" — the same keys Distribution's
//     azure, gcs and s3 drivers use, so a bucket written by one is served
//     by the other.
//   - Every listing is paginated; nothing assumes a listing fits one page.
//     Service.List is asked for PageSize keys a page (0: the service's
//     default), so tests can force many pages over a few objects.
//   - Keys that do not map to a valid driver path (a component with "~",
//     an empty component) are invisible to List and Walk. Drivers keep
//     their own transient objects under such keys, beside the path they
//     belong to, so that a recursive Delete of a directory removes them
//     with it.
//   - Walk lists a directory's whole subtree flat (one request per page,
//     not one per directory) when it holds at most WalkBudget keys, and
//     falls back to one delimited listing per directory above that, so
//     memory stays bounded on a bucket of any size. The walk order and the
//     StartAfterHint, ErrSkipDir and ErrFilledBuffer rules are those of
//     driver.WalkFallback, which Walk runs over the listings.
//   - Delete collects the keys (the object, everything below it, and the
//     driver's transient objects of that path) and hands them to
//     Service.DeleteObjects in batches of at most MaxDeleteBatch, the most
//     the service takes in one request (S3's DeleteObjects takes 1,000).
package objstore

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"
	"time"

	"github.com/berth-dev/berth/registryd/storage/driver"
)

// ErrNotExist is what a Service returns (wrapped or not) for a missing object.
var ErrNotExist = errors.New("object does not exist")

// Object is one stored object.
type Object struct {
	Key     string
	Size    int64
	ModTime time.Time
}

// Page is one page of a listing, in lexical key order.
type Page struct {
	// Objects are the objects of the page.
	Objects []Object
	// Prefixes are the common prefixes of a delimited listing, each
	// ending in "/".
	Prefixes []string
	// Next is the token of the next page, "" after the last one.
	Next string
}

// Service is the part of an object store's API that Tree builds on.
type Service interface {
	// List returns one page of the objects whose keys start with prefix,
	// at most pageSize of them when pageSize > 0. When delimited, keys
	// with a "/" after the prefix are rolled up into Page.Prefixes. token
	// is "" for the first page, then the previous page's Next.
	List(ctx context.Context, prefix string, delimited bool, pageSize int, token string) (Page, error)
	// Head describes the object at key; a missing object is ErrNotExist.
	Head(ctx context.Context, key string) (Object, error)
	// DeleteObjects removes the objects at keys (at most MaxDeleteBatch of
	// them) and reports the keys it could not remove, with why; a key
	// that is already gone is not a failure. err is for a request that
	// failed as a whole.
	DeleteObjects(ctx context.Context, keys []string) (failed map[string]error, err error)
}

// Defaults of Tree's tuning fields.
const (
	DefaultWalkBudget     = 10000
	DefaultMaxDeleteBatch = 1000
)

// Tree is the directory view of the objects below Root in a Service.
type Tree struct {
	Service Service
	// DriverName names the driver in errors.
	DriverName string
	// Root is the rootdirectory; see Key.
	Root string
	// PageSize is the page size asked of Service.List; 0 leaves it to
	// the service.
	PageSize int
	// WalkBudget is how many keys Walk lists flat under one directory
	// before it lists directory by directory; 0 means DefaultWalkBudget.
	WalkBudget int
	// MaxDeleteBatch is the most keys one Service.DeleteObjects call gets;
	// 0 means DefaultMaxDeleteBatch.
	MaxDeleteBatch int
}

// Key is the object key of the driver path p, "" for the root when Root
// is empty.
func (t *Tree) Key(p string) string {
	root := strings.Trim(t.Root, "/")
	if p == "/" {
		return root
	}
	if root == "" {
		return p[1:]
	}
	return root + p
}

// prefix is the listing prefix of the directory p: its key and "/".
func (t *Tree) prefix(p string) string {
	k := t.Key(p)
	if k == "" {
		return ""
	}
	return k + "/"
}

// Path is the driver path of key, and whether key maps to a valid one.
func (t *Tree) Path(key string) (string, bool) {
	root := strings.Trim(t.Root, "/")
	if root != "" {
		if !strings.HasPrefix(key, root+"/") {
			return "", false
		}
		key = key[len(root):]
	} else {
		key = "/" + key
	}
	return key, driver.ValidPath(key)
}

// NotFound is the driver's PathNotFoundError for p.
func (t *Tree) NotFound(p string) error {
	return driver.PathNotFoundError{Path: p, DriverName: t.DriverName}
}

// IsNotExist reports whether err says an object is missing.
func IsNotExist(err error) bool { return errors.Is(err, ErrNotExist) }

func fileInfo(p string, o Object) driver.FileInfo {
	return driver.FileInfoInternal{FileInfoFields: driver.FileInfoFields{Path: p, Size: o.Size, ModTime: o.ModTime}}
}

func dirInfo(p string) driver.FileInfo {
	return driver.FileInfoInternal{FileInfoFields: driver.FileInfoFields{Path: p, IsDir: true}}
}

// Stat describes the object at p, or the directory p when objects exist
// below it. The root is always a directory, but Stat of the root still
// lists it (one key), so that it fails when the service cannot be reached
// or refuses the credentials: the storagedriver health check relies on it.
func (t *Tree) Stat(ctx context.Context, p string) (driver.FileInfo, error) {
	if p == "/" {
		if _, err := t.Service.List(ctx, t.prefix(p), true, 1, ""); err != nil {
			return nil, err
		}
		return dirInfo(p), nil
	}
	o, err := t.Service.Head(ctx, t.Key(p))
	if err == nil {
		return fileInfo(p, o), nil
	}
	if !IsNotExist(err) {
		return nil, err
	}
	page, err := t.Service.List(ctx, t.prefix(p), true, 1, "")
	if err != nil {
		return nil, err
	}
	if len(page.Objects) == 0 && len(page.Prefixes) == 0 {
		return nil, t.NotFound(p)
	}
	return dirInfo(p), nil
}

// children lists the direct children of directory p with one delimited
// listing (every page). found reports whether any key is below p, visible
// or not.
func (t *Tree) children(ctx context.Context, p string) (out []driver.FileInfo, found bool, err error) {
	prefix := t.prefix(p)
	token := ""
	for {
		page, err := t.Service.List(ctx, prefix, true, t.PageSize, token)
		if err != nil {
			return nil, found, err
		}
		for _, o := range page.Objects {
			found = true
			if cp, ok := t.Path(o.Key); ok {
				out = append(out, fileInfo(cp, o))
			}
		}
		for _, pre := range page.Prefixes {
			found = true
			if cp, ok := t.Path(strings.TrimSuffix(pre, "/")); ok {
				out = append(out, dirInfo(cp))
			}
		}
		if page.Next == "" {
			return out, found, nil
		}
		if err := ctx.Err(); err != nil {
			return nil, found, err
		}
		token = page.Next
	}
}

// List returns the full paths of the direct children of directory p. A
// directory with no objects below it does not exist, except the root,
// which is then empty.
func (t *Tree) List(ctx context.Context, p string) ([]string, error) {
	infos, found, err := t.children(ctx, p)
	if err != nil {
		return nil, err
	}
	if !found && p != "/" {
		return nil, t.NotFound(p)
	}
	out := make([]string, 0, len(infos))
	for _, fi := range infos {
		out = append(out, fi.Path())
	}
	return out, nil
}

// Delete removes the object at p and every object below p, together with
// the driver's transient objects of p (keys that start with p's key and
// "~"). Nothing there is a PathNotFoundError.
func (t *Tree) Delete(ctx context.Context, p string) error {
	key := t.Key(p)
	var keys []string
	// One delimited listing of key itself tells whether the object, its
	// transient objects and a directory of that name exist; only siblings
	// whose names start with the same characters come along with them.
	dir := false
	token := ""
	for {
		page, err := t.Service.List(ctx, key, true, t.PageSize, token)
		if err != nil {
			return err
		}
		for _, o := range page.Objects {
			if o.Key == key || strings.HasPrefix(o.Key, key+"~") {
				keys = append(keys, o.Key)
			}
		}
		for _, pre := range page.Prefixes {
			if pre == key+"/" {
				dir = true
			} else if strings.HasPrefix(pre, key+"~") {
				if err := t.appendAll(ctx, pre, &keys); err != nil {
					return err
				}
			}
		}
		if page.Next == "" {
			break
		}
		token = page.Next
	}
	if dir {
		if err := t.appendAll(ctx, key+"/", &keys); err != nil {
			return err
		}
	}
	if len(keys) == 0 {
		return t.NotFound(p)
	}
	return t.DeleteKeys(ctx, keys)
}

// appendAll appends every key that starts with prefix.
func (t *Tree) appendAll(ctx context.Context, prefix string, keys *[]string) error {
	token := ""
	for {
		page, err := t.Service.List(ctx, prefix, false, t.PageSize, token)
		if err != nil {
			return err
		}
		for _, o := range page.Objects {
			*keys = append(*keys, o.Key)
		}
		if page.Next == "" {
			return nil
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		token = page.Next
	}
}

// DeleteKeys deletes keys in batches of at most MaxDeleteBatch; any key
// left behind is an error.
func (t *Tree) DeleteKeys(ctx context.Context, keys []string) error {
	failed, err := t.deleteKeys(ctx, keys)
	if err != nil {
		return err
	}
	var errs []error
	for k, e := range failed {
		errs = append(errs, fmt.Errorf("deleting %s: %w", k, e))
	}
	return errors.Join(errs...)
}

func (t *Tree) deleteKeys(ctx context.Context, keys []string) (map[string]error, error) {
	batch := t.MaxDeleteBatch
	if batch <= 0 {
		batch = DefaultMaxDeleteBatch
	}
	failed := map[string]error{}
	for len(keys) > 0 {
		n := min(batch, len(keys))
		f, err := t.Service.DeleteObjects(ctx, keys[:n])
		maps.Copy(failed, f)
		if err != nil {
			for _, k := range keys {
				if _, ok := failed[k]; !ok {
					failed[k] = err
				}
			}
			return failed, err
		}
		keys = keys[n:]
	}
	return failed, nil
}

// DeleteFiles deletes the objects at paths in batches (see
// driver.FileDeleter), without listing: it removes exactly those keys.
func (t *Tree) DeleteFiles(ctx context.Context, paths []string) (map[string]error, error) {
	keys := make([]string, len(paths))
	pathOf := make(map[string]string, len(paths))
	for i, p := range paths {
		keys[i] = t.Key(p)
		pathOf[keys[i]] = p
	}
	failedKeys, err := t.deleteKeys(ctx, keys)
	failed := make(map[string]error, len(failedKeys))
	for k, e := range failedKeys {
		failed[pathOf[k]] = e
	}
	return failed, err
}
