package proxy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/opencontainers/go-digest"

	"github.com/berth-dev/berth/registryd/storage"
)

// Timeouts of the upstream client. A blob body has no overall deadline
// here (layers can be large); see blobFetchTimeout for fetches that go on
// after the client left.
const (
	dialTimeout           = 10 * time.Second
	responseHeaderTimeout = 30 * time.Second
	// maxTagPages bounds the pages of an upstream tag list followed.
	maxTagPages = 100
	// transportsCached bounds the authenticated transports kept, one per
	// upstream repository (each holds that repository's pull token).
	transportsCached = 256
	// maxManifestSize is the largest manifest fetched from upstream.
	maxManifestSize = 4 << 20
)

// manifestAccept are the manifest types asked of upstream: all of them, so
// upstream returns what it stores and the registry negotiates with its own
// clients.
var manifestAccept = []string{
	storage.MediaTypeOCIManifest,
	storage.MediaTypeOCIIndex,
	storage.MediaTypeDockerManifest,
	storage.MediaTypeDockerList,
}

// errNotFound is upstream's 404.
var errNotFound = errors.New("not found upstream")

// statusError is an upstream answer other than success or 404.
type statusError struct {
	status int
	method string
	url    string
}

func (e *statusError) Error() string {
	return fmt.Sprintf("upstream answered %d to %s %s", e.status, e.method, e.url)
}

// upstream is the remote registry's client: plain HTTP requests over a
// go-containerregistry transport per repository, which answers the
// registry's authentication challenge (Bearer token or Basic) with auth.
type upstream struct {
	base       *url.URL // scheme://host of remoteurl
	reg        name.Registry
	auth       authn.Authenticator
	inner      http.RoundTripper
	transports *lru.Cache[string, http.RoundTripper]
}

func newUpstream(remoteURL string, auth authn.Authenticator, inner http.RoundTripper) (*upstream, error) {
	u, err := url.Parse(remoteURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("proxy.remoteurl: %q is not an http or https URL", remoteURL)
	}
	if strings.Trim(u.Path, "/") != "" || u.RawQuery != "" {
		return nil, fmt.Errorf("proxy.remoteurl: %q has a path; the upstream registry must serve /v2/ at its root", remoteURL)
	}
	var opts []name.Option
	if u.Scheme == "http" {
		opts = append(opts, name.Insecure)
	}
	reg, err := name.NewRegistry(u.Host, opts...)
	if err != nil {
		return nil, fmt.Errorf("proxy.remoteurl: %w", err)
	}
	if inner == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.DialContext = (&net.Dialer{Timeout: dialTimeout, KeepAlive: 30 * time.Second}).DialContext
		t.ResponseHeaderTimeout = responseHeaderTimeout
		inner = t
	}
	if auth == nil {
		auth = authn.Anonymous
	}
	cache, err := lru.New[string, http.RoundTripper](transportsCached)
	if err != nil {
		return nil, err
	}
	return &upstream{base: &url.URL{Scheme: u.Scheme, Host: u.Host}, reg: reg, auth: auth, inner: inner, transports: cache}, nil
}

// transport returns the authenticated transport for repository repo,
// pinging upstream and fetching a pull token the first time.
func (u *upstream) transport(ctx context.Context, repo string) (http.RoundTripper, error) {
	if t, ok := u.transports.Get(repo); ok {
		return t, nil
	}
	t, err := transport.NewWithContext(ctx, u.reg, u.auth, u.inner, []string{u.reg.Repo(repo).Scope(transport.PullScope)})
	if err != nil {
		return nil, fmt.Errorf("upstream %s: %w", u.base.Host, err)
	}
	u.transports.Add(repo, t)
	return t, nil
}

// do sends a request for path below /v2/<repo>/ and returns the response
// of a 2xx answer; 404 is errNotFound, anything else a *statusError.
func (u *upstream) do(ctx context.Context, method, repo, path string, accept []string) (*http.Response, error) {
	t, err := u.transport(ctx, repo)
	if err != nil {
		return nil, err
	}
	target := u.base.String() + "/v2/" + repo + "/" + path
	req, err := http.NewRequestWithContext(ctx, method, target, nil)
	if err != nil {
		return nil, err
	}
	for _, a := range accept {
		req.Header.Add("Accept", a)
	}
	resp, err := (&http.Client{Transport: t}).Do(req)
	if err != nil {
		return nil, fmt.Errorf("upstream %s: %w", u.base.Host, err)
	}
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		return resp, nil
	case resp.StatusCode == http.StatusNotFound:
		drain(resp)
		return nil, fmt.Errorf("%s %s: %w", method, target, errNotFound)
	default:
		drain(resp)
		return nil, &statusError{status: resp.StatusCode, method: method, url: target}
	}
}

