package handlers

import (
	"crypto/sha512"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
)

func TestPingAndRouting(t *testing.T) {
	e := newEnv(t)
	tests := map[string]struct {
		r        req
		wantCode int
		wantErr  string
	}{
		"ping GET":              {req{method: "GET", path: "/v2/"}, 200, ""},
		"ping HEAD":             {req{method: "HEAD", path: "/v2/"}, 200, ""},
		"ping without slash":    {req{method: "GET", path: "/v2"}, 200, ""},
		"not an API path":       {req{method: "GET", path: "/v1/x"}, 404, ""},
		"unknown subresource":   {req{method: "GET", path: "/v2/foo/bar"}, 404, ""},
		"invalid name":          {req{method: "GET", path: "/v2/Foo/tags/list"}, 400, "NAME_INVALID"},
		"dot-dot name":          {req{method: "GET", path: "/v2/../x/blobs/sha256:" + strings.Repeat("a", 64)}, 400, "NAME_INVALID"},
		"method not allowed":    {req{method: "POST", path: "/v2/foo/manifests/latest"}, 405, "UNSUPPORTED"},
		"ping POST":             {req{method: "POST", path: "/v2/"}, 405, "UNSUPPORTED"},
		"name containing blobs": {req{method: "GET", path: "/v2/a/blobs/b/tags/list"}, 404, "NAME_UNKNOWN"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			rec := e.do(tc.r)
			if rec.Code != tc.wantCode {
				t.Fatalf("status = %d, want %d; body %s", rec.Code, tc.wantCode, rec.Body)
			}
			if got := errorCode(t, rec); got != tc.wantErr {
				t.Fatalf("error code = %q, want %q", got, tc.wantErr)
			}
		})
	}
}

func TestBlobPull(t *testing.T) {
	e := newEnv(t)
	content := []byte("0123456789abcdef")
	d := e.pushBlob("lib/app", content)
	other := digest.FromString("elsewhere")
	e.pushBlob("other", []byte("elsewhere"))

	tests := map[string]struct {
		r          req
		wantCode   int
		wantBody   string
		wantHeader map[string]string
		wantErr    string
	}{
		"GET": {r: req{method: "GET", path: "/v2/lib/app/blobs/" + d.String()}, wantCode: 200, wantBody: string(content),
			wantHeader: map[string]string{"Docker-Content-Digest": d.String(), "Content-Length": "16", "Content-Type": "application/octet-stream", "Accept-Ranges": "bytes"}},
		"HEAD": {r: req{method: "HEAD", path: "/v2/lib/app/blobs/" + d.String()}, wantCode: 200, wantBody: "",
			wantHeader: map[string]string{"Docker-Content-Digest": d.String(), "Content-Length": "16"}},
		"range": {r: req{method: "GET", path: "/v2/lib/app/blobs/" + d.String(), headers: map[string]string{"Range": "bytes=2-5"}}, wantCode: 206, wantBody: "2345",
			wantHeader: map[string]string{"Content-Range": "bytes 2-5/16", "Content-Length": "4"}},
		"open range":           {r: req{method: "GET", path: "/v2/lib/app/blobs/" + d.String(), headers: map[string]string{"Range": "bytes=10-"}}, wantCode: 206, wantBody: "abcdef"},
		"unsatisfiable range":  {r: req{method: "GET", path: "/v2/lib/app/blobs/" + d.String(), headers: map[string]string{"Range": "bytes=100-200"}}, wantCode: 416},
		"if-none-match":        {r: req{method: "GET", path: "/v2/lib/app/blobs/" + d.String(), headers: map[string]string{"If-None-Match": `"` + d.String() + `"`}}, wantCode: 304},
		"unknown blob":         {r: req{method: "GET", path: "/v2/lib/app/blobs/" + digest.FromString("nope").String()}, wantCode: 404, wantErr: "BLOB_UNKNOWN"},
		"HEAD unknown blob":    {r: req{method: "HEAD", path: "/v2/lib/app/blobs/" + digest.FromString("nope").String()}, wantCode: 404},
		"blob of another repo": {r: req{method: "GET", path: "/v2/lib/app/blobs/" + other.String()}, wantCode: 404, wantErr: "BLOB_UNKNOWN"},
		"invalid digest":       {r: req{method: "GET", path: "/v2/lib/app/blobs/sha256:xyz"}, wantCode: 400, wantErr: "DIGEST_INVALID"},
		"unknown algorithm":    {r: req{method: "GET", path: "/v2/lib/app/blobs/md5:d41d8cd98f00b204e9800998ecf8427e"}, wantCode: 400, wantErr: "DIGEST_INVALID"},
		"delete disabled":      {r: req{method: "DELETE", path: "/v2/lib/app/blobs/" + d.String()}, wantCode: 405, wantErr: "UNSUPPORTED"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			rec := e.do(tc.r)
			if rec.Code != tc.wantCode {
				t.Fatalf("status = %d, want %d; body %s", rec.Code, tc.wantCode, rec.Body)
			}
			if tc.wantCode < 300 && rec.Body.String() != tc.wantBody {
				t.Errorf("body = %q, want %q", rec.Body, tc.wantBody)
			}
			for k, v := range tc.wantHeader {
				if got := rec.Header().Get(k); got != v {
					t.Errorf("%s = %q, want %q", k, got, v)
				}
			}
			if tc.wantErr != "" {
				if got := errorCode(t, rec); got != tc.wantErr {
					t.Errorf("error code = %q, want %q", got, tc.wantErr)
				}
			}
		})
	}
}

