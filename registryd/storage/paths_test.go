package storage

import (
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/berth-dev/berth/registryd/storage/driver"
)

func TestValidName(t *testing.T) {
	tests := map[string]bool{
		"a":                        true,
		"library/busybox":          true,
		"a.b_c__d---e/f0":          true,
		"x/y/z/w":                  true,
		"":                         false,
		"A":                        false,
		"a/":                       false,
		"/a":                       false,
		"a//b":                     false,
		"..":                       false,
		"a/../b":                   false,
		"a/./b":                    false,
		"a___b":                    false,
		"-a":                       false,
		"a-":                       false,
		"a b":                      false,
		"_manifests":               false,
		"a/_uploads":               false,
		strings.Repeat("a", 255):   true,
		strings.Repeat("a", 256):   false,
		"a.":                       false,
		"a%2f..":                   false,
		"docker/registry/v2/blobs": true, // harmless: it lives under repositories/
	}
	for name, want := range tests {
		if got := ValidName(name); got != want {
			t.Errorf("ValidName(%q) = %v, want %v", name, got, want)
		}
		if want && !driver.ValidPath(RepositoryPath(name)) {
			t.Errorf("valid name %q gives an invalid driver path", name)
		}
	}
}

func TestValidTag(t *testing.T) {
	tests := map[string]bool{
		"latest":                 true,
		"v1.2.3-rc.1_x":          true,
		"_x":                     true,
		"V":                      true,
		strings.Repeat("a", 128): true,
		strings.Repeat("a", 129): false,
		"":                       false,
		".x":                     false,
		"-x":                     false,
		"..":                     false,
		"a/b":                    false,
		"a:b":                    false,
	}
	for tag, want := range tests {
		if got := ValidTag(tag); got != want {
			t.Errorf("ValidTag(%q) = %v, want %v", tag, got, want)
		}
	}
}

func TestPaths(t *testing.T) {
	d := digest.Digest("sha256:" + strings.Repeat("ab", 32))
	hex := d.Encoded()
	tests := map[string]struct{ got, want string }{
		"blob":      {BlobDataPath(d), "/docker/registry/v2/blobs/sha256/ab/" + hex + "/data"},
		"layer":     {LayerLinkPath("a/b", d), "/docker/registry/v2/repositories/a/b/_layers/sha256/" + hex + "/link"},
		"revision":  {RevisionLinkPath("a", d), "/docker/registry/v2/repositories/a/_manifests/revisions/sha256/" + hex + "/link"},
		"current":   {TagCurrentLinkPath("a", "v1"), "/docker/registry/v2/repositories/a/_manifests/tags/v1/current/link"},
		"tag index": {TagIndexLinkPath("a", "v1", d), "/docker/registry/v2/repositories/a/_manifests/tags/v1/index/sha256/" + hex + "/link"},
		"data":      {UploadDataPath("a", "id"), "/docker/registry/v2/repositories/a/_uploads/id/data"},
		"startedat": {UploadStartedAtPath("a", "id"), "/docker/registry/v2/repositories/a/_uploads/id/startedat"},
		"hashstate": {UploadHashStatePath("a", "id", digest.SHA256, 1048576), "/docker/registry/v2/repositories/a/_uploads/id/hashstates/sha256/1048576"},
	}
	for name, tc := range tests {
		if tc.got != tc.want {
			t.Errorf("%s: %s, want %s", name, tc.got, tc.want)
		}
	}
}

func TestParseDigest(t *testing.T) {
	tests := map[string]bool{
		"sha256:" + strings.Repeat("a", 64):  true,
		"sha512:" + strings.Repeat("a", 128): true,
		"sha256:" + strings.Repeat("A", 64):  false,
		"sha256:" + strings.Repeat("a", 63):  false,
		"sha512:" + strings.Repeat("a", 64):  false,
		"md5:" + strings.Repeat("a", 32):     false,
		"sha256:../../x":                     false,
		"latest":                             false,
	}
	for s, want := range tests {
		if _, err := ParseDigest(s); (err == nil) != want {
			t.Errorf("ParseDigest(%q) err = %v, want ok=%v", s, err, want)
		}
	}
}

func TestCompareNames(t *testing.T) {
	ordered := []string{"a", "a/0", "a/b", "a/b/c", "a-b", "a.b", "ab"}
	for i := 1; i < len(ordered); i++ {
		if CompareNames(ordered[i-1], ordered[i]) >= 0 {
			t.Errorf("%q should sort before %q", ordered[i-1], ordered[i])
		}
	}
}
