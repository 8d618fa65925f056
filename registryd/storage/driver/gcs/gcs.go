// Package gcs is the storage driver for Google Cloud Storage (storage.gcs
// in config.yml), on cloud.google.com/go/storage. Its object names are
// those of Distribution's gcs driver (see package objstore), so a bucket
// written by one is served by the other.
//
// Decisions:
//
//   - A FileWriter streams what it is given to the service in chunks of
//     chunksize (a resumable upload) and publishes the object when it is
//     closed or committed, so what an upload received is an ordinary
//     object that any replica can stat, read and continue.
//   - A Writer opened with append on an object that holds bytes writes the
//     new bytes to a transient object beside it (the path's key, "~seg-"
//     and a random suffix, which no driver path can name) and composes the
//     two into the path on Close or Commit, pinned to the generation it
//     continued; the transient object is then deleted. Continuing an upload
//     sends only the new bytes.
//   - Credentials: keyfile (a service account key file), credentials (the
//     same key inline in config.yml), or neither: Application Default
//     Credentials (workload identity, the metadata server, the
//     environment). STORAGE_EMULATOR_HOST points the client at an emulator,
//     as the Google client library defines it.
//   - RedirectURL signs a V4 URL for GET and HEAD valid for 20 minutes with
//     the service account's private key; without one the client library
//     signs through the IAM signBlob API. When signing is impossible the
//     driver says so once in the log and blobs are served by registryd.
//   - Move is a server-side rewrite, then a delete of the source.
package gcs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"cloud.google.com/go/storage"
	"google.golang.org/api/googleapi"
	"google.golang.org/api/option"

	"github.com/berth-dev/berth/registryd/storage/driver"
	"github.com/berth-dev/berth/registryd/storage/driver/objstore"
)

// DriverName is the name of this driver in configuration.
const DriverName = "gcs"

const (
	// ChunkMultiple is what chunksize must be a multiple of.
	ChunkMultiple = 256 << 10
	// DefaultChunkSize is the upload chunk size when chunksize is unset.
	DefaultChunkSize = 20 * ChunkMultiple
	// redirectExpiry is how long a signed URL is valid.
	redirectExpiry = 20 * time.Minute
	// deleteWorkers bounds the deletes in flight.
	deleteWorkers = 16
	// defaultPageSize is the listing page size when PageSize is 0.
	defaultPageSize = 1000
)

// Parameters configure the driver (storage.gcs in config.yml).
type Parameters struct {
	Bucket string
	// KeyFile is the path of a service account key (JSON).
	KeyFile string
	// Credentials is a service account key (JSON), from the inline
	// credentials section.
	Credentials   []byte
	RootDirectory string
	// ChunkSize of uploads, a positive multiple of ChunkMultiple (0:
	// DefaultChunkSize).
	ChunkSize int
	// Logger receives the line saying URLs cannot be signed.
	Logger *slog.Logger

	// PageSize is the most objects asked for per listing page (0: 1,000).
	// Tests make it small.
	PageSize int
	// WalkBudget overrides objstore.Tree.WalkBudget (tests).
	WalkBudget int
}

// Driver is the gcs storage driver.
type Driver struct {
	objstore.Tree
	p      Parameters
	client *storage.Client
	bucket *storage.BucketHandle
	// signer is the service account that signs URLs; empty: let the
	// client library find one.
	accessID   string
	privateKey []byte
	insecure   bool // an http emulator: signed URLs are http
	unsigned   sync.Once
}

// serviceAccount is the part of a service account key the driver reads.
type serviceAccount struct {
	Type        string `json:"type"`
	ClientEmail string `json:"client_email"`
	PrivateKey  string `json:"private_key"`
}

// New returns a gcs driver for p. It makes no request.
func New(ctx context.Context, p Parameters) (driver.StorageDriver, error) {
	d, err := newDriver(ctx, p)
	if err != nil {
		return nil, err
	}
	return driver.Validating(d), nil
}

