package server

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"path"

	"github.com/berth-dev/berth/registryd/configuration"
	"github.com/berth-dev/berth/registryd/storage/driver"
)

// Redirects of blob downloads, as Distribution decides them:
//
//   - storage.redirect.disable: true — registryd serves every blob's bytes
//     itself, whatever the driver or middleware could redirect to;
//   - a middleware.storage entry named redirect — every GET and HEAD of a
//     blob answers 307 to options.baseurl joined with the blob's storage
//     path (/docker/registry/v2/blobs/...), for any driver: a CDN or proxy
//     in front of the bucket serves it;
//   - otherwise the driver's own redirect: a presigned S3 URL, an Azure SAS
//     URL, a signed GCS URL; filesystem and inmemory serve the bytes.

// redirectMiddleware is the name of the storage middleware entry.
const redirectMiddleware = "redirect"

// withRedirects applies the configuration's redirect policy to d.
func withRedirects(cfg *configuration.Configuration, d driver.StorageDriver) (driver.StorageDriver, error) {
	if cfg.Storage.Redirect.Disable {
		return noRedirects{d}, nil
	}
	for i, e := range cfg.Middleware.Storage {
		if e.Disabled || e.Name != redirectMiddleware {
			continue
		}
		key := fmt.Sprintf("middleware.storage[%d].options.baseurl", i)
		raw, ok := e.Options["baseurl"]
		if !ok {
			return nil, fmt.Errorf("%s: required key is missing", key)
		}
		s, ok := raw.(string)
		if !ok {
			return nil, fmt.Errorf("%s: want a URL string, got %v", key, raw)
		}
		u, err := url.Parse(s)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("%s: %q is not an http or https URL with a host", key, s)
		}
		for k := range e.Options {
			if k != "baseurl" {
				return nil, fmt.Errorf("middleware.storage[%d].options.%s: unknown option of the redirect middleware (it takes baseurl)", i, k)
			}
		}
		return baseURLRedirects{StorageDriver: d, base: u}, nil
	}
	return d, nil
}

// noRedirects never redirects.
type noRedirects struct{ driver.StorageDriver }

func (n noRedirects) Unwrap() driver.StorageDriver { return n.StorageDriver }

// PutContents keeps the wrapped driver's batching (driver.BatchPutter),
// which embedding the interface would hide: without it a manifest PUT on
// the filesystem waits for its fsyncs one after another.
func (n noRedirects) PutContents(ctx context.Context, groups ...[]driver.ContentWrite) error {
	return driver.PutContents(ctx, n.StorageDriver, groups...)
}

func (noRedirects) RedirectURL(context.Context, string, string) (string, error) { return "", nil }

// baseURLRedirects redirects GET and HEAD to base joined with the path.
type baseURLRedirects struct {
	driver.StorageDriver
	base *url.URL
}

func (b baseURLRedirects) Unwrap() driver.StorageDriver { return b.StorageDriver }

// PutContents keeps the wrapped driver's batching, as noRedirects does.
func (b baseURLRedirects) PutContents(ctx context.Context, groups ...[]driver.ContentWrite) error {
	return driver.PutContents(ctx, b.StorageDriver, groups...)
}

func (b baseURLRedirects) RedirectURL(ctx context.Context, method, p string) (string, error) {
	if !driver.ValidPath(p) {
		return "", driver.InvalidPathError{Path: p, DriverName: b.Name()}
	}
	if method != http.MethodGet && method != http.MethodHead {
		return "", nil
	}
	if err := ctx.Err(); err != nil {
		return "", err
	}
	u := *b.base
	u.Path = path.Join("/", u.Path, p)
	u.RawPath = ""
	return u.String(), nil
}