func TestBlobDelete(t *testing.T) {
	e := newEnv(t, WithDeleteEnabled(true))
	d := e.pushBlob("app", []byte("bye"))
	path := "/v2/app/blobs/" + d.String()
	if rec := e.do(req{method: "DELETE", path: path}); rec.Code != http.StatusAccepted {
		t.Fatalf("delete: %d %s", rec.Code, rec.Body)
	}
	if rec := e.do(req{method: "GET", path: path}); rec.Code != http.StatusNotFound || errorCode(t, rec) != "BLOB_UNKNOWN" {
		t.Fatalf("get after delete: %d %s", rec.Code, rec.Body)
	}
	if rec := e.do(req{method: "DELETE", path: path}); rec.Code != http.StatusNotFound || errorCode(t, rec) != "BLOB_UNKNOWN" {
		t.Fatalf("second delete: %d %s", rec.Code, rec.Body)
	}
}

// startSession opens an upload session and returns its path.
func (e *env) startSession(repo string) string {
	e.t.Helper()
	rec := e.do(req{method: "POST", path: "/v2/" + repo + "/blobs/uploads/"})
	if rec.Code != http.StatusAccepted {
		e.t.Fatalf("start upload: %d %s", rec.Code, rec.Body)
	}
	if rec.Header().Get("Range") != "0-0" || rec.Header().Get("Docker-Upload-UUID") == "" {
		e.t.Fatalf("start upload headers: %v", rec.Header())
	}
	loc := rec.Header().Get("Location")
	i := strings.Index(loc, "/v2/")
	if i < 0 {
		e.t.Fatalf("Location %q", loc)
	}
	return loc[i:]
}

