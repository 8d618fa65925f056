package gcs

import (
	"context"
	"errors"
	"sync"

	"cloud.google.com/go/storage"
	"google.golang.org/api/iterator"

	"github.com/berth-dev/berth/registryd/storage/driver/objstore"
)

// service is the objstore.Service of a bucket.
type service struct{ d *Driver }

func (s *service) List(ctx context.Context, prefix string, delimited bool, pageSize int, token string) (objstore.Page, error) {
	q := &storage.Query{Prefix: prefix}
	if delimited {
		q.Delimiter = "/"
	}
	if err := q.SetAttrSelection([]string{"Name", "Size", "Updated"}); err != nil {
		return objstore.Page{}, err
	}
	if pageSize <= 0 {
		pageSize = defaultPageSize
	}
	var attrs []*storage.ObjectAttrs
	next, err := iterator.NewPager(s.d.bucket.Objects(ctx, q), pageSize, token).NextPage(&attrs)
	if err != nil {
		return objstore.Page{}, err
	}
	page := objstore.Page{Next: next}
	for _, a := range attrs {
		if a.Prefix != "" {
			page.Prefixes = append(page.Prefixes, a.Prefix)
			continue
		}
		page.Objects = append(page.Objects, objstore.Object{Key: a.Name, Size: a.Size, ModTime: a.Updated})
	}
	return page, nil
}

func (s *service) Head(ctx context.Context, key string) (objstore.Object, error) {
	a, err := s.d.bucket.Object(key).Attrs(ctx)
	if err != nil {
		if isNotFound(err) {
			return objstore.Object{}, objstore.ErrNotExist
		}
		return objstore.Object{}, err
	}
	return objstore.Object{Key: key, Size: a.Size, ModTime: a.Updated}, nil
}

// DeleteObjects deletes keys, deleteWorkers at a time: the client library
// has no batch call.
func (s *service) DeleteObjects(ctx context.Context, keys []string) (map[string]error, error) {
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		failed = map[string]error{}
	)
	work := make(chan string)
	for range min(deleteWorkers, len(keys)) {
		wg.Go(func() {
			for k := range work {
				err := s.d.bucket.Object(k).Delete(ctx)
				if err != nil && !errors.Is(err, storage.ErrObjectNotExist) {
					mu.Lock()
					failed[k] = err
					mu.Unlock()
				}
			}
		})
	}
	for _, k := range keys {
		work <- k
	}
	close(work)
	wg.Wait()
	return failed, nil
}
