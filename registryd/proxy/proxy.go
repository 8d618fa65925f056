// Package proxy is registryd's pull-through cache (the proxy section of
// config.yml): a registry that serves what an upstream registry has,
// storing what it fetches, and refuses pushes and deletes.
//
// Cache implements handlers.PullThrough:
//
//   - A tag is resolved upstream (a HEAD, which registries such as Docker
//     Hub do not count against pull limits) on every request, and recorded
//     locally with the manifest it names; when upstream fails or is
//     unreachable, the tag recorded last is served, as in Distribution.
//   - A manifest or blob by digest is served from storage when stored;
//     otherwise it is fetched from upstream, its digest checked, and
//     stored. A blob is streamed to the client while it is stored; when the
//     client goes away the fetch completes (within blobFetchTimeout) so the
//     next pull finds it. A second request for a blob already being fetched
//     streams from upstream without storing it again.
//   - Content stored longer than proxy.ttl (168h by default; 0 means never)
//     is revalidated with upstream when it is next read: still there
//     upstream, its clock restarts; gone upstream (404), the stored copy is
//     dropped and the read answers 404; upstream unreachable, the stored
//     copy is served. The clock is the modification time of the
//     repository's link to the content, which a revalidation rewrites: no
//     state is kept outside Distribution's layout. (Distribution deletes
//     content past its ttl and fetches it again on the next pull; the
//     outcome for clients is the same without the refetch.)
//   - While the registry is read-only nothing is written: misses are
//     streamed from upstream without being stored, tags and revalidations
//     are not recorded.
//   - Upstream authentication answers the upstream's challenge with
//     go-containerregistry's transport: a Bearer token from its token
//     service, or Basic, with proxy.username/password or the credentials a
//     proxy.exec helper prints; anonymous without either.
//   - With a Docker Hub remoteurl, a repository name of one component
//     (alpine) is fetched as library/alpine, Docker Hub's official images,
//     and stored under the name the client used.
//
// Upstream failures other than 404 answer 503 UNAVAILABLE (429 stays
// TOOMANYREQUESTS) when nothing stored can be served instead.
package proxy

import (
	"context"
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

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/opencontainers/go-digest"

	"github.com/berth-dev/berth/registryd/errcode"
	"github.com/berth-dev/berth/registryd/handlers"
	"github.com/berth-dev/berth/registryd/storage"
)

// blobFetchTimeout bounds a blob fetch that goes on storing after its
// client went away.
const blobFetchTimeout = time.Hour

// dockerHubHosts are the hosts of Docker Hub's registry API.
var dockerHubHosts = []string{"registry-1.docker.io", "index.docker.io", "docker.io", "registry.hub.docker.com"}

// Options configure a Cache.
type Options struct {
	// RemoteURL is the upstream registry, scheme and host (proxy.remoteurl).
	RemoteURL string
	// Auth answers upstream's authentication challenge; nil is anonymous.
	Auth authn.Authenticator
	// TTL is how long stored content is served before it is revalidated
	// with upstream; 0 never revalidates.
	TTL time.Duration
	// LibraryPrefix fetches one-component names as library/<name>; New
	// sets it for Docker Hub remote URLs.
	LibraryPrefix bool
	// Admit is asked before the cache writes storage (content fetched
	// from upstream, a tag, a revalidation): ok false means do not write
	// (read-only mode), otherwise release is called once the write is
	// done. The server passes its write gate's admission, which a switch
	// to read-only waits for, so no store is still running when a replica
	// reports read-only to a garbage collection. Nil admits every write.
	Admit func() (release func(), ok bool)
	// Logger receives upstream failures.
	Logger *slog.Logger
	// Transport is the upstream HTTP transport under authentication; nil
	// means a default one with connect and response-header timeouts.
	Transport http.RoundTripper
	// Now is the clock of revalidation; nil means time.Now.
	Now func() time.Time
}

// Cache is a pull-through cache of one upstream registry over a store.
type Cache struct {
	store *storage.Store
	up    *upstream
	opts  Options

	mu       sync.Mutex
	inflight map[digest.Digest]bool // blobs being fetched and stored
}

var _ handlers.PullThrough = (*Cache)(nil)

// IsDockerHub reports whether remoteURL is Docker Hub's registry.
func IsDockerHub(remoteURL string) bool {
	u, err := url.Parse(remoteURL)
	return err == nil && slices.Contains(dockerHubHosts, strings.ToLower(u.Hostname()))
}