func TestUploads(t *testing.T) {
	content := []byte("hello, chunked world")
	d := digest.FromBytes(content)
	sum := sha512.Sum512(content)
	d512 := digest.Digest("sha512:" + hex.EncodeToString(sum[:]))

	type step struct {
		r          func(session string) req
		wantCode   int
		wantErr    string
		wantRange  string
		wantDigest string
	}
	put := func(dg digest.Digest, body []byte) func(string) req {
		return func(s string) req { return req{method: "PUT", path: s + "?digest=" + dg.String(), body: body} }
	}
	patch := func(body []byte, contentRange string) func(string) req {
		return func(s string) req {
			h := map[string]string{}
			if contentRange != "" {
				h["Content-Range"] = contentRange
			}
			return req{method: "PATCH", path: s, body: body, headers: h}
		}
	}
	chunked := func(body []byte, contentRange string) func(string) req {
		return func(s string) req {
			return req{method: "PATCH", path: s, body: body, chunked: true, headers: map[string]string{"Content-Range": contentRange}}
		}
	}
	get := func(s string) req { return req{method: "GET", path: s} }
	del := func(s string) req { return req{method: "DELETE", path: s} }

	tests := map[string]struct {
		steps    []step
		pullable digest.Digest // blob expected in the repository afterwards
	}{
		"POST then PUT with body": {steps: []step{
			{r: put(d, content), wantCode: 201, wantDigest: d.String()},
		}, pullable: d},
		"chunked with Content-Range": {steps: []step{
			{r: patch(content[:5], "0-4"), wantCode: 202, wantRange: "0-4"},
			{r: get, wantCode: 204, wantRange: "0-4"},
			{r: patch(content[5:], "5-19"), wantCode: 202, wantRange: "0-19"},
			{r: put(d, nil), wantCode: 201, wantDigest: d.String()},
		}, pullable: d},
		"streamed": {steps: []step{
			{r: patch(content[:7], ""), wantCode: 202, wantRange: "0-6"},
			{r: patch(content[7:], ""), wantCode: 202, wantRange: "0-19"},
			{r: put(d, nil), wantCode: 201},
		}, pullable: d},
		"chunk then final chunk in PUT": {steps: []step{
			{r: patch(content[:5], "0-4"), wantCode: 202},
			{r: put(d, content[5:]), wantCode: 201},
		}, pullable: d},
		"sha512": {steps: []step{
			{r: put(d512, content), wantCode: 201, wantDigest: d512.String()},
		}, pullable: d512},
		"chunk out of order": {steps: []step{
			{r: patch(content[:5], "0-4"), wantCode: 202},
			{r: patch(content[10:], "10-19"), wantCode: 416, wantErr: "RANGE_INVALID"},
			{r: get, wantCode: 204, wantRange: "0-4"},
		}},
		"Content-Range disagrees with body": {steps: []step{
			{r: patch(content[:5], "0-9"), wantCode: 416, wantErr: "RANGE_INVALID"},
		}},
		// A chunked body declares no length: the range is checked against
		// the bytes that arrive. What was appended is the chunk's first
		// bytes at their offsets, so the upload can resume from its size.
		"chunked body longer than its Content-Range": {steps: []step{
			{r: chunked(content[:10], "0-9"), wantCode: 202, wantRange: "0-9"},
			{r: chunked(content[10:], "10-14"), wantCode: 416, wantErr: "RANGE_INVALID"},
			{r: get, wantCode: 204, wantRange: "0-14"},
			{r: chunked(content[15:], "15-19"), wantCode: 202, wantRange: "0-19"},
			{r: put(d, nil), wantCode: 201},
		}, pullable: d},
		"chunked body shorter than its Content-Range": {steps: []step{
			{r: chunked(content[:3], "0-9"), wantCode: 416, wantErr: "RANGE_INVALID"},
			{r: get, wantCode: 204, wantRange: "0-2"},
			{r: chunked(content[3:], "3-19"), wantCode: 202, wantRange: "0-19"},
			{r: put(d, nil), wantCode: 201},
		}, pullable: d},
		"chunked body matching its Content-Range": {steps: []step{
			{r: chunked(content, "0-19"), wantCode: 202, wantRange: "0-19"},
			{r: put(d, nil), wantCode: 201},
		}, pullable: d},
		"digest mismatch cancels": {steps: []step{
			{r: put(digest.FromString("other"), content), wantCode: 400, wantErr: "DIGEST_INVALID"},
			{r: get, wantCode: 404, wantErr: "BLOB_UPLOAD_UNKNOWN"},
		}},
		"missing digest": {steps: []step{
			{r: func(s string) req { return req{method: "PUT", path: s} }, wantCode: 400, wantErr: "DIGEST_INVALID"},
		}},
		"cancel": {steps: []step{
			{r: patch(content, ""), wantCode: 202},
			{r: del, wantCode: 204},
			{r: get, wantCode: 404, wantErr: "BLOB_UPLOAD_UNKNOWN"},
			{r: patch(content, ""), wantCode: 404, wantErr: "BLOB_UPLOAD_UNKNOWN"},
			{r: del, wantCode: 404, wantErr: "BLOB_UPLOAD_UNKNOWN"},
		}},
		"session gone after commit": {steps: []step{
			{r: put(d, content), wantCode: 201},
			{r: get, wantCode: 404, wantErr: "BLOB_UPLOAD_UNKNOWN"},
		}, pullable: d},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t)
			session := e.startSession("team/app")
			for i, s := range tc.steps {
				r := s.r(session)
				rec := e.do(r)
				if rec.Code != s.wantCode {
					t.Fatalf("step %d %s: status %d, want %d; %s", i, r.method, rec.Code, s.wantCode, rec.Body)
				}
				if got := errorCode(t, rec); got != s.wantErr {
					t.Fatalf("step %d: error %q, want %q", i, got, s.wantErr)
				}
				if s.wantRange != "" && rec.Header().Get("Range") != s.wantRange {
					t.Fatalf("step %d: Range %q, want %q", i, rec.Header().Get("Range"), s.wantRange)
				}
				if s.wantCode == 202 && !strings.Contains(rec.Header().Get("Location"), "/v2/team/app/blobs/uploads/") {
					t.Fatalf("step %d: Location %q", i, rec.Header().Get("Location"))
				}
				if s.wantDigest != "" {
					if rec.Header().Get("Docker-Content-Digest") != s.wantDigest ||
						!strings.HasSuffix(rec.Header().Get("Location"), "/v2/team/app/blobs/"+s.wantDigest) {
						t.Fatalf("step %d: headers %v", i, rec.Header())
					}
				}
			}
			if tc.pullable != "" {
				rec := e.do(req{method: "GET", path: "/v2/team/app/blobs/" + tc.pullable.String()})
				if rec.Code != 200 || rec.Body.String() != string(content) {
					t.Fatalf("pull %s: %d %q", tc.pullable, rec.Code, rec.Body)
				}
			}
		})
	}
}

