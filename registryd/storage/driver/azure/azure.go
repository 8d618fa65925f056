// Package azure is the storage driver for Azure Blob Storage (storage.azure
// in config.yml), on the Azure SDK's azblob package. Its blob names are
// those of Distribution's azure driver (see package objstore), so a
// container written by one is served by the other.
//
// Decisions:
//
//   - Content is stored in block blobs. A FileWriter stages blocks as bytes
//     arrive and commits the block list when it is closed or committed, so
//     what an upload received is an ordinary blob that any replica can stat,
//     read and continue. A Writer opened with append starts from the blob's
//     committed block list: continuing an upload sends only the new bytes.
//     A blob without a block list (written in one Put Blob, or an append
//     blob of Distribution's) is read back into blocks once, when it is
//     continued.
//   - Credentials, as the reference configures them: accountkey (with no
//     credentials section, or credentials.type shared_key), client_secret
//     (clientid, tenantid, secret of an Entra ID application) or
//     default_credentials (the Azure SDK's default chain: environment,
//     workload identity, managed identity). accountkey set beside a
//     client_secret or default_credentials type is refused: it would be
//     ignored.
//   - The blob service is serviceurl when set (an emulator, a private
//     endpoint), else https://<accountname>.blob.<realm>, realm defaulting
//     to core.windows.net.
//   - The container is created when it does not exist, when the driver
//     starts, and the log says so.
//   - Move is Copy Blob from the source's URL, then a delete of the
//     source. A copy the service reports pending is polled up to
//     copy_status_poll_max_retry times (default 5), waiting
//     copy_status_poll_delay (default 100ms) times the attempt number in
//     between; with -1 a pending copy is not polled: it is aborted and Move
//     fails. A failed, aborted or timed-out copy fails Move and leaves the
//     source in place.
//   - RedirectURL signs a read-only SAS URL valid for 20 minutes: with the
//     account key, or with a user delegation key for Entra ID credentials.
//     The SAS allows plain http when the service URL is http (an emulator);
//     it is https-only otherwise.
//   - Deletes go through blob batches of up to 256 blobs.
package azure

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/bloberror"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blockblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/sas"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/service"

	"github.com/berth-dev/berth/registryd/storage/driver"
	"github.com/berth-dev/berth/registryd/storage/driver/objstore"
)

// DriverName is the name of this driver in configuration.
const DriverName = "azure"

// Credential types (credentials.type).
const (
	CredentialsSharedKey          = "shared_key"
	CredentialsClientSecret       = "client_secret"
	CredentialsDefaultCredentials = "default_credentials"
)

// Defaults, as in the reference.
const (
	DefaultRealm                  = "core.windows.net"
	DefaultCopyStatusPollMaxRetry = 5
	DefaultCopyStatusPollDelay    = 100 * time.Millisecond
	// blockSize is the size of the blocks a writer stages.
	blockSize = 8 << 20
	// maxBatch is the most subrequests one blob batch takes.
	maxBatch = 256
	// redirectExpiry is how long a SAS URL is valid.
	redirectExpiry = 20 * time.Minute
)

// Parameters configure the driver (storage.azure in config.yml).
type Parameters struct {
	AccountName string
	AccountKey  string
	Container   string
	// Realm is the storage DNS suffix; "" means DefaultRealm.
	Realm string
	// ServiceURL overrides the blob service URL built from the account
	// name and realm.
	ServiceURL    string
	RootDirectory string
	// CredentialsType is one of the Credentials* constants; "" means
	// shared_key.
	CredentialsType                  string
	ClientID, TenantID, ClientSecret string
	// CopyStatusPollMaxRetry: nil means DefaultCopyStatusPollMaxRetry.
	CopyStatusPollMaxRetry *int
	// CopyStatusPollDelay: 0 means DefaultCopyStatusPollDelay.
	CopyStatusPollDelay time.Duration
	// Logger receives the container-creation line.
	Logger *slog.Logger

	// PageSize is the most blobs asked for per listing page (0: the
	// service's default of 5,000). Tests make it small.
	PageSize int
	// WalkBudget overrides objstore.Tree.WalkBudget (tests).
	WalkBudget int
}

// Driver is the azure storage driver.
type Driver struct {
	objstore.Tree
	p         Parameters
	service   *service.Client
	container *container.Client
	sharedKey *service.SharedKeyCredential
	// httpAllowed: the service URL is http, so SAS URLs may be too.
	httpAllowed bool

	udcMu sync.Mutex
	udc   *service.UserDelegationCredential
	udcTo time.Time
}

// New returns an azure driver for p, creating the container when it does
// not exist.
func New(ctx context.Context, p Parameters) (driver.StorageDriver, error) {
	d, err := newDriver(p)
	if err != nil {
		return nil, err
	}
	if err := d.ensureContainer(ctx); err != nil {
		return nil, err
	}
	return driver.Validating(d), nil
}

