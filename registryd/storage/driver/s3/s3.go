// Package s3 is the storage driver for Amazon S3 and S3-compatible object
// stores (storage.s3 in config.yml), on the AWS SDK for Go v2. Its object
// keys are those of Distribution's s3 driver (see package objstore), so a
// bucket written by one is served by the other.
//
// Decisions:
//
//   - A FileWriter publishes what it wrote when it is closed or committed,
//     not only on Commit: what an upload received is then an ordinary object
//     that any replica can stat, read and continue, which is what lets an
//     upload started on one registryd continue on another. Bytes are sent
//     as they arrive, in parts of chunksize, through a multipart upload;
//     content that fits one part is one PutObject.
//   - A Writer opened with append continues the committed object without
//     sending it again: an object of at least 5 MiB (S3's smallest part)
//     becomes the first parts of the new multipart upload by UploadPartCopy,
//     a smaller one is read back into the first part. A multipart upload
//     left behind by a writer that died before Close is never completed or
//     listed; a bucket lifecycle rule (AbortIncompleteMultipartUpload)
//     reclaims its parts, as for Distribution.
//   - Move is CopyObject up to multipartcopythresholdsize and a multipart
//     copy in multipartcopychunksize parts (multipartcopymaxconcurrency at
//     a time) above it, then a delete of the source. A reader of the
//     destination sees the old object or the new one.
//   - Deletes go through DeleteObjects, 1,000 keys a request.
//   - RedirectURL presigns GET and HEAD for 20 minutes against the
//     configured endpoint, so a redirect works against an S3-compatible
//     server on plain http too.
//   - The AWS SDK computes request checksums only where the S3 API requires
//     them (RequestChecksumCalculation and ResponseChecksumValidation
//     "when required"), which every S3-compatible server accepts.
//   - Without accesskey and secretkey the SDK's default credential chain
//     is used (environment, shared files, web identity, instance role).
//   - v4auth: false is refused: the AWS SDK for Go v2 signs with signature
//     version 4 only.
package s3

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/logging"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/berth-dev/berth/registryd/storage/driver"
	"github.com/berth-dev/berth/registryd/storage/driver/objstore"
)

// DriverName is the name of this driver in configuration.
const DriverName = "s3"

// Limits and defaults, as in Distribution's s3 driver.
const (
	// MinChunkSize is S3's smallest part, except the last.
	MinChunkSize = 5 << 20
	// MaxChunkSize is S3's largest part.
	MaxChunkSize = 5 << 30
	// DefaultChunkSize is the part size of uploads when chunksize is unset.
	DefaultChunkSize = 10 << 20
	// DefaultMultipartCopyChunkSize is the part size of a multipart copy.
	DefaultMultipartCopyChunkSize = 32 << 20
	// DefaultMultipartCopyMaxConcurrency bounds the parts copied at once.
	DefaultMultipartCopyMaxConcurrency = 100
	// DefaultMultipartCopyThresholdSize is the size above which Move copies in parts.
	DefaultMultipartCopyThresholdSize = 32 << 20
	// maxCopyObjectSize is the largest object one CopyObject copies.
	maxCopyObjectSize = 5 << 30
	// redirectExpiry is how long a presigned URL is valid.
	redirectExpiry = 20 * time.Minute
	// maxDeleteBatch is the most keys DeleteObjects takes.
	maxDeleteBatch = 1000
)

// LogLevels are the values of loglevel, as in Distribution's s3 driver.
var LogLevels = []string{"off", "debug", "debugwithsigning", "debugwithhttpbody", "debugwithrequestretries", "debugwithrequesterrors", "debugwitheventstreambody"}

