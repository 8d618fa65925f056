package driver

import (
	"slices"
	"testing"
)

func TestValidPath(t *testing.T) {
	tests := map[string]struct {
		path     string
		valid    bool
		validDir bool
	}{
		"root":             {"/", false, true},
		"simple":           {"/a", true, true},
		"nested":           {"/docker/registry/v2/blobs/sha256/ab/abcd/data", true, true},
		"upper case":       {"/Library/Ubuntu", true, true},
		"dots inside":      {"/a/..b/c..", true, true},
		"hidden":           {"/.hidden", true, true},
		"three dots":       {"/...", true, true},
		"empty":            {"", false, false},
		"relative":         {"a/b", false, false},
		"double slash":     {"//", false, false},
		"empty component":  {"/a//b", false, false},
		"trailing slash":   {"/a/", false, false},
		"dot":              {"/a/./b", false, false},
		"dot dot":          {"/a/../b", false, false},
		"space":            {"/a b", false, false},
		"unicode":          {"/caf\u00e9", false, false},
		"colon":            {"/sha256:abc", false, false},
		"tilde":            {"/.berth~tmp", false, false},
		"trailing dot":     {"/a/.", false, false},
		"trailing dotdot":  {"/a/..", false, false},
		"root dot":         {"/.", false, false},
		"root dotdot":      {"/..", false, false},
		"newline":          {"/a\n/b", false, false},
		"slash only twice": {"/a/b//", false, false},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := ValidPath(tc.path); got != tc.valid {
				t.Errorf("ValidPath(%q) = %v, want %v", tc.path, got, tc.valid)
			}
			if got := ValidDirPath(tc.path); got != tc.validDir {
				t.Errorf("ValidDirPath(%q) = %v, want %v", tc.path, got, tc.validDir)
			}
		})
	}
}

func TestComparePaths(t *testing.T) {
	// Walk order: a directory, then its children, then its next sibling.
	want := []string{"/", "/a", "/a/b", "/a/b/c", "/a/b-c", "/a/bc", "/a-b", "/ab", "/b"}
	got := slices.Clone(want)
	slices.Reverse(got)
	slices.SortFunc(got, ComparePaths)
	if !slices.Equal(got, want) {
		t.Fatalf("sorted = %v, want %v", got, want)
	}
	for _, p := range want {
		if c := ComparePaths(p, p); c != 0 {
			t.Errorf("ComparePaths(%q, %q) = %d, want 0", p, p, c)
		}
	}
}

func TestValidatingWrapsOnce(t *testing.T) {
	inner := &stubDriver{} // never called
	v := Validating(inner)
	if Validating(v) != v {
		t.Fatal("Validating of a validating driver wrapped it again")
	}
	u, ok := v.(interface{ Unwrap() StorageDriver })
	if !ok || u.Unwrap() != StorageDriver(inner) {
		t.Fatal("Unwrap does not return the wrapped driver")
	}
}

// stubDriver satisfies StorageDriver; calling any method panics.
type stubDriver struct{ StorageDriver }