func TestUploadUnknownAndForeign(t *testing.T) {
	e := newEnv(t)
	session := e.startSession("a")
	id := session[strings.LastIndex(session, "/")+1:]
	tests := map[string]req{
		"unknown id":            {method: "GET", path: "/v2/a/blobs/uploads/00000000-0000-0000-0000-000000000000"},
		"malformed id":          {method: "PATCH", path: "/v2/a/blobs/uploads/not-a-uuid..", body: []byte("x")},
		"session of other repo": {method: "GET", path: "/v2/b/blobs/uploads/" + id},
	}
	for name, r := range tests {
		t.Run(name, func(t *testing.T) {
			rec := e.do(r)
			if rec.Code != 404 || errorCode(t, rec) != "BLOB_UPLOAD_UNKNOWN" {
				t.Fatalf("%d %s", rec.Code, rec.Body)
			}
		})
	}
}

func TestMonolithicPostDigestMismatch(t *testing.T) {
	e := newEnv(t)
	rec := e.do(req{method: "POST", path: "/v2/a/blobs/uploads/?digest=" + digest.FromString("x").String(), body: []byte("y")})
	if rec.Code != 400 || errorCode(t, rec) != "DIGEST_INVALID" {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}
	if entries, err := e.drv.List(t.Context(), "/docker/registry/v2/repositories/a/_uploads"); err == nil && len(entries) != 0 {
		t.Fatalf("upload left behind: %v", entries)
	}
}