// Parameters configure the driver (storage.s3 in config.yml).
type Parameters struct {
	AccessKey, SecretKey, SessionToken string
	Region                             string
	// RegionEndpoint is the endpoint URL of an S3-compatible service.
	RegionEndpoint string
	ForcePathStyle bool
	Accelerate     bool
	UseDualStack   bool
	Bucket         string
	// Encrypt turns on server-side encryption: with KMS key KeyID when it
	// is set, else with S3-managed keys (AES256).
	Encrypt bool
	KeyID   string
	// Secure uses https for endpoints the SDK resolves (not for
	// RegionEndpoint, whose scheme is used as written).
	Secure     bool
	SkipVerify bool
	// V4Auth must be true (see the package documentation).
	V4Auth bool
	// ChunkSize is the part size of uploads (0: DefaultChunkSize).
	ChunkSize int64
	// MultipartCopy* tune Move (0: their defaults).
	MultipartCopyChunkSize      int64
	MultipartCopyMaxConcurrency int64
	MultipartCopyThresholdSize  int64
	RootDirectory               string
	// StorageClass of written objects; "" or "NONE" sends none (the bucket's default).
	StorageClass string
	// ObjectACL is the canned ACL of written objects; "" sends none.
	ObjectACL string
	// UserAgent is appended to the SDK's User-Agent (characters the SDK
	// does not allow there, "/" among them, become "-").
	UserAgent string
	// LogLevel is one of LogLevels; "" means off.
	LogLevel string
	// Logger receives the SDK's log lines when LogLevel asks for them.
	Logger *slog.Logger

	// PageSize is the most keys asked for per listing page (0: the
	// service's default of 1,000). Tests make it small to cover pagination.
	PageSize int
	// WalkBudget overrides objstore.Tree.WalkBudget (tests).
	WalkBudget int
}

// Driver is the s3 storage driver.
type Driver struct {
	objstore.Tree
	client  *s3.Client
	presign *s3.PresignClient
	p       Parameters
}

// New returns an s3 driver for p. It makes no request: a bucket that does
// not exist or refuses the credentials shows at the first operation.
func New(ctx context.Context, p Parameters) (driver.StorageDriver, error) {
	d, err := newDriver(ctx, p)
	if err != nil {
		return nil, err
	}
	return driver.Validating(d), nil
}

func newDriver(ctx context.Context, p Parameters) (*Driver, error) {
	if err := defaults(&p); err != nil {
		return nil, err
	}
	httpClient := awshttp.NewBuildableClient()
	if p.SkipVerify {
		httpClient = httpClient.WithTransportOptions(func(t *http.Transport) {
			if t.TLSClientConfig == nil {
				t.TLSClientConfig = &tls.Config{}
			}
			t.TLSClientConfig.InsecureSkipVerify = true // skipverify asks for it
		})
	}
	opts := []func(*config.LoadOptions) error{
		config.WithRegion(p.Region),
		config.WithHTTPClient(httpClient),
	}
	if p.AccessKey != "" {
		opts = append(opts, config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider(p.AccessKey, p.SecretKey, p.SessionToken)))
	}
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("loading AWS configuration: %w", err)
	}
	logMode, err := clientLogMode(p.LogLevel)
	if err != nil {
		return nil, err
	}
	client := s3.NewFromConfig(cfg, func(o *s3.Options) {
		o.UsePathStyle = p.ForcePathStyle
		o.UseAccelerate = p.Accelerate
		o.UseDualstack = p.UseDualStack //nolint:staticcheck // the S3 client still reads it
		if p.RegionEndpoint != "" {
			o.BaseEndpoint = aws.String(p.RegionEndpoint)
		}
		o.EndpointOptions.DisableHTTPS = !p.Secure
		o.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
		o.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
		o.ClientLogMode = logMode
		if logMode != 0 {
			o.Logger = sdkLogger{log: p.Logger}
		}
		if p.UserAgent != "" {
			o.APIOptions = append(o.APIOptions, awsmiddleware.AddUserAgentKey(p.UserAgent))
		}
	})
	d := &Driver{client: client, presign: s3.NewPresignClient(client), p: p}
	d.Tree = objstore.Tree{
		Service: &service{d: d}, DriverName: DriverName, Root: p.RootDirectory,
		PageSize: p.PageSize, WalkBudget: p.WalkBudget, MaxDeleteBatch: maxDeleteBatch,
	}
	return d, nil
}

