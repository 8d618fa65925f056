package azure

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/bloberror"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"

	"github.com/berth-dev/berth/registryd/storage/driver/objstore"
)

// blobService is the objstore.Service of a container.
type blobService struct{ d *Driver }

func (s *blobService) List(ctx context.Context, prefix string, delimited bool, pageSize int, token string) (objstore.Page, error) {
	var page objstore.Page
	var marker *string
	if token != "" {
		marker = &token
	}
	var maxResults *int32
	if pageSize > 0 {
		maxResults = to.Ptr(int32(pageSize))
	}
	if delimited {
		pager := s.d.container.NewListBlobsHierarchyPager("/", &container.ListBlobsHierarchyOptions{Prefix: &prefix, Marker: marker, MaxResults: maxResults})
		resp, err := pager.NextPage(ctx)
		if err != nil {
			return page, err
		}
		for _, b := range resp.Segment.BlobItems {
			page.Objects = append(page.Objects, object(b.Name, b.Properties.ContentLength, b.Properties.LastModified))
		}
		for _, p := range resp.Segment.BlobPrefixes {
			page.Prefixes = append(page.Prefixes, deref(p.Name))
		}
		page.Next = deref(resp.NextMarker)
		return page, nil
	}
	pager := s.d.container.NewListBlobsFlatPager(&container.ListBlobsFlatOptions{Prefix: &prefix, Marker: marker, MaxResults: maxResults})
	resp, err := pager.NextPage(ctx)
	if err != nil {
		return page, err
	}
	for _, b := range resp.Segment.BlobItems {
		page.Objects = append(page.Objects, object(b.Name, b.Properties.ContentLength, b.Properties.LastModified))
	}
	page.Next = deref(resp.NextMarker)
	return page, nil
}

func object(name *string, size *int64, mod *time.Time) objstore.Object {
	o := objstore.Object{Key: deref(name)}
	if size != nil {
		o.Size = *size
	}
	if mod != nil {
		o.ModTime = *mod
	}
	return o
}

func (s *blobService) Head(ctx context.Context, key string) (objstore.Object, error) {
	props, err := s.d.container.NewBlobClient(key).GetProperties(ctx, nil)
	if err != nil {
		if isNotFound(err) {
			return objstore.Object{}, objstore.ErrNotExist
		}
		return objstore.Object{}, err
	}
	o := objstore.Object{Key: key}
	if props.ContentLength != nil {
		o.Size = *props.ContentLength
	}
	if props.LastModified != nil {
		o.ModTime = *props.LastModified
	}
	return o, nil
}

// DeleteObjects deletes up to 256 blobs in one batch request.
func (s *blobService) DeleteObjects(ctx context.Context, keys []string) (map[string]error, error) {
	if len(keys) == 0 {
		return nil, nil
	}
	bb, err := s.d.container.NewBatchBuilder()
	if err != nil {
		return nil, err
	}
	for _, k := range keys {
		if err := bb.Delete(k, nil); err != nil {
			return nil, err
		}
	}
	resp, err := s.d.container.SubmitBatch(ctx, bb, nil)
	if err != nil {
		return nil, fmt.Errorf("deleting %d blobs: %w", len(keys), err)
	}
	failed := map[string]error{}
	for _, item := range resp.Responses {
		if item.Error == nil || bloberror.HasCode(item.Error, bloberror.BlobNotFound) || isStatus(item.Error, http.StatusNotFound) {
			continue
		}
		failed[deref(item.BlobName)] = item.Error
	}
	return failed, nil
}
