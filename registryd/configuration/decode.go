package configuration

import (
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.yaml.in/yaml/v3"
)

// The decoder walks a yaml.Node tree into the configuration structs by
// reflection, so that every error carries the key path (and line) it is
// about. yaml.v3's own KnownFields mode reports unknown keys by Go type name
// only, which is useless to someone editing config.yml.

var (
	durationType = reflect.TypeFor[time.Duration]()
	storageType  = reflect.TypeFor[Storage]()
)

// hints are added to unknown-key errors for keys a user plausibly carries
// over from Distribution 2.x or older documentation.
var hints = map[string]string{
	"redis.addr":         "Distribution v3 reads redis.addrs (a list)",
	"redis.pool":         "Distribution v3 reads redis.poolsize, redis.maxidleconns and redis.connmaxidletime",
	"storage.swift":      "the swift driver was removed in Distribution v3",
	"storage.oss":        "the oss driver was removed in Distribution v3",
	"storage.cloudfront": "cloudfront is a storage middleware (middleware.storage)",
	"reporting":          "reporting was removed in Distribution v3",
	"compatibility":      "compatibility (schema1) was removed in Distribution v3",
}

type field struct {
	name  string // yaml key
	index int
}

var fieldCache sync.Map // reflect.Type -> []field

// fieldsOf returns the yaml keys of a struct type.
func fieldsOf(t reflect.Type) []field {
	if f, ok := fieldCache.Load(t); ok {
		return f.([]field)
	}
	var fs []field
	for i := range t.NumField() {
		sf := t.Field(i)
		if !sf.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(sf.Tag.Get("yaml"), ",")
		if name == "" || name == "-" {
			continue
		}
		fs = append(fs, field{name: name, index: i})
	}
	fieldCache.Store(t, fs)
	return fs
}

func fieldByName(t reflect.Type, name string) (field, bool) {
	for _, f := range fieldsOf(t) {
		if f.name == name {
			return f, true
		}
	}
	return field{}, false
}

type decoder struct {
	errs errorList
}

func resolveAlias(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n == nil || (n.Kind == yaml.ScalarNode && n.Tag == "!!null")
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return fmt.Sprintf("%q", n.Value)
	}
	return "a document"
}

// decode sets v (addressable) from n. path names n in errors.
func (d *decoder) decode(n *yaml.Node, v reflect.Value, path string) {
	n = resolveAlias(n)
	if v.Kind() == reflect.Pointer {
		if isNull(n) && v.Type().Elem().Kind() != reflect.Struct {
			v.SetZero()
			return
		}
		// A pointer to a struct is a section: written at all, even with
		// no value (`inmemory:`), it is present.
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		d.decode(n, v.Elem(), path)
		return
	}
	if isNull(n) {
		v.SetZero()
		return
	}
	if v.Type() == durationType {
		d.duration(n, v, path)
		return
	}
	switch v.Kind() {
	case reflect.Struct:
		if v.Type() == storageType && n.Kind == yaml.ScalarNode {
			// REGISTRY_STORAGE=inmemory names a driver without parameters.
			n = &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Line: n.Line, Content: []*yaml.Node{
				{Kind: yaml.ScalarNode, Tag: "!!str", Value: n.Value, Line: n.Line},
				{Kind: yaml.ScalarNode, Tag: "!!null", Line: n.Line},
			}}
		}
		d.structure(n, v, path)
	case reflect.Map:
		d.mapping(n, v, path)
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			d.errs.add(path, n.Line, "expected a list, got %s", kindName(n))
			return
		}
		s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, item := range n.Content {
			d.decode(item, s.Index(i), indexPath(path, i))
		}
		v.Set(s)
	case reflect.Interface:
		var x any
		if err := n.Decode(&x); err != nil {
			d.errs.add(path, n.Line, "%v", err)
			return
		}
		if x != nil {
			v.Set(reflect.ValueOf(x))
		}
	case reflect.String:
		if n.Kind != yaml.ScalarNode {
			d.errs.add(path, n.Line, "expected a string, got %s", kindName(n))
			return
		}
		v.SetString(n.Value)
	case reflect.Bool:
		var b bool
		if n.Kind != yaml.ScalarNode || n.Decode(&b) != nil {
			d.errs.add(path, n.Line, "expected true or false, got %s", kindName(n))
			return
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		i, err := strconv.ParseInt(n.Value, 0, v.Type().Bits())
		if n.Kind != yaml.ScalarNode || n.Tag != "!!int" || err != nil {
			d.errs.add(path, n.Line, "expected an integer, got %s", kindName(n))
			return
		}
		v.SetInt(i)
	default:
		d.errs.add(path, n.Line, "unsupported type %s", v.Type())
	}
}