// New returns a pull-through cache of o.RemoteURL over store.
func New(store *storage.Store, o Options) (*Cache, error) {
	up, err := newUpstream(o.RemoteURL, o.Auth, o.Transport)
	if err != nil {
		return nil, err
	}
	if IsDockerHub(o.RemoteURL) {
		o.LibraryPrefix = true
	}
	if o.Admit == nil {
		o.Admit = func() (func(), bool) { return func() {}, true }
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Cache{store: store, up: up, opts: o, inflight: map[digest.Digest]bool{}}, nil
}

// upstreamName is the name of repository name upstream.
func (c *Cache) upstreamName(name string) string {
	if c.opts.LibraryPrefix && !strings.Contains(name, "/") {
		return "library/" + name
	}
	return name
}

// unavailable is the protocol error for an upstream failure when nothing
// stored can answer instead.
func unavailable(err error) error {
	var se *statusError
	if errors.As(err, &se) && se.status == http.StatusTooManyRequests {
		return errcode.ErrTooManyRequests.WithMessage("upstream registry: too many requests")
	}
	return errcode.ErrUnavailable.WithMessage("upstream registry unavailable: " + err.Error())
}

// ResolveTag resolves tag upstream and records it locally with its
// manifest; when upstream fails, the tag recorded last is returned.
func (c *Cache) ResolveTag(ctx context.Context, name, tag string) (digest.Digest, error) {
	d, err := c.up.manifestDigest(ctx, c.upstreamName(name), tag)
	if err == nil {
		if release, ok := c.opts.Admit(); ok {
			defer release()
			if _, ferr := c.manifest(ctx, name, d, true); ferr != nil {
				return "", ferr
			}
			if terr := c.store.Tag(ctx, name, tag, d); terr != nil {
				return "", terr
			}
		}
		return d, nil
	}
	local, lerr := c.store.ResolveTag(ctx, name, tag)
	if lerr == nil {
		c.opts.Logger.Warn("Upstream did not resolve the tag; serving the one recorded last", "repository", name, "tag", tag, "error", err)
		return local, nil
	}
	if errors.Is(err, errNotFound) {
		return "", storage.ErrTagUnknown
	}
	return "", unavailable(err)
}

// Manifest returns the content of manifest d: stored (revalidated past
// the ttl), else fetched from upstream, checked against d and stored.
func (c *Cache) Manifest(ctx context.Context, name string, d digest.Digest) ([]byte, error) {
	release, ok := c.opts.Admit()
	if ok {
		defer release()
	}
	return c.manifest(ctx, name, d, ok)
}

// manifest is Manifest; it writes storage only when write is true (the
// caller holds the admission).
func (c *Cache) manifest(ctx context.Context, name string, d digest.Digest, write bool) ([]byte, error) {
	content, err := c.store.GetManifest(ctx, name, d)
	if err == nil {
		if c.revalidate(ctx, name, storage.RevisionLinkPath(name, d), d, write, func(ctx context.Context) error {
			_, err := c.up.manifestDigest(ctx, c.upstreamName(name), d.String())
			return err
		}, func(ctx context.Context) error {
			_, err := c.store.DeleteManifest(ctx, name, d)
			return err
		}) {
			return content, nil
		}
		return nil, storage.ErrManifestUnknown
	}
	if !errors.Is(err, storage.ErrManifestUnknown) {
		return nil, err
	}
	content, err = c.up.manifest(ctx, c.upstreamName(name), d.String())
	if errors.Is(err, errNotFound) {
		return nil, storage.ErrManifestUnknown
	}
	if err != nil {
		return nil, unavailable(err)
	}
	if got := d.Algorithm().FromBytes(content); got != d {
		return nil, unavailable(fmt.Errorf("manifest %s@%s from upstream hashes to %s", name, d, got))
	}
	if write {
		if err := c.store.PutManifest(ctx, name, d, content); err != nil {
			return nil, err
		}
	}
	return content, nil
}

// StatBlob describes blob d: stored (revalidated past the ttl), else as
// upstream describes it.
func (c *Cache) StatBlob(ctx context.Context, name string, d digest.Digest) (storage.Descriptor, bool, error) {
	desc, err := c.store.StatBlob(ctx, name, d)
	if err == nil {
		release, ok := c.opts.Admit()
		if ok {
			defer release()
		}
		if c.revalidate(ctx, name, storage.LayerLinkPath(name, d), d, ok, func(ctx context.Context) error {
			_, err := c.up.blobSize(ctx, c.upstreamName(name), d)
			return err
		}, func(ctx context.Context) error {
			return c.store.DeleteBlob(ctx, name, d)
		}) {
			return desc, true, nil
		}
		return storage.Descriptor{}, false, storage.ErrBlobUnknown
	}
	if !errors.Is(err, storage.ErrBlobUnknown) {
		return storage.Descriptor{}, false, err
	}
	size, err := c.up.blobSize(ctx, c.upstreamName(name), d)
	if errors.Is(err, errNotFound) {
		return storage.Descriptor{}, false, storage.ErrBlobUnknown
	}
	if err != nil {
		return storage.Descriptor{}, false, unavailable(err)
	}
	return storage.Descriptor{Digest: d, Size: size}, false, nil
}

// revalidate checks stored content whose link (at link) is older than the
// ttl with upstream (check). It reports whether the content may be served:
// true when it is fresh, still upstream (its link is rewritten, restarting
// its clock), or upstream cannot say; false when upstream no longer has
// it, after drop removed it (only when write: the caller holds the write
// admission).
func (c *Cache) revalidate(ctx context.Context, name, link string, d digest.Digest, write bool, check, drop func(context.Context) error) bool {
	if c.opts.TTL <= 0 {
		return true
	}
	drv := c.store.Driver()
	fi, err := drv.Stat(ctx, link)
	if err != nil || c.opts.Now().Sub(fi.ModTime()) < c.opts.TTL {
		return true
	}
	err = check(ctx)
	switch {
	case err == nil:
		if write {
			target, rerr := drv.GetContent(ctx, link)
			if rerr == nil {
				rerr = drv.PutContent(ctx, link, target)
			}
			if rerr != nil {
				c.opts.Logger.Warn("Recording a revalidation failed", "repository", name, "digest", d, "error", rerr)
			}
		}
		return true
	case errors.Is(err, errNotFound):
		c.opts.Logger.Info("Content gone upstream; dropping the stored copy", "repository", name, "digest", d)
		if write {
			if derr := drop(ctx); derr != nil {
				c.opts.Logger.Warn("Dropping content gone upstream failed", "repository", name, "digest", d, "error", derr)
			}
		}
		return false
	default:
		c.opts.Logger.Warn("Upstream could not revalidate stored content; serving it", "repository", name, "digest", d, "error", err)
		return true
	}
}

// CopyBlob writes upstream's blob d to w and stores it meanwhile (unless
// read-only or another request is storing it). The client and storage are
// written independently: a client that goes away does not stop the
// storing, storage that fails does not stop the client.
func (c *Cache) CopyBlob(ctx context.Context, name string, d digest.Digest, w io.Writer) error {
	admitted, ok := c.opts.Admit()
	store := ok && c.claim(d)
	if ok && !store {
		admitted()
	}
	if !store {
		rc, _, err := c.up.blob(ctx, c.upstreamName(name), d)
		if err != nil {
			return err
		}
		defer rc.Close()
		_, err = io.Copy(w, rc)
		return err
	}
	defer admitted()
	defer c.release(d)
	fetchCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), blobFetchTimeout)
	defer cancel()
	rc, _, err := c.up.blob(fetchCtx, c.upstreamName(name), d)
	if err != nil {
		return err
	}
	defer rc.Close()
	u, err := c.store.CreateUpload(fetchCtx, name)
	if err != nil {
		_, copyErr := io.Copy(w, rc)
		return errors.Join(err, copyErr)
	}
	pr, pw := io.Pipe()
	stored := make(chan error, 1)
	go func() {
		_, err := c.store.AppendUpload(fetchCtx, name, u.ID, 0, pr)
		pr.CloseWithError(err) // unblocks the tee if storing stopped early
		stored <- err
	}()
	t := &tee{client: w, store: pw}
	_, readErr := io.Copy(t, rc)
	pw.CloseWithError(readErr)
	storeErr := errors.Join(<-stored, t.storeErr)
	if readErr == nil && storeErr == nil {
		_, storeErr = c.store.CommitUpload(fetchCtx, name, u.ID, d)
	}
	if readErr != nil || storeErr != nil {
		_ = c.store.CancelUpload(fetchCtx, name, u.ID)
	}
	if storeErr != nil {
		c.opts.Logger.Warn("Storing a blob from upstream failed", "repository", name, "digest", d, "error", storeErr)
	}
	return errors.Join(readErr, t.clientErr)
}