func TestMount(t *testing.T) {
	content := []byte("shared layer")
	d := digest.FromBytes(content)
	tests := map[string]struct {
		query    string
		wantCode int
	}{
		"from repo holding the blob": {"?mount=" + d.String() + "&from=src/repo", 201},
		"from repo without the blob": {"?mount=" + d.String() + "&from=empty", 202},
		"without from":               {"?mount=" + d.String(), 202},
		"from invalid name":          {"?mount=" + d.String() + "&from=BAD", 202},
		"invalid mount digest":       {"?mount=sha256:zz&from=src/repo", 400},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t)
			e.pushBlob("src/repo", content)
			e.pushBlob("empty", []byte("something else"))
			rec := e.do(req{method: "POST", path: "/v2/dst/blobs/uploads/" + tc.query})
			if rec.Code != tc.wantCode {
				t.Fatalf("status %d, want %d: %s", rec.Code, tc.wantCode, rec.Body)
			}
			get := e.do(req{method: "GET", path: "/v2/dst/blobs/" + d.String()})
			switch tc.wantCode {
			case 201:
				if rec.Header().Get("Docker-Content-Digest") != d.String() || !strings.HasSuffix(rec.Header().Get("Location"), "/v2/dst/blobs/"+d.String()) {
					t.Fatalf("headers %v", rec.Header())
				}
				if get.Code != 200 || get.Body.String() != string(content) {
					t.Fatalf("mounted blob: %d", get.Code)
				}
			case 202:
				if rec.Header().Get("Docker-Upload-UUID") == "" {
					t.Fatalf("no session: %v", rec.Header())
				}
				if get.Code != 404 {
					t.Fatalf("blob mounted without a successful mount: %d", get.Code)
				}
			}
		})
	}
}

// TestEmptyBlobUploads pushes the empty blob every way a client can: its
// upload never gets a data file, and the blob is stored and served all
// the same. A wrong digest for it still cancels the upload.
func TestEmptyBlobUploads(t *testing.T) {
	empty := digest.FromBytes(nil)
	tests := map[string]struct {
		steps    func(e *env, session string) []req
		wantCode int
	}{
		"PUT with the digest, no PATCH": {steps: func(e *env, s string) []req {
			return []req{{method: "PUT", path: s + "?digest=" + empty.String()}}
		}, wantCode: 201},
		"empty PATCH then PUT": {steps: func(e *env, s string) []req {
			return []req{{method: "PATCH", path: s, body: []byte{}}, {method: "PUT", path: s + "?digest=" + empty.String()}}
		}, wantCode: 201},
		"PUT with an empty chunked body": {steps: func(e *env, s string) []req {
			return []req{{method: "PUT", path: s + "?digest=" + empty.String(), body: []byte{}, chunked: true}}
		}, wantCode: 201},
		"wrong digest": {steps: func(e *env, s string) []req {
			return []req{{method: "PUT", path: s + "?digest=" + digest.FromString("x").String()}}
		}, wantCode: 400},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t)
			session := e.startSession("team/app")
			var rec *httptest.ResponseRecorder
			for _, r := range tc.steps(e, session) {
				rec = e.do(r)
			}
			if rec.Code != tc.wantCode {
				t.Fatalf("last step: %d, want %d: %s", rec.Code, tc.wantCode, rec.Body)
			}
			if rec := e.do(req{method: "GET", path: session}); rec.Code != http.StatusNotFound {
				t.Fatalf("upload after the PUT: %d, want 404", rec.Code)
			}
			pull := e.do(req{method: "GET", path: "/v2/team/app/blobs/" + empty.String()})
			if tc.wantCode != 201 {
				if pull.Code != http.StatusNotFound {
					t.Fatalf("pull after a refused PUT: %d", pull.Code)
				}
				return
			}
			if pull.Code != 200 || pull.Body.Len() != 0 || pull.Header().Get("Content-Length") != "0" {
				t.Fatalf("pull: %d, %d bytes, headers %v", pull.Code, pull.Body.Len(), pull.Header())
			}
		})
	}
	t.Run("monolithic POST", func(t *testing.T) {
		e := newEnv(t)
		if d := e.pushBlob("team/app", []byte{}); d != empty {
			t.Fatalf("digest %s", d)
		}
	})
}
