package configuration

import (
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// docsPath is the page listing every key and its state.
const docsPath = "../../docs/configuration.md"

// schemaKeys lists every key path of the configuration schema, list
// elements written as "[]" (log.hooks[].type).
func schemaKeys(t reflect.Type, prefix string, out *[]string) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct || t == reflect.TypeFor[time.Duration]() {
		return
	}
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "" || name == "-" {
			continue
		}
		p := name
		if prefix != "" {
			p = prefix + "." + name
		}
		*out = append(*out, p)
		ft := f.Type
		for ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		if ft.Kind() == reflect.Slice {
			schemaKeys(ft.Elem(), p+"[]", out)
		} else {
			schemaKeys(ft, p, out)
		}
	}
}

// docRow is one row of a key table.
type docRow struct {
	state    string
	evidence string
}

var docRowRe = regexp.MustCompile("^\\| `([^`]+)` \\| (supported|refused) \\| (.+) \\|$")

func readDocRows(t *testing.T) map[string]docRow {
	t.Helper()
	data, err := os.ReadFile(docsPath)
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string]docRow{}
	for _, line := range strings.Split(string(data), "\n") {
		m := docRowRe.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		if _, dup := rows[m[1]]; dup {
			t.Errorf("%s: key %s listed twice", docsPath, m[1])
		}
		rows[m[1]] = docRow{state: m[2], evidence: strings.TrimSpace(m[3])}
	}
	return rows
}

// repoTests lists the Test functions of every _test.go file of the module.
func repoTests(t *testing.T) map[string]bool {
	t.Helper()
	re := regexp.MustCompile(`(?m)^func (Test\w+)\(`)
	tests := map[string]bool{}
	err := filepath.WalkDir("../..", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "bin" || d.Name() == ".git" || d.Name() == "node_modules") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(p, "_test.go") {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		for _, m := range re.FindAllStringSubmatch(string(b), -1) {
			tests[m[1]] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return tests
}

// TestDocsListEveryKey keeps docs/configuration.md honest: every key of
// the schema has a row and no row names a key the schema lacks; every
// supported row names tests, and every test it names exists; every
// refused row gives a reason; and for the feature gates, a key is marked
// supported exactly when Implemented lists it.
func TestDocsListEveryKey(t *testing.T) {
	rows := readDocRows(t)
	var keys []string
	schemaKeys(reflect.TypeFor[Configuration](), "", &keys)
	for _, k := range keys {
		if _, ok := rows[k]; !ok {
			t.Errorf("%s has no row for %s", docsPath, k)
		}
	}
	for k := range rows {
		if !slices.Contains(keys, k) {
			t.Errorf("%s lists %s, which is not a key of the schema", docsPath, k)
		}
	}

	tests := repoTests(t)
	testRef := regexp.MustCompile("`(Test[\\w/]*)`")
	for k, r := range rows {
		refs := testRef.FindAllStringSubmatch(r.evidence, -1)
		switch {
		case r.state == "supported" && len(refs) == 0 && r.evidence != "section":
			t.Errorf("%s is supported but names no test", k)
		case r.state == "refused" && len(r.evidence) < 10:
			t.Errorf("%s is refused without a reason", k)
		}
		for _, ref := range refs {
			name, _, _ := strings.Cut(ref[1], "/")
			if !tests[name] {
				t.Errorf("%s names %s, which is no test of the module", k, name)
			}
		}
	}

	im := Implemented()
	for _, d := range DriverNames {
		want := "refused"
		if slices.Contains(im.StorageDrivers, d) {
			want = "supported"
		}
		if got := rows["storage."+d].state; got != want {
			t.Errorf("storage.%s is %s in %s, but %s by Implemented", d, got, docsPath, want)
		}
	}
	for _, g := range gates {
		if g.value != nil {
			continue // selected by value: checked below for the cache
		}
		want := "refused"
		if slices.Contains(im.Features, g.path) {
			want = "supported"
		}
		if got := rows[g.path].state; got != want {
			t.Errorf("%s is %s in %s, but %s by Implemented", g.path, got, docsPath, want)
		}
	}
	for _, kind := range CacheKinds {
		if !slices.Contains(im.Features, "storage.cache.blobdescriptor."+kind) {
			t.Errorf("Implemented lacks the %s cache, which %s lists as supported", kind, docsPath)
		}
	}
	middleware := slices.ContainsFunc(im.Features, func(f string) bool { return strings.HasPrefix(f, "middleware.") })
	if got := rows["middleware"].state; (got == "supported") != middleware {
		t.Errorf("middleware is %s in %s, but Implemented lists middleware: %v", got, docsPath, middleware)
	}
}
