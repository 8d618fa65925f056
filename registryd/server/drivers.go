package server

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"time"

	"github.com/berth-dev/berth/registryd/configuration"
	"github.com/berth-dev/berth/registryd/storage/driver"
	"github.com/berth-dev/berth/registryd/storage/driver/azure"
	"github.com/berth-dev/berth/registryd/storage/driver/filesystem"
	"github.com/berth-dev/berth/registryd/storage/driver/gcs"
	"github.com/berth-dev/berth/registryd/storage/driver/inmemory"
	"github.com/berth-dev/berth/registryd/storage/driver/s3"
)

// driverFactory builds a storage driver from its configuration section.
type driverFactory func(ctx context.Context, s *configuration.Storage, log *slog.Logger) (driver.StorageDriver, error)

// storageDrivers are the drivers this build of registryd has, by the name of
// their configuration section. A configuration that names any other is
// refused at start by configuration.CheckSupported.
var storageDrivers = map[string]driverFactory{
	configuration.DriverFilesystem: func(_ context.Context, s *configuration.Storage, _ *slog.Logger) (driver.StorageDriver, error) {
		root := s.Filesystem.RootDirectory
		if root == "" {
			root = configuration.DefaultRootDirectory
		}
		return filesystem.New(filesystem.Parameters{RootDirectory: root, MaxThreads: s.Filesystem.MaxThreads})
	},
	configuration.DriverInMemory: func(context.Context, *configuration.Storage, *slog.Logger) (driver.StorageDriver, error) {
		return inmemory.New(), nil
	},
	configuration.DriverS3:    newS3,
	configuration.DriverAzure: newAzure,
	configuration.DriverGCS:   newGCS,
}

func newS3(ctx context.Context, s *configuration.Storage, log *slog.Logger) (driver.StorageDriver, error) {
	c := s.S3
	return s3.New(ctx, s3.Parameters{
		AccessKey: c.AccessKey, SecretKey: c.SecretKey, SessionToken: c.SessionToken,
		Region: c.Region, RegionEndpoint: c.RegionEndpoint, ForcePathStyle: c.ForcePathStyle,
		Accelerate: c.Accelerate, UseDualStack: c.UseDualStack, Bucket: c.Bucket,
		Encrypt: c.Encrypt, KeyID: c.KeyID,
		Secure: c.Secure == nil || *c.Secure, SkipVerify: c.SkipVerify, V4Auth: c.V4Auth == nil || *c.V4Auth,
		ChunkSize:                   c.ChunkSize,
		MultipartCopyChunkSize:      c.MultipartCopyChunkSize,
		MultipartCopyMaxConcurrency: c.MultipartCopyMaxConcurrency,
		MultipartCopyThresholdSize:  c.MultipartCopyThresholdSize,
		RootDirectory:               c.RootDirectory, StorageClass: c.StorageClass, ObjectACL: c.ObjectACL,
		UserAgent: c.UserAgent, LogLevel: c.LogLevel, Logger: log,
	})
}

func newAzure(ctx context.Context, s *configuration.Storage, log *slog.Logger) (driver.StorageDriver, error) {
	c := s.Azure
	p := azure.Parameters{
		AccountName: c.AccountName, AccountKey: c.AccountKey, Container: c.Container,
		Realm: c.Realm, ServiceURL: c.ServiceURL, RootDirectory: c.RootDirectory,
		CopyStatusPollMaxRetry: c.CopyStatusPollMaxRetry, CopyStatusPollDelay: c.CopyStatusPollDelay,
		Logger: log,
	}
	if cr := c.Credentials; cr != nil {
		p.CredentialsType, p.ClientID, p.TenantID, p.ClientSecret = cr.Type, cr.ClientID, cr.TenantID, cr.Secret
	}
	// Creating the container at start must not hang a start-up forever.
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	return azure.New(ctx, p)
}

func newGCS(ctx context.Context, s *configuration.Storage, log *slog.Logger) (driver.StorageDriver, error) {
	c := s.GCS
	p := gcs.Parameters{Bucket: c.Bucket, KeyFile: c.KeyFile, RootDirectory: c.RootDirectory, ChunkSize: int(c.ChunkSize), Logger: log}
	if cr := c.Credentials; cr != nil {
		// The inline credentials section is a service account key file's
		// fields, which the client library reads as that file.
		key := map[string]string{}
		for k, v := range map[string]string{
			"type": cr.Type, "project_id": cr.ProjectID, "private_key_id": cr.PrivateKeyID,
			"private_key": cr.PrivateKey, "client_email": cr.ClientEmail, "client_id": cr.ClientID,
			"auth_uri": cr.AuthURI, "token_uri": cr.TokenURI,
			"auth_provider_x509_cert_url": cr.AuthProviderX509CertURL, "client_x509_cert_url": cr.ClientX509CertURL,
		} {
			if v != "" {
				key[k] = v
			}
		}
		b, err := json.Marshal(key)
		if err != nil {
			return nil, err
		}
		p.Credentials = b
	}
	return gcs.New(ctx, p)
}

// StorageDriverNames lists the storage drivers this build has.
func StorageDriverNames() []string { return slices.Sorted(maps.Keys(storageDrivers)) }

// DriverOption tunes NewStorageDriver.
type DriverOption func(*driverOptions)

type driverOptions struct {
	log *slog.Logger
}

// WithDriverLogger sends the driver's own log lines (an Azure container
// created, an S3 SDK debug log) to log instead of slog.Default().
func WithDriverLogger(log *slog.Logger) DriverOption {
	return func(o *driverOptions) { o.log = log }
}

// NewStorageDriver builds the storage driver the configuration names. The
// garbage collector uses it too, so `serve` and `garbage-collect` always see
// the same storage.
func NewStorageDriver(s *configuration.Storage, opts ...DriverOption) (driver.StorageDriver, error) {
	o := driverOptions{log: slog.Default()}
	for _, opt := range opts {
		opt(&o)
	}
	name := s.Driver()
	factory, ok := storageDrivers[name]
	if !ok {
		return nil, fmt.Errorf("storage.%s: not supported yet", name)
	}
	d, err := factory(context.Background(), s, o.log)
	if err != nil {
		return nil, fmt.Errorf("storage.%s: %w", name, err)
	}
	return d, nil
}
