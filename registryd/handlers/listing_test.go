package handlers

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"testing"

	"github.com/opencontainers/go-digest"
)

func TestTagsList(t *testing.T) {
	e := newEnv(t)
	m := e.image("app", "a", nil)
	for _, tag := range []string{"v2", "latest", "v1", "V3", "1.0"} {
		e.pushManifest("app", tag, ociManifest, m)
	}
	e.pushBlob("layers-only", []byte("x"))
	tests := map[string]struct {
		path     string
		wantCode int
		wantErr  string
		wantBody string
		wantLink string
	}{
		"all":             {path: "/v2/app/tags/list", wantCode: 200, wantBody: `{"name":"app","tags":["1.0","V3","latest","v1","v2"]}`},
		"first page":      {path: "/v2/app/tags/list?n=2", wantCode: 200, wantBody: `{"name":"app","tags":["1.0","V3"]}`, wantLink: `</v2/app/tags/list?n=2&last=V3>; rel="next"`},
		"second page":     {path: "/v2/app/tags/list?n=2&last=V3", wantCode: 200, wantBody: `{"name":"app","tags":["latest","v1"]}`, wantLink: `</v2/app/tags/list?n=2&last=v1>; rel="next"`},
		"last page":       {path: "/v2/app/tags/list?n=2&last=v1", wantCode: 200, wantBody: `{"name":"app","tags":["v2"]}`},
		"exact last page": {path: "/v2/app/tags/list?n=1&last=v1", wantCode: 200, wantBody: `{"name":"app","tags":["v2"]}`},
		"past the end":    {path: "/v2/app/tags/list?last=zzz", wantCode: 200, wantBody: `{"name":"app","tags":[]}`},
		"n=0":             {path: "/v2/app/tags/list?n=0", wantCode: 200, wantBody: `{"name":"app","tags":[]}`},
		"bad n":           {path: "/v2/app/tags/list?n=-1", wantCode: 400, wantErr: "PAGINATION_NUMBER_INVALID"},
		"unknown repo":    {path: "/v2/nope/tags/list", wantCode: 404, wantErr: "NAME_UNKNOWN"},
		"repo w/o tags":   {path: "/v2/layers-only/tags/list", wantCode: 200, wantBody: `{"name":"layers-only","tags":[]}`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			rec := e.do(req{method: "GET", path: tc.path})
			if rec.Code != tc.wantCode || errorCode(t, rec) != tc.wantErr {
				t.Fatalf("%d %s", rec.Code, rec.Body)
			}
			if tc.wantBody != "" && rec.Body.String() != tc.wantBody {
				t.Fatalf("body %s, want %s", rec.Body, tc.wantBody)
			}
			if got := rec.Header().Get("Link"); got != tc.wantLink {
				t.Fatalf("Link %q, want %q", got, tc.wantLink)
			}
		})
	}
}

func TestCatalog(t *testing.T) {
	e := newEnv(t, WithCatalogMaxEntries(50))
	names := []string{"b", "a-b", "a/b", "a", "a/0", "c/d/e", "a.b"}
	for _, n := range names {
		e.pushManifest(n, "t", ociManifest, e.image(n, n, nil))
	}
	e.pushBlob("layers-only", []byte("not a repository in the catalog"))
	want := []string{"a", "a/0", "a/b", "a-b", "a.b", "b", "c/d/e"}

	t.Run("all", func(t *testing.T) {
		rec := e.do(req{method: "GET", path: "/v2/_catalog"})
		var body struct{ Repositories []string }
		if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || rec.Code != 200 {
			t.Fatalf("%d %s", rec.Code, rec.Body)
		}
		if !slices.Equal(body.Repositories, want) {
			t.Fatalf("repositories %v, want %v", body.Repositories, want)
		}
	})
	t.Run("paginated", func(t *testing.T) {
		var got []string
		path := "/v2/_catalog?n=2"
		for i := 0; path != "" && i < 10; i++ {
			rec := e.do(req{method: "GET", path: path})
			var body struct{ Repositories []string }
			if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || rec.Code != 200 {
				t.Fatalf("%s: %d %s", path, rec.Code, rec.Body)
			}
			got = append(got, body.Repositories...)
			path = ""
			if link := rec.Header().Get("Link"); link != "" {
				if _, err := fmt.Sscanf(link, "<%s", &path); err != nil {
					t.Fatalf("Link %q", link)
				}
				path = path[:len(path)-2] // drop `>;`
			}
		}
		if !slices.Equal(got, want) {
			t.Fatalf("paged repositories %v, want %v", got, want)
		}
	})
	for name, tc := range map[string]struct {
		path    string
		wantErr string
	}{
		"n over max": {"/v2/_catalog?n=51", "PAGINATION_NUMBER_INVALID"},
		"n not int":  {"/v2/_catalog?n=x", "PAGINATION_NUMBER_INVALID"},
	} {
		t.Run(name, func(t *testing.T) {
			rec := e.do(req{method: "GET", path: tc.path})
			if rec.Code != http.StatusBadRequest || errorCode(t, rec) != tc.wantErr {
				t.Fatalf("%d %s", rec.Code, rec.Body)
			}
		})
	}
	t.Run("empty registry", func(t *testing.T) {
		rec := newEnv(t).do(req{method: "GET", path: "/v2/_catalog"})
		if rec.Code != 200 || rec.Body.String() != `{"repositories":[]}` {
			t.Fatalf("%d %s", rec.Code, rec.Body)
		}
	})
}