func defaults(p *Parameters) error {
	if p.Bucket == "" {
		return errors.New("bucket: required")
	}
	if p.Region == "" {
		return errors.New("region: required")
	}
	if !p.V4Auth {
		return errors.New("v4auth: false (signature version 2) is not supported: the AWS SDK for Go v2 signs with version 4 only; remove the key or set it to true")
	}
	if p.AccessKey != "" && p.SecretKey == "" || p.AccessKey == "" && p.SecretKey != "" {
		return errors.New("accesskey and secretkey: set both, or neither to use the default AWS credential chain")
	}
	if p.ChunkSize == 0 {
		p.ChunkSize = DefaultChunkSize
	}
	if p.ChunkSize < MinChunkSize || p.ChunkSize > MaxChunkSize {
		return fmt.Errorf("chunksize: must be between %d (5 MiB) and %d (5 GiB), got %d", MinChunkSize, int64(MaxChunkSize), p.ChunkSize)
	}
	if p.MultipartCopyChunkSize == 0 {
		p.MultipartCopyChunkSize = DefaultMultipartCopyChunkSize
	}
	if p.MultipartCopyChunkSize < MinChunkSize || p.MultipartCopyChunkSize > MaxChunkSize {
		return fmt.Errorf("multipartcopychunksize: must be between %d (5 MiB) and %d (5 GiB), got %d", MinChunkSize, int64(MaxChunkSize), p.MultipartCopyChunkSize)
	}
	if p.MultipartCopyMaxConcurrency == 0 {
		p.MultipartCopyMaxConcurrency = DefaultMultipartCopyMaxConcurrency
	}
	if p.MultipartCopyMaxConcurrency < 1 {
		return fmt.Errorf("multipartcopymaxconcurrency: must be at least 1, got %d", p.MultipartCopyMaxConcurrency)
	}
	if p.MultipartCopyThresholdSize == 0 {
		p.MultipartCopyThresholdSize = DefaultMultipartCopyThresholdSize
	}
	if p.MultipartCopyThresholdSize < 0 || p.MultipartCopyThresholdSize > maxCopyObjectSize {
		return fmt.Errorf("multipartcopythresholdsize: must be between 0 and %d (5 GiB), got %d", int64(maxCopyObjectSize), p.MultipartCopyThresholdSize)
	}
	if p.StorageClass == "NONE" {
		p.StorageClass = ""
	}
	if c := p.StorageClass; c != "" && !slices.Contains(types.StorageClass("").Values(), types.StorageClass(c)) {
		return fmt.Errorf("storageclass: %q is not one of NONE, %s", c, joinValues(types.StorageClass("").Values()))
	}
	if a := p.ObjectACL; a != "" && !slices.Contains(types.ObjectCannedACL("").Values(), types.ObjectCannedACL(a)) {
		return fmt.Errorf("objectacl: %q is not one of %s", a, joinValues(types.ObjectCannedACL("").Values()))
	}
	if p.KeyID != "" && !p.Encrypt {
		return errors.New("keyid: set only with encrypt: true (the KMS key of server-side encryption)")
	}
	if p.Logger == nil {
		p.Logger = slog.Default()
	}
	return nil
}

func joinValues[T ~string](vs []T) string {
	s := make([]string, len(vs))
	for i, v := range vs {
		s[i] = string(v)
	}
	return strings.Join(s, ", ")
}

// clientLogMode maps loglevel to the SDK's log mode, as Distribution's
// values map to the SDK v1 levels.
func clientLogMode(level string) (aws.ClientLogMode, error) {
	switch strings.ToLower(level) {
	case "", "off":
		return 0, nil
	case "debug":
		return aws.LogRequest | aws.LogResponse, nil
	case "debugwithsigning":
		return aws.LogRequest | aws.LogResponse | aws.LogSigning, nil
	case "debugwithhttpbody":
		return aws.LogRequestWithBody | aws.LogResponseWithBody, nil
	case "debugwithrequestretries":
		return aws.LogRequest | aws.LogResponse | aws.LogRetries, nil
	case "debugwithrequesterrors":
		return aws.LogRequest | aws.LogResponse | aws.LogRetries, nil
	case "debugwitheventstreambody":
		return aws.LogRequest | aws.LogResponse | aws.LogRequestEventMessage | aws.LogResponseEventMessage, nil
	}
	return 0, fmt.Errorf("loglevel: %q is not one of %s", level, strings.Join(LogLevels, ", "))
}

// sdkLogger writes the SDK's log lines to registryd's logger at debug level.
type sdkLogger struct{ log *slog.Logger }

func (l sdkLogger) Logf(c logging.Classification, format string, v ...any) {
	l.log.Debug(fmt.Sprintf(format, v...), "driver", DriverName, "sdk", string(c))
}

func (d *Driver) bucket() *string { return aws.String(d.p.Bucket) }

// Name returns DriverName.
func (d *Driver) Name() string { return DriverName }

