package handlers

import (
	"context"
	"errors"
	"io"
	"mime"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-dev/berth/registryd/errcode"
	"github.com/berth-dev/berth/registryd/notifications"
	"github.com/berth-dev/berth/registryd/storage"
)

// reference is a manifest reference: a tag or a digest.
type reference struct {
	tag    string
	digest digest.Digest
}

// parseReference tells a digest (it has a ":") from a tag.
func parseReference(ref string) (reference, error) {
	if strings.Contains(ref, ":") {
		d, err := storage.ParseDigest(ref)
		if err != nil {
			return reference{}, err
		}
		return reference{digest: d}, nil
	}
	if !storage.ValidTag(ref) {
		return reference{}, errcode.ErrTagInvalid.WithMessage("invalid tag").WithDetail(map[string]string{"tag": ref})
	}
	return reference{tag: ref}, nil
}

func (h *handler) resolve(ctx context.Context, name string, ref reference) (digest.Digest, error) {
	if ref.digest != "" {
		return ref.digest, nil
	}
	if h.pullThrough != nil {
		return h.pullThrough.ResolveTag(ctx, name, ref.tag)
	}
	return h.store.ResolveTag(ctx, name, ref.tag)
}

// acceptedTypes returns the manifest media types listed in the request's
// Accept headers (parameters such as q are ignored), and whether the client
// sent any Accept header that restricts the type at all.
func acceptedTypes(r *http.Request) (map[string]bool, bool) {
	types := map[string]bool{}
	restricted := false
	for _, v := range r.Header.Values("Accept") {
		for part := range strings.SplitSeq(v, ",") {
			mt, _, err := mime.ParseMediaType(part)
			if err != nil {
				continue
			}
			if mt == "*/*" || mt == "application/*" {
				return types, false
			}
			restricted = true
			types[mt] = true
		}
	}
	return types, restricted
}

// getManifest serves GET and HEAD /v2/<name>/manifests/<reference>.
//
// Accept negotiation follows Distribution v3 where it refuses, and only
// there: fetched by tag, an OCI manifest or index whose media type the
// client's Accept does not list is 404 MANIFEST_UNKNOWN, and a Docker
// manifest list is replaced by its linux/amd64 image (404 when it has
// none). registryd is more lenient than Distribution in two cases, both
// on purpose: a request with no Accept header, or one accepting */*, gets
// the stored manifest whatever its type (Distribution treats no Accept as
// accepting nothing but schema2), and a fetch by digest always returns the
// stored bytes, since the client named exactly what it wants.
//
// A reference that is neither a valid tag nor a valid digest names nothing
// that could exist: reads answer 404 MANIFEST_UNKNOWN, as the spec's
// "manifest not found" does (TAG_INVALID is for a PUT whose tag is bad).
func (h *handler) getManifest(w http.ResponseWriter, r *http.Request, rt route) error {
	ctx := r.Context()
	ref, err := parseReference(rt.Ref)
	if err != nil {
		return errcode.ErrManifestUnknown.WithMessage("invalid manifest reference").WithDetail(map[string]string{"reference": rt.Ref})
	}
	d, err := h.resolve(ctx, rt.Name, ref)
	if err != nil {
		return err
	}
	sm, err := h.loadManifest(ctx, rt.Name, d)
	if err != nil {
		return err
	}
	content, mt := sm.Content, sm.MediaType
	accepted, restricted := acceptedTypes(r)
	if ref.tag != "" && restricted && !accepted[mt] {
		switch mt {
		case storage.MediaTypeOCIManifest:
			return errcode.ErrManifestUnknown.WithMessage("OCI manifest found, but the Accept header does not list OCI manifests")
		case storage.MediaTypeOCIIndex:
			return errcode.ErrManifestUnknown.WithMessage("OCI index found, but the Accept header does not list OCI indexes")
		case storage.MediaTypeDockerList:
			child := defaultPlatformChild(sm.Manifest)
			if child == "" {
				return errcode.ErrManifestUnknown.WithMessage("manifest list has no linux/amd64 image")
			}
			csm, err := h.loadManifest(ctx, rt.Name, child)
			if err != nil {
				return err
			}
			content, mt = csm.Content, csm.MediaType
			if mt == storage.MediaTypeDockerManifest && !accepted[mt] {
				return errcode.ErrManifestInvalid.WithMessage("schema 2 manifest not supported by client")
			}
			d = child
		}
	}
	h.emitManifest(r, notifications.ActionPull, rt.Name, ref.tag, d, mt, content)
	if etagMatch(r, d) {
		w.WriteHeader(http.StatusNotModified)
		return nil
	}
	hd := w.Header()
	hd.Set("Content-Type", mt)
	hd.Set("Content-Length", strconv.Itoa(len(content)))
	hd.Set("Docker-Content-Digest", d.String())
	hd.Set("Etag", `"`+d.String()+`"`)
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(content)
	}
	return nil
}

