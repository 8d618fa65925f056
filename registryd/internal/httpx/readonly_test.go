package httpx

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestRefuseReadOnly(t *testing.T) {
	tests := map[string]struct {
		method   string
		readOnly func() bool
		refused  bool
	}{
		"put while read-only":    {method: http.MethodPut, readOnly: func() bool { return true }, refused: true},
		"post while read-only":   {method: http.MethodPost, readOnly: func() bool { return true }, refused: true},
		"patch while read-only":  {method: http.MethodPatch, readOnly: func() bool { return true }, refused: true},
		"delete while read-only": {method: http.MethodDelete, readOnly: func() bool { return true }, refused: true},
		"put while writable":     {method: http.MethodPut, readOnly: func() bool { return false }},
		"put without a mode":     {method: http.MethodPut},
		"get while read-only":    {method: http.MethodGet, readOnly: func() bool { t.Error("mode asked for a read"); return true }},
		"head while read-only":   {method: http.MethodHead, readOnly: func() bool { t.Error("mode asked for a read"); return true }},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			w := httptest.NewRecorder()
			got := RefuseReadOnly(w, httptest.NewRequest(tc.method, "/v2/a/manifests/v1", nil), tc.readOnly)
			if got != tc.refused {
				t.Fatalf("refused = %v, want %v", got, tc.refused)
			}
			if !tc.refused {
				if w.Body.Len() != 0 || len(w.Header()) != 0 {
					t.Errorf("wrote %d %v %q for a request it let through", w.Code, w.Header(), w.Body)
				}
				return
			}
			want := `{"errors":[{"code":"UNSUPPORTED","message":"registry is in read-only mode"}]}`
			if w.Code != http.StatusMethodNotAllowed || strings.TrimSpace(w.Body.String()) != want {
				t.Errorf("answer = %d %s, want 405 %s", w.Code, w.Body, want)
			}
		})
	}
}