// putOptions fills in what every written object carries.
func (d *Driver) putObjectInput(key string, body io.Reader) *s3.PutObjectInput {
	in := &s3.PutObjectInput{Bucket: d.bucket(), Key: aws.String(key), Body: body, ContentType: aws.String("application/octet-stream")}
	in.ServerSideEncryption, in.SSEKMSKeyId = d.sse()
	in.StorageClass = types.StorageClass(d.p.StorageClass)
	in.ACL = types.ObjectCannedACL(d.p.ObjectACL)
	return in
}

func (d *Driver) sse() (types.ServerSideEncryption, *string) {
	switch {
	case !d.p.Encrypt:
		return "", nil
	case d.p.KeyID != "":
		return types.ServerSideEncryptionAwsKms, aws.String(d.p.KeyID)
	default:
		return types.ServerSideEncryptionAes256, nil
	}
}

// GetContent returns the object at path.
func (d *Driver) GetContent(ctx context.Context, path string) ([]byte, error) {
	out, err := d.client.GetObject(ctx, &s3.GetObjectInput{Bucket: d.bucket(), Key: aws.String(d.Key(path))})
	if err != nil {
		return nil, d.pathError(path, err)
	}
	defer out.Body.Close()
	return io.ReadAll(out.Body)
}

// PutContent stores content at path in one PutObject.
func (d *Driver) PutContent(ctx context.Context, path string, content []byte) error {
	_, err := d.client.PutObject(ctx, d.putObjectInput(d.Key(path), bytes.NewReader(content)))
	return err
}

// Reader returns the object at path from offset.
func (d *Driver) Reader(ctx context.Context, path string, offset int64) (io.ReadCloser, error) {
	in := &s3.GetObjectInput{Bucket: d.bucket(), Key: aws.String(d.Key(path))}
	if offset > 0 {
		in.Range = aws.String(fmt.Sprintf("bytes=%d-", offset))
	}
	out, err := d.client.GetObject(ctx, in)
	if err == nil {
		return out.Body, nil
	}
	if httpStatus(err) != http.StatusRequestedRangeNotSatisfiable {
		return nil, d.pathError(path, err)
	}
	// Past the end, or exactly at it: only the size tells which.
	fi, serr := d.Stat(ctx, path)
	if serr != nil {
		return nil, serr
	}
	if offset == fi.Size() && !fi.IsDir() {
		return io.NopCloser(bytes.NewReader(nil)), nil
	}
	return nil, driver.InvalidOffsetError{Path: path, Offset: offset, DriverName: DriverName}
}

// Move copies sourcePath to destPath and deletes the source.
func (d *Driver) Move(ctx context.Context, sourcePath, destPath string) error {
	src, dst := d.Key(sourcePath), d.Key(destPath)
	head, err := d.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: d.bucket(), Key: aws.String(src)})
	if err != nil {
		return d.pathError(sourcePath, err)
	}
	size := aws.ToInt64(head.ContentLength)
	if size <= d.p.MultipartCopyThresholdSize {
		in := &s3.CopyObjectInput{
			Bucket: d.bucket(), Key: aws.String(dst), CopySource: aws.String(d.copySource(src)),
			ContentType: aws.String("application/octet-stream"), MetadataDirective: types.MetadataDirectiveReplace,
			StorageClass: types.StorageClass(d.p.StorageClass), ACL: types.ObjectCannedACL(d.p.ObjectACL),
		}
		in.ServerSideEncryption, in.SSEKMSKeyId = d.sse()
		if _, err := d.client.CopyObject(ctx, in); err != nil {
			return d.pathError(sourcePath, err)
		}
	} else if err := d.multipartCopy(ctx, src, dst, size); err != nil {
		return err
	}
	return d.DeleteKeys(ctx, []string{src})
}

// copySource is the x-amz-copy-source of key: bucket/key, URL-escaped.
func (d *Driver) copySource(key string) string {
	return d.p.Bucket + "/" + escapeKey(key)
}