func defaultPlatformChild(m *storage.Manifest) digest.Digest {
	for _, c := range m.Manifests {
		if c.Platform != nil && c.Platform.OS == "linux" && c.Platform.Architecture == "amd64" {
			return c.Digest
		}
	}
	return ""
}

func etagMatch(r *http.Request, d digest.Digest) bool {
	for _, v := range r.Header.Values("If-None-Match") {
		for part := range strings.SplitSeq(v, ",") {
			if t := strings.Trim(strings.TrimSpace(part), `"`); t == d.String() {
				return true
			}
		}
	}
	return false
}

// putManifest serves PUT /v2/<name>/manifests/<reference>[?tag=<tag>...].
//
// Pushed by digest, the manifest is stored under that digest, in the
// algorithm the client chose (sha256, sha384 or sha512), and every response
// header naming it (Docker-Content-Digest, Location) uses that digest. Each
// tag query parameter (OCI Distribution Spec 1.1 tag parameters) then points
// at it, as a PUT by that tag would, and the response lists the tags it set
// in OCI-Tag, one header value per tag. Pushed by tag, the digest is sha256
// and tag parameters add further tags. An invalid tag, in the path or in a
// parameter, is 400 TAG_INVALID before anything is stored.
func (h *handler) putManifest(w http.ResponseWriter, r *http.Request, rt route) error {
	ctx := r.Context()
	ref, err := parseReference(rt.Ref)
	if err != nil {
		return err
	}
	tags, err := pushTags(ref, r.URL.Query()["tag"])
	if err != nil {
		return err
	}
	tooLarge := errcode.ErrSizeInvalid.WithMessage("manifest too large")
	tooLarge.Status = http.StatusRequestEntityTooLarge
	tooLarge.Detail = map[string]int64{"limit": h.maxManifestSize}
	if r.ContentLength > h.maxManifestSize {
		return tooLarge
	}
	reserve := r.ContentLength
	if reserve < 0 {
		reserve = h.maxManifestSize
	}
	release, err := h.manifests.acquire(ctx, reserve)
	if err != nil {
		if errors.Is(err, errBusy) {
			// Read the body through a small buffer and drop it before
			// answering: a client still sending it would otherwise meet
			// the connection's reset before it reads the 429.
			_, _ = io.Copy(io.Discard, io.LimitReader(r.Body, h.maxManifestSize+1))
		}
		return err
	}
	defer release()
	content, err := h.readManifest(r)
	if err != nil {
		return err
	}
	if int64(len(content)) > h.maxManifestSize {
		return tooLarge
	}
	m, mt, err := storage.ParseManifest(content, r.Header.Get("Content-Type"))
	if err != nil {
		return err
	}
	d := digest.Canonical.FromBytes(content)
	if ref.digest != "" {
		if got := ref.digest.Algorithm().FromBytes(content); got != ref.digest {
			return errcode.ErrDigestInvalid.WithMessage("manifest digest does not match the reference").
				WithDetail(map[string]string{"reference": ref.digest.String(), "computed": got.String()})
		}
		d = ref.digest
	}
	if err := h.verifyReferences(ctx, rt.Name, m, mt); err != nil {
		return err
	}
	if err := h.store.PutManifest(ctx, rt.Name, d, content, tags...); err != nil {
		return err
	}
	if len(tags) == 0 {
		h.emitManifest(r, notifications.ActionPush, rt.Name, "", d, mt, content)
	}
	for _, tag := range tags {
		h.emitManifest(r, notifications.ActionPush, rt.Name, tag, d, mt, content)
	}
	hd := w.Header()
	hd.Set("Location", h.absURL(r, "/v2/"+rt.Name+"/manifests/"+d.String()))
	hd.Set("Docker-Content-Digest", d.String())
	for _, tag := range tags {
		hd.Add("OCI-Tag", tag)
	}
	if m.Subject != nil {
		hd.Set("OCI-Subject", m.Subject.Digest.String())
	}
	hd.Set("Content-Length", "0")
	w.WriteHeader(http.StatusCreated)
	return nil
}

// readManifest reads a manifest body into one buffer of its declared
// length, or of the size limit plus one byte when no length is declared
// (more than the limit is then refused by the caller).
func (h *handler) readManifest(r *http.Request) ([]byte, error) {
	if r.ContentLength >= 0 {
		buf := make([]byte, r.ContentLength)
		if _, err := io.ReadFull(r.Body, buf); err != nil {
			return nil, err
		}
		return buf, nil
	}
	buf := make([]byte, h.maxManifestSize+1)
	n, err := io.ReadFull(r.Body, buf)
	var be *bodyError
	if errors.As(err, &be) || (err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF)) {
		return nil, err // a failed body, not the short one ReadFull reports as ErrUnexpectedEOF
	}
	return buf[:n], nil
}

