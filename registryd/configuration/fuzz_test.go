package configuration

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzParseWithEnv parses any config.yml with any one REGISTRY_* override.
// It must refuse or accept without a panic; what it accepts must render
// (Marshal) to a config.yml that parses again, without the override, to
// the same rendering: the operator renders configurations this way.
func FuzzParseWithEnv(f *testing.F) {
	for _, name := range []string{"development.yaml", "auth-htpasswd.yaml", "driver-filesystem.yaml"} {
		data, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data, "REGISTRY_HTTP_ADDR", ":5001")
	}
	f.Add(DefaultYAML(), "REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY", "/data")
	f.Add(DefaultYAML(), "REGISTRY_HTTP_SECRET", "[not: yaml")
	f.Add(DefaultYAML(), "REGISTRY_LOG_FIELDS", "{a: b}")
	f.Add(DefaultYAML(), "REGISTRY_NOTIFICATIONS_ENDPOINTS", "- name: x\n  url: http://x")
	f.Add([]byte("version: 0.1\nstorage: {inmemory: {}}\n"), "REGISTRY_STORAGE", "filesystem")
	f.Fuzz(func(t *testing.T, data []byte, key, value string) {
		env := []string{key + "=" + value}
		c, err := ParseWithEnv(bytes.NewReader(data), env)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("an error without a message")
			}
			return
		}
		out, err := Marshal(c)
		if err != nil {
			t.Fatalf("accepted, but Marshal fails: %v", err)
		}
		again, err := ParseWithEnv(bytes.NewReader(out), nil)
		if err != nil {
			t.Fatalf("accepted with %s, but its rendering is refused: %v\n%s", strings.Join(env, " "), err, out)
		}
		out2, err := Marshal(again)
		if err != nil || !bytes.Equal(out, out2) {
			t.Fatalf("rendering is not stable (%v):\n%s\n---\n%s", err, out, out2)
		}
	})
}