// escapeKey URL-encodes each segment of key, as x-amz-copy-source wants.
func escapeKey(key string) string {
	segs := strings.Split(key, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	return strings.Join(segs, "/")
}

// multipartCopy copies src to dst in parts of MultipartCopyChunkSize,
// MultipartCopyMaxConcurrency at a time.
func (d *Driver) multipartCopy(ctx context.Context, src, dst string, size int64) error {
	mpu, err := d.createMultipartUpload(ctx, dst)
	if err != nil {
		return err
	}
	chunk := d.p.MultipartCopyChunkSize
	n := int((size + chunk - 1) / chunk)
	parts := make([]types.CompletedPart, n)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	sem := make(chan struct{}, d.p.MultipartCopyMaxConcurrency)
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
	)
	for i := range n {
		start := int64(i) * chunk
		end := min(start+chunk, size) - 1
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			part, err := d.uploadPartCopy(ctx, dst, mpu, int32(i+1), src, start, end)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if firstErr == nil {
					firstErr = err
					cancel()
				}
				return
			}
			parts[i] = part
		})
	}
	wg.Wait()
	if firstErr != nil {
		d.abort(dst, mpu)
		return firstErr
	}
	return d.completeMultipartUpload(ctx, dst, mpu, parts)
}

func (d *Driver) createMultipartUpload(ctx context.Context, key string) (string, error) {
	in := &s3.CreateMultipartUploadInput{
		Bucket: d.bucket(), Key: aws.String(key), ContentType: aws.String("application/octet-stream"),
		StorageClass: types.StorageClass(d.p.StorageClass), ACL: types.ObjectCannedACL(d.p.ObjectACL),
	}
	in.ServerSideEncryption, in.SSEKMSKeyId = d.sse()
	out, err := d.client.CreateMultipartUpload(ctx, in)
	if err != nil {
		return "", err
	}
	return aws.ToString(out.UploadId), nil
}

func (d *Driver) uploadPartCopy(ctx context.Context, key, uploadID string, number int32, src string, start, end int64) (types.CompletedPart, error) {
	out, err := d.client.UploadPartCopy(ctx, &s3.UploadPartCopyInput{
		Bucket: d.bucket(), Key: aws.String(key), UploadId: aws.String(uploadID), PartNumber: aws.Int32(number),
		CopySource: aws.String(d.copySource(src)), CopySourceRange: aws.String(fmt.Sprintf("bytes=%d-%d", start, end)),
	})
	if err != nil {
		return types.CompletedPart{}, err
	}
	return types.CompletedPart{ETag: out.CopyPartResult.ETag, PartNumber: aws.Int32(number)}, nil
}

func (d *Driver) completeMultipartUpload(ctx context.Context, key, uploadID string, parts []types.CompletedPart) error {
	_, err := d.client.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{
		Bucket: d.bucket(), Key: aws.String(key), UploadId: aws.String(uploadID),
		MultipartUpload: &types.CompletedMultipartUpload{Parts: parts},
	})
	if err != nil {
		d.abort(key, uploadID)
	}
	return err
}

// abort abandons a multipart upload, best effort, with its own deadline:
// it runs after the request's context may have ended.
func (d *Driver) abort(key, uploadID string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, _ = d.client.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: d.bucket(), Key: aws.String(key), UploadId: aws.String(uploadID)})
}

// RedirectURL presigns a GET or HEAD of path; other methods get "".
func (d *Driver) RedirectURL(ctx context.Context, method string, path string) (string, error) {
	expiry := func(o *s3.PresignOptions) { o.Expires = redirectExpiry }
	var (
		req *v4.PresignedHTTPRequest
		err error
	)
	switch method {
	case http.MethodGet:
		req, err = d.presign.PresignGetObject(ctx, &s3.GetObjectInput{Bucket: d.bucket(), Key: aws.String(d.Key(path))}, expiry)
	case http.MethodHead:
		req, err = d.presign.PresignHeadObject(ctx, &s3.HeadObjectInput{Bucket: d.bucket(), Key: aws.String(d.Key(path))}, expiry)
	default:
		return "", nil
	}
	if err != nil {
		return "", err
	}
	return req.URL, nil
}

// pathError turns a missing object into PathNotFoundError.
func (d *Driver) pathError(path string, err error) error {
	if isNotFound(err) {
		return d.NotFound(path)
	}
	return err
}

func httpStatus(err error) int {
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		return re.HTTPStatusCode()
	}
	var rs *smithyhttp.ResponseError
	if errors.As(err, &rs) {
		return rs.HTTPStatusCode()
	}
	return 0
}

func isNotFound(err error) bool {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		switch ae.ErrorCode() {
		case "NoSuchKey", "NotFound":
			return true
		}
	}
	return httpStatus(err) == http.StatusNotFound
}