func newDriver(ctx context.Context, p Parameters) (*Driver, error) {
	if p.Bucket == "" {
		return nil, errors.New("bucket: required")
	}
	if p.ChunkSize == 0 {
		p.ChunkSize = DefaultChunkSize
	}
	if p.ChunkSize < 0 || p.ChunkSize%ChunkMultiple != 0 {
		return nil, fmt.Errorf("chunksize: must be a positive multiple of %d, got %d", ChunkMultiple, p.ChunkSize)
	}
	if p.KeyFile != "" && len(p.Credentials) > 0 {
		return nil, errors.New("keyfile and credentials: set one, not both")
	}
	if p.Logger == nil {
		p.Logger = slog.Default()
	}
	key := p.Credentials
	if p.KeyFile != "" {
		b, err := os.ReadFile(p.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("keyfile: %w", err)
		}
		key = b
	}
	d := &Driver{p: p}
	var opts []option.ClientOption
	if len(key) > 0 {
		var sa serviceAccount
		if err := json.Unmarshal(key, &sa); err != nil {
			return nil, fmt.Errorf("credentials: not a service account key: %w", err)
		}
		d.accessID, d.privateKey = sa.ClientEmail, []byte(sa.PrivateKey)
		opts = append(opts, option.WithCredentialsJSON(key)) //nolint:staticcheck // a key the user configured
	}
	if host := os.Getenv("STORAGE_EMULATOR_HOST"); host != "" {
		// The client talks to the emulator without authentication and
		// refuses credentials beside that; the key still signs URLs.
		opts = nil
		d.insecure = !strings.HasPrefix(host, "https://")
	}
	client, err := storage.NewClient(ctx, opts...)
	if err != nil {
		return nil, err
	}
	d.client, d.bucket = client, client.Bucket(p.Bucket)
	d.Tree = objstore.Tree{
		Service: &service{d: d}, DriverName: DriverName, Root: p.RootDirectory,
		PageSize: p.PageSize, WalkBudget: p.WalkBudget, MaxDeleteBatch: objstore.DefaultMaxDeleteBatch,
	}
	return d, nil
}

// Name returns DriverName.
func (d *Driver) Name() string { return DriverName }

func (d *Driver) object(path string) *storage.ObjectHandle { return d.bucket.Object(d.Key(path)) }

// GetContent returns the object at path.
func (d *Driver) GetContent(ctx context.Context, path string) ([]byte, error) {
	r, err := d.object(path).NewReader(ctx)
	if err != nil {
		return nil, d.pathError(path, err)
	}
	defer r.Close()
	return io.ReadAll(r)
}

// PutContent stores content at path in one upload.
func (d *Driver) PutContent(ctx context.Context, path string, content []byte) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	w := d.newWriter(ctx, d.Key(path))
	w.ChunkSize = 0 // one request, content is in memory
	if _, err := w.Write(content); err != nil {
		return err
	}
	return w.Close()
}

func (d *Driver) newWriter(ctx context.Context, key string) *storage.Writer {
	w := d.bucket.Object(key).NewWriter(ctx)
	w.ChunkSize = d.p.ChunkSize
	w.ContentType = "application/octet-stream"
	return w
}

// Reader returns the object at path from offset.
func (d *Driver) Reader(ctx context.Context, path string, offset int64) (io.ReadCloser, error) {
	r, err := d.object(path).NewRangeReader(ctx, offset, -1)
	if err == nil {
		return r, nil
	}
	if errors.Is(err, storage.ErrObjectNotExist) {
		return nil, d.NotFound(path)
	}
	fi, serr := d.Stat(ctx, path)
	if serr != nil {
		return nil, serr
	}
	switch {
	case fi.IsDir():
		return nil, d.NotFound(path)
	case offset == fi.Size():
		return io.NopCloser(strings.NewReader("")), nil
	case offset > fi.Size():
		return nil, driver.InvalidOffsetError{Path: path, Offset: offset, DriverName: DriverName}
	}
	return nil, err
}

// Move rewrites sourcePath to destPath and deletes the source.
func (d *Driver) Move(ctx context.Context, sourcePath, destPath string) error {
	src := d.object(sourcePath)
	c := d.object(destPath).CopierFrom(src)
	c.ContentType = "application/octet-stream"
	if _, err := c.Run(ctx); err != nil {
		return d.pathError(sourcePath, err)
	}
	if err := src.Delete(ctx); err != nil && !errors.Is(err, storage.ErrObjectNotExist) {
		return err
	}
	return nil
}

// RedirectURL signs a GET or HEAD URL of path; other methods get "".
func (d *Driver) RedirectURL(ctx context.Context, method string, path string) (string, error) {
	if method != http.MethodGet && method != http.MethodHead {
		return "", nil
	}
	u, err := d.bucket.SignedURL(d.Key(path), &storage.SignedURLOptions{
		GoogleAccessID: d.accessID,
		PrivateKey:     d.privateKey,
		Method:         method,
		Expires:        time.Now().Add(redirectExpiry),
		Scheme:         storage.SigningSchemeV4,
		Insecure:       d.insecure,
	})
	if err != nil {
		d.unsigned.Do(func() {
			d.p.Logger.Warn("Cannot sign GCS URLs; registryd serves blobs itself", "driver", DriverName, "error", err)
		})
		return "", nil //nolint:nilerr // no redirect: registryd serves the blob itself (logged once above)
	}
	return u, nil
}

func (d *Driver) pathError(path string, err error) error {
	if isNotFound(err) {
		return d.NotFound(path)
	}
	return err
}

func isNotFound(err error) bool {
	if errors.Is(err, storage.ErrObjectNotExist) {
		return true
	}
	var ge *googleapi.Error
	return errors.As(err, &ge) && ge.Code == http.StatusNotFound
}