func drain(resp *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
}

// manifestDigest resolves ref (a tag or digest) upstream with a HEAD,
// falling back to a GET when upstream sends no Docker-Content-Digest.
func (u *upstream) manifestDigest(ctx context.Context, repo, ref string) (digest.Digest, error) {
	resp, err := u.do(ctx, http.MethodHead, repo, "manifests/"+ref, manifestAccept)
	if err != nil {
		return "", err
	}
	drain(resp)
	if d, err := digest.Parse(resp.Header.Get("Docker-Content-Digest")); err == nil {
		return d, nil
	}
	content, err := u.manifest(ctx, repo, ref)
	if err != nil {
		return "", err
	}
	return digest.Canonical.FromBytes(content), nil
}

// manifest fetches the content of manifest ref.
func (u *upstream) manifest(ctx context.Context, repo, ref string) ([]byte, error) {
	resp, err := u.do(ctx, http.MethodGet, repo, "manifests/"+ref, manifestAccept)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	content, err := io.ReadAll(io.LimitReader(resp.Body, maxManifestSize+1))
	if err != nil {
		return nil, fmt.Errorf("upstream manifest %s:%s: %w", repo, ref, err)
	}
	if len(content) > maxManifestSize {
		return nil, fmt.Errorf("upstream manifest %s:%s is larger than %d bytes", repo, ref, maxManifestSize)
	}
	return content, nil
}

// blobSize describes blob d with a HEAD.
func (u *upstream) blobSize(ctx context.Context, repo string, d digest.Digest) (int64, error) {
	resp, err := u.do(ctx, http.MethodHead, repo, "blobs/"+d.String(), nil)
	if err != nil {
		return 0, err
	}
	drain(resp)
	if resp.ContentLength < 0 {
		return 0, fmt.Errorf("upstream blob %s@%s: no Content-Length", repo, d)
	}
	return resp.ContentLength, nil
}

// blob opens the content of blob d.
func (u *upstream) blob(ctx context.Context, repo string, d digest.Digest) (io.ReadCloser, int64, error) {
	resp, err := u.do(ctx, http.MethodGet, repo, "blobs/"+d.String(), nil)
	if err != nil {
		return nil, 0, err
	}
	return resp.Body, resp.ContentLength, nil
}

// tags lists every tag of repo, following the Link header's pages.
func (u *upstream) tags(ctx context.Context, repo string) ([]string, error) {
	var all []string
	path := "tags/list"
	for range maxTagPages {
		resp, err := u.do(ctx, http.MethodGet, repo, path, nil)
		if err != nil {
			return nil, err
		}
		var page struct {
			Tags []string `json:"tags"`
		}
		err = decodeJSON(resp.Body, &page)
		resp.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("upstream tag list of %s: %w", repo, err)
		}
		all = append(all, page.Tags...)
		next := nextLink(resp.Header.Get("Link"))
		if next == "" {
			slices.Sort(all)
			return slices.Compact(all), nil
		}
		// The link is /v2/<repo>/tags/list?...: keep what follows the
		// repository.
		i := strings.Index(next, "/tags/list")
		if i < 0 {
			return nil, fmt.Errorf("upstream tag list of %s: unexpected next link %q", repo, next)
		}
		path = next[i+1:]
	}
	return nil, fmt.Errorf("upstream tag list of %s: more than %d pages", repo, maxTagPages)
}

// nextLink returns the target of a Link header's rel="next", or "".
func nextLink(h string) string {
	for part := range strings.SplitSeq(h, ",") {
		target, params, ok := strings.Cut(strings.TrimSpace(part), ";")
		if !ok {
			continue
		}
		if _, p, err := mime.ParseMediaType("x/x;" + params); err == nil && p["rel"] == "next" {
			return strings.Trim(strings.TrimSpace(target), "<>")
		}
	}
	return ""
}

// decodeJSON decodes at most 16 MiB of JSON from r into v.
func decodeJSON(r io.Reader, v any) error {
	return json.NewDecoder(io.LimitReader(r, 16<<20)).Decode(v)
}