// pushTags lists the tags a manifest PUT sets: the reference when it is a
// tag, then each tag parameter, without repeats, every one valid.
func pushTags(ref reference, params []string) ([]string, error) {
	var tags []string
	if ref.tag != "" {
		tags = append(tags, ref.tag)
	}
	for _, t := range params {
		if !storage.ValidTag(t) {
			return nil, errcode.ErrTagInvalid.WithMessage("invalid tag parameter").WithDetail(map[string]string{"tag": t})
		}
		if !slices.Contains(tags, t) {
			tags = append(tags, t)
		}
	}
	return tags, nil
}

// verifyReferences checks that what the manifest references is in the
// repository: config and layers as blobs, index children as manifests, as
// the index validation option says. The subject need not exist. A
// descriptor carrying URLs (a foreign or non-distributable layer) must
// pass the URL policy (WithURLPolicy); a non-distributable layer with URLs
// is fetched from those by clients and need not be pushed, every other
// descriptor must be.
func (h *handler) verifyReferences(ctx context.Context, name string, m *storage.Manifest, mt string) error {
	if storage.IsIndexMediaType(mt) {
		for _, c := range m.Manifests {
			if !h.mustExist(c) {
				continue
			}
			ok, err := h.store.ManifestExists(ctx, name, c.Digest)
			if err != nil {
				return err
			}
			if !ok {
				return errcode.ErrManifestBlobUnknown.WithDetail(map[string]string{"digest": c.Digest.String()})
			}
		}
		return nil
	}
	for _, b := range m.References() {
		for _, u := range b.URLs {
			if reason := h.urlPolicy.refuse(u); reason != "" {
				return errcode.ErrManifestInvalid.WithMessage("layer URL refused: " + reason).
					WithDetail(map[string]string{"digest": b.Digest.String(), "url": u})
			}
		}
		if len(b.URLs) > 0 && isNonDistributable(b.MediaType) {
			continue
		}
		if _, err := h.store.StatBlob(ctx, name, b.Digest); err != nil {
			if errors.Is(err, storage.ErrBlobUnknown) {
				return errcode.ErrManifestBlobUnknown.WithDetail(map[string]string{"digest": b.Digest.String()})
			}
			return err
		}
	}
	return nil
}

// URLPolicy restricts the URLs descriptors of pushed manifests may carry
// (validation.manifests.urls). Whatever the policy, a URL must be http or
// https and carry no fragment, as in Distribution.
type URLPolicy struct {
	// Allow, when set, must match every URL; nil allows any.
	Allow *regexp.Regexp
	// Deny, when set, must match no URL.
	Deny *regexp.Regexp
}

// DenyAllURLs is the policy of a registry that validates manifests and
// lists no allowed URL: a manifest with URLs is refused, as the
// configuration reference says. It is the handler's default.
var DenyAllURLs = URLPolicy{Allow: regexp.MustCompile(`^$`)}

// WithURLPolicy sets which URLs pushed manifests may carry.
func WithURLPolicy(p URLPolicy) Option { return func(o *options) { o.urlPolicy = p } }

// refuse returns why u is refused, or "".
func (p URLPolicy) refuse(u string) string {
	pu, err := url.Parse(u)
	switch {
	case err != nil:
		return "not a URL"
	case pu.Scheme != "http" && pu.Scheme != "https":
		return "not an http or https URL"
	case pu.Fragment != "":
		return "URL has a fragment"
	case p.Allow != nil && !p.Allow.MatchString(u):
		return "not allowed by validation.manifests.urls.allow"
	case p.Deny != nil && p.Deny.MatchString(u):
		return "denied by validation.manifests.urls.deny"
	}
	return ""
}

func (h *handler) mustExist(c v1.Descriptor) bool {
	switch h.indexValidation.Mode {
	case IndexValidateNone:
		return false
	case IndexValidateList:
		if c.Platform == nil {
			return false
		}
		for _, p := range h.indexValidation.Platforms {
			if p.OS == c.Platform.OS && p.Architecture == c.Platform.Architecture {
				return true
			}
		}
		return false
	}
	return true
}

// deleteManifest serves DELETE /v2/<name>/manifests/<reference>: by tag it
// removes the tag only; by digest it removes the manifest and every tag
// pointing at it (202).
func (h *handler) deleteManifest(w http.ResponseWriter, r *http.Request, rt route) error {
	if !h.deleteEnabled {
		return errcode.ErrUnsupported.WithMessage("deletion is disabled")
	}
	ref, err := parseReference(rt.Ref)
	if err != nil {
		return err
	}
	if ref.tag != "" {
		err = h.store.Untag(r.Context(), rt.Name, ref.tag)
	} else {
		_, err = h.store.DeleteManifest(r.Context(), rt.Name, ref.digest)
	}
	if err != nil {
		return err
	}
	h.emitDelete(r, rt.Name, ref.tag, ref.digest)
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusAccepted)
	return nil
}

func isNonDistributable(mt string) bool {
	return strings.Contains(mt, "nondistributable") || strings.Contains(mt, ".foreign.")
}
