package handlers

import (
	"net/http"
	"testing"
)

func TestRedirectable(t *testing.T) {
	tests := map[string]struct {
		ranges []string
		want   bool
	}{
		"no range":        {nil, true},
		"from a start":    {[]string{"bytes=500-"}, true},
		"closed":          {[]string{"bytes=500-1499"}, true},
		"one byte":        {[]string{"bytes=7-7"}, true},
		"past the end":    {[]string{"bytes=5000-10000"}, true},
		"suffix":          {[]string{"bytes=-500"}, false},
		"end before":      {[]string{"bytes=500-0"}, false},
		"two ranges":      {[]string{"bytes=0-1,5-6"}, false},
		"two headers":     {[]string{"bytes=0-1", "bytes=5-6"}, false},
		"other unit":      {[]string{"items=0-1"}, false},
		"not a number":    {[]string{"bytes=a-1"}, false},
		"no dash":         {[]string{"bytes=12"}, false},
		"negative length": {[]string{"bytes=--1"}, false},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			r, _ := http.NewRequest(http.MethodGet, "/v2/a/blobs/sha256:0", nil)
			for _, v := range tt.ranges {
				r.Header.Add("Range", v)
			}
			if got := redirectable(r); got != tt.want {
				t.Fatalf("redirectable(Range %q) = %v, want %v", tt.ranges, got, tt.want)
			}
		})
	}
}