func newDriver(p Parameters) (*Driver, error) {
	if p.AccountName == "" {
		return nil, errors.New("accountname: required")
	}
	if p.Container == "" {
		return nil, errors.New("container: required")
	}
	if p.Realm == "" {
		p.Realm = DefaultRealm
	}
	if p.CopyStatusPollMaxRetry == nil {
		n := DefaultCopyStatusPollMaxRetry
		p.CopyStatusPollMaxRetry = &n
	}
	if *p.CopyStatusPollMaxRetry < -1 {
		return nil, fmt.Errorf("copy_status_poll_max_retry: must be -1 (no polling) or more, got %d", *p.CopyStatusPollMaxRetry)
	}
	if p.CopyStatusPollDelay == 0 {
		p.CopyStatusPollDelay = DefaultCopyStatusPollDelay
	}
	if p.Logger == nil {
		p.Logger = slog.Default()
	}
	serviceURL := p.ServiceURL
	if serviceURL == "" {
		serviceURL = fmt.Sprintf("https://%s.blob.%s", p.AccountName, p.Realm)
	}
	serviceURL = strings.TrimRight(serviceURL, "/") + "/"
	d := &Driver{p: p, httpAllowed: strings.HasPrefix(strings.ToLower(serviceURL), "http://")}
	var err error
	switch p.CredentialsType {
	case "", CredentialsSharedKey:
		if p.AccountKey == "" {
			return nil, errors.New("accountkey: required with shared_key credentials")
		}
		if d.sharedKey, err = service.NewSharedKeyCredential(p.AccountName, p.AccountKey); err != nil {
			return nil, fmt.Errorf("accountkey: %w", err)
		}
		d.service, err = service.NewClientWithSharedKeyCredential(serviceURL, d.sharedKey, nil)
	case CredentialsClientSecret, CredentialsDefaultCredentials:
		if p.AccountKey != "" {
			return nil, fmt.Errorf("accountkey: set only with credentials.type %s; with %s it would be ignored", CredentialsSharedKey, p.CredentialsType)
		}
		var cred azcore.TokenCredential
		if p.CredentialsType == CredentialsClientSecret {
			if p.ClientID == "" || p.TenantID == "" || p.ClientSecret == "" {
				return nil, errors.New("credentials: client_secret needs clientid, tenantid and secret")
			}
			cred, err = azidentity.NewClientSecretCredential(p.TenantID, p.ClientID, p.ClientSecret, nil)
		} else {
			cred, err = azidentity.NewDefaultAzureCredential(nil)
		}
		if err != nil {
			return nil, fmt.Errorf("credentials: %w", err)
		}
		d.service, err = service.NewClient(serviceURL, cred, nil)
	default:
		return nil, fmt.Errorf("credentials.type: %q is not one of %s, %s, %s", p.CredentialsType, CredentialsSharedKey, CredentialsClientSecret, CredentialsDefaultCredentials)
	}
	if err != nil {
		return nil, err
	}
	d.container = d.service.NewContainerClient(p.Container)
	d.Tree = objstore.Tree{
		Service: &blobService{d: d}, DriverName: DriverName, Root: p.RootDirectory,
		PageSize: p.PageSize, WalkBudget: p.WalkBudget, MaxDeleteBatch: maxBatch,
	}
	return d, nil
}

// ensureContainer creates the container unless it exists.
func (d *Driver) ensureContainer(ctx context.Context) error {
	_, err := d.container.GetProperties(ctx, nil)
	if err == nil {
		return nil
	}
	if !bloberror.HasCode(err, bloberror.ContainerNotFound) && !isStatus(err, http.StatusNotFound) {
		return fmt.Errorf("container %s: %w", d.p.Container, err)
	}
	_, err = d.container.Create(ctx, nil)
	if err != nil && !bloberror.HasCode(err, bloberror.ContainerAlreadyExists) {
		return fmt.Errorf("creating container %s: %w", d.p.Container, err)
	}
	if err == nil {
		d.p.Logger.Info("Created Azure container", "driver", DriverName, "account", d.p.AccountName, "container", d.p.Container)
	}
	return nil
}

// Name returns DriverName.
func (d *Driver) Name() string { return DriverName }

func (d *Driver) blob(path string) *blockblob.Client {
	return d.container.NewBlockBlobClient(d.Key(path))
}

var octetStream = "application/octet-stream"

// GetContent returns the blob at path.
func (d *Driver) GetContent(ctx context.Context, path string) ([]byte, error) {
	resp, err := d.blob(path).DownloadStream(ctx, nil)
	if err != nil {
		return nil, d.pathError(path, err)
	}
	defer resp.Body.Close()
	return io.ReadAll(resp.Body)
}

// PutContent stores content at path in one Put Blob.
func (d *Driver) PutContent(ctx context.Context, path string, content []byte) error {
	_, err := d.blob(path).Upload(ctx, nopSeekCloser{bytes.NewReader(content)}, &blockblob.UploadOptions{
		HTTPHeaders: &blob.HTTPHeaders{BlobContentType: &octetStream},
	})
	return err
}