// duration accepts a Go duration string ("5s", "168h") or an integer number
// of nanoseconds, as the reference documents.
func (d *decoder) duration(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.ScalarNode {
		d.errs.add(path, n.Line, "expected a duration such as 10s, got %s", kindName(n))
		return
	}
	if n.Tag == "!!int" {
		i, err := strconv.ParseInt(n.Value, 0, 64)
		if err == nil {
			v.SetInt(i)
			return
		}
	}
	dur, err := time.ParseDuration(n.Value)
	if err != nil {
		d.errs.add(path, n.Line, "%q is not a duration such as 10s or 168h", n.Value)
		return
	}
	v.SetInt(int64(dur))
}

func (d *decoder) structure(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.errs.add(path, n.Line, "expected a mapping, got %s", kindName(n))
		return
	}
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := resolveAlias(n.Content[i]), n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			d.errs.add(path, k.Line, "expected a key, got %s", kindName(k))
			continue
		}
		if k.Value == "<<" {
			d.errs.add(joinPath(path, k.Value), k.Line, "merge keys are not supported")
			continue
		}
		p := joinPath(path, k.Value)
		if first, dup := seen[k.Value]; dup {
			d.errs.add(p, k.Line, "duplicate key (first at line %d)", first)
			continue
		}
		seen[k.Value] = k.Line
		f, ok := fieldByName(v.Type(), k.Value)
		if !ok {
			d.errs.add(p, k.Line, "%s", unknownKey(v.Type(), p, k.Value))
			continue
		}
		d.decode(val, v.Field(f.index), p)
	}
}

func (d *decoder) mapping(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.errs.add(path, n.Line, "expected a mapping, got %s", kindName(n))
		return
	}
	m := reflect.MakeMapWithSize(v.Type(), len(n.Content)/2)
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := resolveAlias(n.Content[i]), n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			d.errs.add(path, k.Line, "expected a key, got %s", kindName(k))
			continue
		}
		p := joinPath(path, k.Value)
		if first, dup := seen[k.Value]; dup {
			d.errs.add(p, k.Line, "duplicate key (first at line %d)", first)
			continue
		}
		seen[k.Value] = k.Line
		e := reflect.New(v.Type().Elem()).Elem()
		d.decode(val, e, p)
		m.SetMapIndex(reflect.ValueOf(k.Value).Convert(v.Type().Key()), e)
	}
	v.Set(m)
}

// unknownKey explains an unknown key, with a hint or the closest known key.
func unknownKey(t reflect.Type, path, key string) string {
	msg := "unknown key"
	if h, ok := hints[path]; ok && h != "" {
		return msg + ": " + h
	}
	if t == storageType {
		return msg + "; storage drivers are " + strings.Join(DriverNames, ", ")
	}
	best, bestDist := "", 3
	var names []string
	for _, f := range fieldsOf(t) {
		names = append(names, f.name)
		if dist := editDistance(strings.ToLower(key), f.name); dist < bestDist {
			best, bestDist = f.name, dist
		}
	}
	if best != "" {
		return fmt.Sprintf("%s (did you mean %q?)", msg, best)
	}
	sort.Strings(names)
	return fmt.Sprintf("%s; known keys are %s", msg, strings.Join(names, ", "))
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

func reflectValue(c *Configuration) reflect.Value {
	return reflect.ValueOf(c).Elem()
}