func TestReferrers(t *testing.T) {
	e := newEnv(t)
	subject := e.image("app", "subject", nil)
	subjectD := e.pushManifest("app", "v1", ociManifest, subject)
	subjectDesc := descOf(ociManifest, subject)
	empty := e.pushBlob("app", []byte("{}"))
	emptyDesc := desc{MediaType: "application/vnd.oci.empty.v1+json", Digest: empty, Size: 2}

	sig := mustJSON(t, map[string]any{"schemaVersion": 2, "mediaType": ociManifest, "artifactType": "application/vnd.example.sig",
		"config": emptyDesc, "layers": []desc{emptyDesc}, "subject": subjectDesc,
		"annotations": map[string]string{"org.opencontainers.image.created": "2024-01-01T00:00:00Z"}})
	sigD := e.pushManifest("app", digest.FromBytes(sig).String(), ociManifest, sig)
	// No artifactType: falls back to the config media type.
	sbomCfg := e.pushBlob("app", []byte(`{"sbom":true}`))
	sbom := mustJSON(t, map[string]any{"schemaVersion": 2, "mediaType": ociManifest,
		"config": desc{MediaType: "application/vnd.example.sbom", Digest: sbomCfg, Size: 13}, "layers": []desc{}, "subject": subjectDesc})
	sbomD := e.pushManifest("app", digest.FromBytes(sbom).String(), ociManifest, sbom)
	// An index referrer.
	idx := mustJSON(t, map[string]any{"schemaVersion": 2, "mediaType": ociIndex, "artifactType": "application/vnd.example.bundle",
		"manifests": []desc{}, "subject": subjectDesc})
	idxD := e.pushManifest("app", digest.FromBytes(idx).String(), ociIndex, idx)
	// Refers to something else.
	e.pushManifest("app", "unrelated", ociManifest, e.image("app", "x", map[string]any{"subject": descOf(ociManifest, []byte("x"))}))

	type ref struct {
		d            digest.Digest
		mediaType    string
		size         int
		artifactType string
	}
	all := []ref{{sigD, ociManifest, len(sig), "application/vnd.example.sig"}, {sbomD, ociManifest, len(sbom), "application/vnd.example.sbom"}, {idxD, ociIndex, len(idx), "application/vnd.example.bundle"}}
	slices.SortFunc(all, func(a, b ref) int {
		if a.d < b.d {
			return -1
		}
		return 1
	})
	tests := map[string]struct {
		path        string
		wantCode    int
		wantErr     string
		want        []ref
		wantFilters bool
	}{
		"all":                 {path: "/v2/app/referrers/" + subjectD.String(), wantCode: 200, want: all},
		"filtered":            {path: "/v2/app/referrers/" + subjectD.String() + "?artifactType=application/vnd.example.sbom", wantCode: 200, want: []ref{{sbomD, ociManifest, len(sbom), "application/vnd.example.sbom"}}, wantFilters: true},
		"filter matches none": {path: "/v2/app/referrers/" + subjectD.String() + "?artifactType=application/x", wantCode: 200, want: []ref{}, wantFilters: true},
		"unknown subject":     {path: "/v2/app/referrers/" + digest.FromString("nothing").String(), wantCode: 200, want: []ref{}},
		"unknown repository":  {path: "/v2/nope/referrers/" + subjectD.String(), wantCode: 200, want: []ref{}},
		"invalid digest":      {path: "/v2/app/referrers/sha256:abc", wantCode: 400, wantErr: "DIGEST_INVALID"},
		"tag instead":         {path: "/v2/app/referrers/v1", wantCode: 400, wantErr: "DIGEST_INVALID"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			rec := e.do(req{method: "GET", path: tc.path})
			if rec.Code != tc.wantCode || errorCode(t, rec) != tc.wantErr {
				t.Fatalf("%d %s", rec.Code, rec.Body)
			}
			if tc.wantCode != 200 {
				return
			}
			if ct := rec.Header().Get("Content-Type"); ct != ociIndex {
				t.Fatalf("Content-Type %q", ct)
			}
			if got := rec.Header().Get("OCI-Filters-Applied"); (got == "artifactType") != tc.wantFilters || (got != "" && got != "artifactType") {
				t.Fatalf("OCI-Filters-Applied %q", got)
			}
			var body struct {
				SchemaVersion int    `json:"schemaVersion"`
				MediaType     string `json:"mediaType"`
				Manifests     []desc `json:"manifests"`
			}
			if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
				t.Fatal(err)
			}
			if body.SchemaVersion != 2 || body.MediaType != ociIndex || body.Manifests == nil {
				t.Fatalf("index %s", rec.Body)
			}
			if len(body.Manifests) != len(tc.want) {
				t.Fatalf("got %d referrers, want %d: %s", len(body.Manifests), len(tc.want), rec.Body)
			}
			for i, w := range tc.want {
				g := body.Manifests[i]
				if g.Digest != w.d || g.MediaType != w.mediaType || g.Size != int64(w.size) || g.ArtifactType != w.artifactType {
					t.Errorf("referrer %d = %+v, want %+v", i, g, w)
				}
				if w.d == sigD && g.Annotations["org.opencontainers.image.created"] != "2024-01-01T00:00:00Z" {
					t.Errorf("annotations not carried: %v", g.Annotations)
				}
			}
		})
	}
}