// Reader returns the blob at path from offset.
func (d *Driver) Reader(ctx context.Context, path string, offset int64) (io.ReadCloser, error) {
	resp, err := d.blob(path).DownloadStream(ctx, &blob.DownloadStreamOptions{Range: blob.HTTPRange{Offset: offset}})
	if err == nil {
		return resp.Body, nil
	}
	if !isStatus(err, http.StatusRequestedRangeNotSatisfiable) && !bloberror.HasCode(err, bloberror.InvalidRange) {
		return nil, d.pathError(path, err)
	}
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
	src, dst := d.blob(sourcePath), d.blob(destPath)
	resp, err := dst.StartCopyFromURL(ctx, src.URL(), nil)
	if err != nil {
		return d.pathError(sourcePath, err)
	}
	status, copyID := derefStatus(resp.CopyStatus), deref(resp.CopyID)
	for attempt := 1; status == blob.CopyStatusTypePending; attempt++ {
		if attempt > *d.p.CopyStatusPollMaxRetry {
			d.abortCopy(dst, copyID)
			return fmt.Errorf("%s: copy of %s to %s still pending after %d polls; aborted", DriverName, sourcePath, destPath, *d.p.CopyStatusPollMaxRetry)
		}
		select {
		case <-time.After(d.p.CopyStatusPollDelay * time.Duration(attempt)):
		case <-ctx.Done():
			d.abortCopy(dst, copyID)
			return ctx.Err()
		}
		props, err := dst.GetProperties(ctx, nil)
		if err != nil {
			return err
		}
		status = derefStatus(props.CopyStatus)
	}
	if status != blob.CopyStatusTypeSuccess {
		return fmt.Errorf("%s: copy of %s to %s ended %s", DriverName, sourcePath, destPath, status)
	}
	if _, err := src.Delete(ctx, nil); err != nil && !isNotFound(err) {
		return err
	}
	return nil
}

func (d *Driver) abortCopy(dst *blockblob.Client, copyID string) {
	if copyID == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, _ = dst.AbortCopyFromURL(ctx, copyID, nil)
}

// RedirectURL signs a read-only SAS URL of path for GET and HEAD; other
// methods get "".
func (d *Driver) RedirectURL(ctx context.Context, method string, path string) (string, error) {
	if method != http.MethodGet && method != http.MethodHead {
		return "", nil
	}
	now := time.Now().UTC()
	values := sas.BlobSignatureValues{
		Protocol:      sas.ProtocolHTTPS,
		StartTime:     now.Add(-5 * time.Minute), // tolerate clock skew
		ExpiryTime:    now.Add(redirectExpiry),
		Permissions:   (&sas.BlobPermissions{Read: true}).String(),
		ContainerName: d.p.Container,
		BlobName:      d.Key(path),
	}
	if d.httpAllowed {
		values.Protocol = sas.ProtocolHTTPSandHTTP
	}
	var (
		qp  sas.QueryParameters
		err error
	)
	if d.sharedKey != nil {
		qp, err = values.SignWithSharedKey(d.sharedKey)
	} else {
		var udc *service.UserDelegationCredential
		if udc, err = d.userDelegationCredential(ctx, now); err == nil {
			qp, err = values.SignWithUserDelegation(udc)
		}
	}
	if err != nil {
		return "", fmt.Errorf("%s: signing a URL for %s: %w", DriverName, path, err)
	}
	return d.blob(path).URL() + "?" + qp.Encode(), nil
}

// userDelegationCredential returns a user delegation key valid for at
// least the life of a redirect, fetching a new one (valid one day) when
// the cached one expires within the hour.
func (d *Driver) userDelegationCredential(ctx context.Context, now time.Time) (*service.UserDelegationCredential, error) {
	d.udcMu.Lock()
	defer d.udcMu.Unlock()
	if d.udc != nil && now.Add(time.Hour).Before(d.udcTo) {
		return d.udc, nil
	}
	start, expiry := now.Add(-5*time.Minute), now.Add(24*time.Hour)
	st, ex := start.Format(sas.TimeFormat), expiry.Format(sas.TimeFormat)
	udc, err := d.service.GetUserDelegationCredential(ctx, service.KeyInfo{Start: &st, Expiry: &ex}, nil)
	if err != nil {
		return nil, err
	}
	d.udc, d.udcTo = udc, expiry
	return udc, nil
}

func (d *Driver) pathError(path string, err error) error {
	if isNotFound(err) {
		return d.NotFound(path)
	}
	return err
}

func isNotFound(err error) bool {
	return bloberror.HasCode(err, bloberror.BlobNotFound, bloberror.ContainerNotFound) || isStatus(err, http.StatusNotFound)
}

func isStatus(err error, status int) bool {
	var re *azcore.ResponseError
	return errors.As(err, &re) && re.StatusCode == status
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func derefStatus(s *blob.CopyStatusType) blob.CopyStatusType {
	if s == nil {
		return blob.CopyStatusTypeSuccess
	}
	return *s
}

type nopSeekCloser struct{ io.ReadSeeker }

func (nopSeekCloser) Close() error { return nil }
