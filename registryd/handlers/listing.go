package handlers

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"

	v1 "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-dev/berth/registryd/errcode"
	"github.com/berth-dev/berth/registryd/storage"
)

// pagination reads n and last. n is -1 when absent; max bounds it when
// max > 0.
func pagination(r *http.Request, max int) (n int, last string, err error) {
	q := r.URL.Query()
	last = q.Get("last")
	n = -1
	if s := q.Get("n"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v < 0 {
			return 0, "", errcode.ErrPaginationInvalid.WithDetail(map[string]string{"n": s})
		}
		if max > 0 && v > max {
			return 0, "", errcode.ErrPaginationInvalid.WithDetail(map[string]int{"n": v, "max": max})
		}
		n = v
	}
	return n, last, nil
}

// setNextLink writes the Link header of the next page: the request's path
// with n and last.
func setNextLink(w http.ResponseWriter, r *http.Request, n int, last string) {
	u := r.URL.Path + "?n=" + strconv.Itoa(n) + "&last=" + url.QueryEscape(last)
	w.Header().Set("Link", "<"+u+`>; rel="next"`)
}

func writeJSON(w http.ResponseWriter, r *http.Request, contentType string, v any, extra ...[2]string) error {
	body, err := json.Marshal(v)
	if err != nil {
		return err
	}
	hd := w.Header()
	hd.Set("Content-Type", contentType)
	hd.Set("Content-Length", strconv.Itoa(len(body)))
	for _, kv := range extra {
		hd.Set(kv[0], kv[1])
	}
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(body)
	}
	return nil
}

// tagsList serves GET /v2/<name>/tags/list with n/last pagination in
// lexical order.
func (h *handler) tagsList(w http.ResponseWriter, r *http.Request, rt route) error {
	n, last, err := pagination(r, 0)
	if err != nil {
		return err
	}
	var tags []string
	if h.pullThrough != nil {
		tags, err = h.pullThrough.Tags(r.Context(), rt.Name)
	} else {
		tags, err = h.store.Tags(r.Context(), rt.Name)
	}
	if err != nil {
		return err
	}
	page := make([]string, 0, len(tags))
	for _, t := range tags {
		if last == "" || t > last {
			page = append(page, t)
		}
	}
	if n >= 0 && len(page) > n {
		page = page[:n]
		if n > 0 {
			setNextLink(w, r, n, page[n-1])
		}
	}
	return writeJSON(w, r, "application/json", struct {
		Name string   `json:"name"`
		Tags []string `json:"tags"`
	}{rt.Name, page})
}

// catalog serves GET /v2/_catalog with n/last pagination, in the
// component-wise order of storage.CompareNames.
func (h *handler) catalog(w http.ResponseWriter, r *http.Request, _ route) error {
	n, last, err := pagination(r, h.catalogMaxEntries)
	if err != nil {
		return err
	}
	if n < 0 {
		n = h.catalogMaxEntries
	}
	repos, more, err := h.store.Repositories(r.Context(), last, n)
	if err != nil {
		return err
	}
	if more && n > 0 {
		setNextLink(w, r, n, repos[len(repos)-1])
	}
	return writeJSON(w, r, "application/json", struct {
		Repositories []string `json:"repositories"`
	}{repos})
}

// referrers serves GET /v2/<name>/referrers/<digest>: an image index of
// the manifests whose subject is the digest, optionally filtered by
// ?artifactType=. An unknown subject or repository gives an empty index.
func (h *handler) referrers(w http.ResponseWriter, r *http.Request, rt route) error {
	d, err := storage.ParseDigest(rt.Ref)
	if err != nil {
		return err
	}
	at := r.URL.Query().Get("artifactType")
	descs, err := h.store.Referrers(r.Context(), rt.Name, d, at)
	if err != nil {
		return err
	}
	var extra [][2]string
	if at != "" {
		extra = append(extra, [2]string{"OCI-Filters-Applied", "artifactType"})
	}
	idx := struct {
		SchemaVersion int             `json:"schemaVersion"`
		MediaType     string          `json:"mediaType"`
		Manifests     []v1.Descriptor `json:"manifests"`
	}{2, v1.MediaTypeImageIndex, descs}
	return writeJSON(w, r, v1.MediaTypeImageIndex, idx, extra...)
}
