package s3

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/berth-dev/berth/registryd/storage/driver/objstore"
)

// service is the objstore.Service of a bucket.
type service struct{ d *Driver }

func (s *service) List(ctx context.Context, prefix string, delimited bool, pageSize int, token string) (objstore.Page, error) {
	in := &s3.ListObjectsV2Input{Bucket: s.d.bucket(), Prefix: aws.String(prefix)}
	if delimited {
		in.Delimiter = aws.String("/")
	}
	if pageSize > 0 {
		in.MaxKeys = aws.Int32(int32(pageSize))
	}
	if token != "" {
		in.ContinuationToken = aws.String(token)
	}
	out, err := s.d.client.ListObjectsV2(ctx, in)
	if err != nil {
		return objstore.Page{}, err
	}
	var page objstore.Page
	for _, o := range out.Contents {
		page.Objects = append(page.Objects, objstore.Object{Key: aws.ToString(o.Key), Size: aws.ToInt64(o.Size), ModTime: aws.ToTime(o.LastModified)})
	}
	for _, p := range out.CommonPrefixes {
		page.Prefixes = append(page.Prefixes, aws.ToString(p.Prefix))
	}
	if aws.ToBool(out.IsTruncated) {
		page.Next = aws.ToString(out.NextContinuationToken)
		if page.Next == "" {
			return objstore.Page{}, fmt.Errorf("listing %q: the server says there is more but gave no continuation token", prefix)
		}
	}
	return page, nil
}

func (s *service) Head(ctx context.Context, key string) (objstore.Object, error) {
	out, err := s.d.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: s.d.bucket(), Key: aws.String(key)})
	if err != nil {
		if isNotFound(err) {
			return objstore.Object{}, objstore.ErrNotExist
		}
		return objstore.Object{}, err
	}
	return objstore.Object{Key: key, Size: aws.ToInt64(out.ContentLength), ModTime: aws.ToTime(out.LastModified)}, nil
}

// DeleteObjects removes up to 1,000 keys in one request.
func (s *service) DeleteObjects(ctx context.Context, keys []string) (map[string]error, error) {
	if len(keys) == 0 {
		return nil, nil
	}
	objs := make([]types.ObjectIdentifier, len(keys))
	for i, k := range keys {
		objs[i] = types.ObjectIdentifier{Key: aws.String(k)}
	}
	out, err := s.d.client.DeleteObjects(ctx, &s3.DeleteObjectsInput{
		Bucket: s.d.bucket(),
		Delete: &types.Delete{Objects: objs, Quiet: aws.Bool(true)},
	})
	if err != nil {
		return nil, err
	}
	failed := map[string]error{}
	for _, e := range out.Errors {
		if aws.ToString(e.Code) == "NoSuchKey" {
			continue
		}
		failed[aws.ToString(e.Key)] = fmt.Errorf("%s: %s", aws.ToString(e.Code), aws.ToString(e.Message))
	}
	return failed, nil
}