func (c *Cache) claim(d digest.Digest) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.inflight[d] {
		return false
	}
	c.inflight[d] = true
	return true
}

func (c *Cache) release(d digest.Digest) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.inflight, d)
}

// tee writes to the client and to storage; each that fails is dropped and
// its error kept, and writing fails only when both have failed.
type tee struct {
	client, store       io.Writer
	clientErr, storeErr error
}

func (t *tee) Write(p []byte) (int, error) {
	if t.clientErr == nil {
		if _, err := t.client.Write(p); err != nil {
			t.clientErr = err
		}
	}
	if t.storeErr == nil {
		if _, err := t.store.Write(p); err != nil {
			t.storeErr = err
		}
	}
	if t.clientErr != nil && t.storeErr != nil {
		return 0, t.storeErr
	}
	return len(p), nil
}

// Tags lists upstream's tags of repository name, or the local ones when
// upstream fails.
func (c *Cache) Tags(ctx context.Context, name string) ([]string, error) {
	tags, err := c.up.tags(ctx, c.upstreamName(name))
	if err == nil {
		return tags, nil
	}
	local, lerr := c.store.Tags(ctx, name)
	if lerr == nil {
		c.opts.Logger.Warn("Upstream did not list the tags; listing the ones recorded", "repository", name, "error", err)
		return local, nil
	}
	if errors.Is(err, errNotFound) {
		return nil, storage.ErrRepositoryUnknown
	}
	return nil, unavailable(err)
}
