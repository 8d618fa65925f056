package configuration

import (
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

// EnvPrefix starts every environment variable that overrides a key.
const EnvPrefix = "REGISTRY_"

// envOverride is one REGISTRY_* variable.
type envOverride struct {
	name  string
	segs  []string
	value string
}

// appliedOverride remembers where an override landed, so that a later
// validation error at or under that path can name the variable.
type appliedOverride struct {
	name string
	path string
}

// notConfiguration lists REGISTRY_* variables that are not configuration
// keys and are skipped: the config file path read by Distribution's binary,
// and the variables Kubernetes injects for a Service whose name starts with
// "registry" (service links: FOO_SERVICE_HOST, FOO_PORT_5000_TCP_ADDR, ...).
var (
	notConfiguration = map[string]bool{"REGISTRY_CONFIGURATION_PATH": true}
	serviceLink      = regexp.MustCompile(`^[A-Z0-9_]+_(SERVICE_HOST|SERVICE_PORT(_[A-Z0-9_]+)?|PORT|PORT_[0-9]+_(TCP|UDP|SCTP)(_(PROTO|PORT|ADDR))?)$`)
)

// errNoKey reports an override that names no configuration key.
var errNoKey = errors.New("no such configuration key")

// applyEnv applies REGISTRY_* overrides to the document root. Variables are
// applied in lexical order, so a parent (REGISTRY_STORAGE) is replaced before
// its children (REGISTRY_STORAGE_S3_BUCKET) apply on top.
func applyEnv(root *yaml.Node, env []string, warn func(string)) ([]appliedOverride, error) {
	var overrides []envOverride
	for _, kv := range env {
		name, value, ok := strings.Cut(kv, "=")
		if !ok || !strings.HasPrefix(name, EnvPrefix) || len(name) == len(EnvPrefix) {
			continue
		}
		overrides = append(overrides, envOverride{
			name:  name,
			segs:  strings.Split(name[len(EnvPrefix):], "_"),
			value: value,
		})
	}
	sort.SliceStable(overrides, func(i, j int) bool { return overrides[i].name < overrides[j].name })

	var errs errorList
	var applied []appliedOverride
	t := reflect.TypeFor[Configuration]()
	for _, o := range overrides {
		if err := resolve(t, o.segs); err != nil {
			if notConfiguration[o.name] || serviceLink.MatchString(o.name) {
				if warn != nil {
					warn(fmt.Sprintf("ignoring environment variable %s: not a configuration key", o.name))
				}
				continue
			}
			errs = append(errs, &Error{Env: o.name, Msg: err.Error()})
			continue
		}
		path, err := set(root, t, o.segs, "", o.value)
		if err != nil {
			var ce *Error
			if errors.As(err, &ce) {
				ce.Env = o.name
			} else {
				err = &Error{Env: o.name, Path: path, Msg: err.Error()}
			}
			errs = append(errs, err)
			continue
		}
		applied = append(applied, appliedOverride{name: o.name, path: path})
	}
	return applied, errs.err()
}

// matchField finds the struct field named by the leading segments. Keys are
// matched case-insensitively; a key containing "_" (e.g. azure's
// copy_status_poll_max_retry) spans several segments. The longest match wins.
func matchField(t reflect.Type, segs []string) (field, int, bool) {
	var best field
	bestLen := 0
	for _, f := range fieldsOf(t) {
		parts := strings.Split(f.name, "_")
		if len(parts) > len(segs) || len(parts) <= bestLen {
			continue
		}
		if strings.EqualFold(strings.Join(segs[:len(parts)], "_"), f.name) {
			best, bestLen = f, len(parts)
		}
	}
	return best, bestLen, bestLen > 0
}

// resolve checks, on types alone, that segs names a key, so that a variable
// that names nothing changes nothing.
func resolve(t reflect.Type, segs []string) error {
	var path string
	for len(segs) > 0 {
		for t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		switch t.Kind() {
		case reflect.Struct:
			if t == durationType {
				return fmt.Errorf("%w %s", errNoKey, joinPath(path, strings.ToLower(strings.Join(segs, "."))))
			}
			f, n, ok := matchField(t, segs)
			if !ok {
				return fmt.Errorf("%w %s", errNoKey, joinPath(path, strings.ToLower(segs[0])))
			}
			path = joinPath(path, f.name)
			t = t.Field(f.index).Type
			segs = segs[n:]
		case reflect.Map:
			path = joinPath(path, strings.ToLower(segs[0]))
			t = t.Elem()
			segs = segs[1:]
		case reflect.Slice:
			if _, err := strconv.Atoi(segs[0]); err != nil {
				return fmt.Errorf("%s: list index %q is not a number", path, segs[0])
			}
			path = indexPath(path, 0)
			t = t.Elem()
			segs = segs[1:]
		case reflect.Interface:
			return nil
		default:
			return fmt.Errorf("%w %s", errNoKey, joinPath(path, strings.ToLower(strings.Join(segs, "."))))
		}
	}
	return nil
}

// set writes value at segs under n, whose Go type is t, creating missing
// mappings, and returns the key path it wrote.
func set(n *yaml.Node, t reflect.Type, segs []string, path, value string) (string, error) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if n.Kind == yaml.AliasNode {
		// Write into a copy: never through an alias into its anchor.
		*n = *deepCopy(resolveAlias(n))
	}
	if len(segs) == 0 {
		v, err := payload(t, value)
		if err != nil {
			return path, &Error{Path: path, Msg: err.Error()}
		}
		// Check the value against the field's type now, so the error
		// names the variable that carried it.
		var d decoder
		d.decode(v, reflect.New(t).Elem(), path)
		if err := d.errs.err(); err != nil {
			return path, err
		}
		*n = *v
		return path, nil
	}
	switch t.Kind() {
	case reflect.Struct:
		if t == storageType && n.Kind == yaml.ScalarNode && !isNull(n) {
			// storage: inmemory (from REGISTRY_STORAGE) gains children.
			*n = yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Content: []*yaml.Node{
				{Kind: yaml.ScalarNode, Tag: "!!str", Value: n.Value},
				{Kind: yaml.ScalarNode, Tag: "!!null"},
			}}
		}
		f, used, _ := matchField(t, segs)
		child := mappingChild(n, f.name)
		return set(child, t.Field(f.index).Type, segs[used:], joinPath(path, f.name), value)
	case reflect.Map:
		child, key := mapChild(n, segs[0])
		return set(child, t.Elem(), segs[1:], joinPath(path, key), value)
	case reflect.Slice:
		i, _ := strconv.Atoi(segs[0])
		if n.Kind != yaml.SequenceNode {
			*n = yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"}
		}
		switch {
		case i < 0 || i > len(n.Content):
			return path, &Error{Path: path, Msg: fmt.Sprintf("list index %d out of range (the list has %d elements; the next one is %d)", i, len(n.Content), len(n.Content))}
		case i == len(n.Content):
			n.Content = append(n.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null"})
		}
		return set(n.Content[i], t.Elem(), segs[1:], indexPath(path, i), value)
	case reflect.Interface:
		// Free-form (middleware options, log fields): lists by index,
		// otherwise mappings.
		if i, err := strconv.Atoi(segs[0]); err == nil && n.Kind == yaml.SequenceNode && i >= 0 && i < len(n.Content) {
			return set(n.Content[i], t, segs[1:], indexPath(path, i), value)
		}
		child, key := mapChild(n, segs[0])
		return set(child, t, segs[1:], joinPath(path, key), value)
	}
	return path, &Error{Path: path, Msg: errNoKey.Error()}
}

// mappingChild returns the value node of key in mapping n (converting n to
// an empty mapping when it is not one), adding the key when missing.
func mappingChild(n *yaml.Node, key string) *yaml.Node {
	if n.Kind != yaml.MappingNode {
		*n = yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := resolveAlias(n.Content[i])
		if k.Value == key {
			return n.Content[i+1]
		}
	}
	v := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null"}
	n.Content = append(n.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: key}, v)
	return v
}

// deepCopy copies a node tree, dropping its anchor.
func deepCopy(n *yaml.Node) *yaml.Node {
	c := *n
	c.Anchor = ""
	c.Content = make([]*yaml.Node, len(n.Content))
	for i, child := range n.Content {
		c.Content[i] = deepCopy(child)
	}
	return &c
}

// mapChild finds a map key case-insensitively, as Distribution does; a new
// key is added lower-cased. It returns the child and the key used.
func mapChild(n *yaml.Node, seg string) (*yaml.Node, string) {
	if n.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(n.Content); i += 2 {
			if k := resolveAlias(n.Content[i]); strings.EqualFold(k.Value, seg) {
				return mappingChild(n, k.Value), k.Value
			}
		}
	}
	key := strings.ToLower(seg)
	return mappingChild(n, key), key
}

// payload parses an environment value as YAML. For a string field a value
// that is not a YAML scalar (a password such as "[secret]" or "a: b") is
// taken verbatim instead of failing. A value that is not UTF-8 is refused:
// YAML cannot carry it as a string (it would render as !!binary and read
// back as its base64 text).
func payload(t reflect.Type, value string) (*yaml.Node, error) {
	if !utf8.ValidString(value) {
		return nil, errors.New("value is not valid UTF-8")
	}
	raw := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: value}
	var doc yaml.Node
	err := yaml.Unmarshal([]byte(value), &doc)
	if t.Kind() == reflect.String {
		if err != nil || len(doc.Content) == 0 || doc.Content[0].Kind != yaml.ScalarNode {
			return raw, nil //nolint:nilerr // not YAML: a string field takes the value verbatim
		}
	}
	if err != nil {
		return nil, fmt.Errorf("value is not valid YAML: %w", err)
	}
	if len(doc.Content) == 0 {
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null"}, nil
	}
	v := doc.Content[0]
	clearLines(v)
	return v, nil
}

// clearLines drops line numbers, which would point into the variable's
// value rather than the file.
func clearLines(n *yaml.Node) {
	n.Line, n.Column = 0, 0
	for _, c := range n.Content {
		clearLines(c)
	}
}

// envFor returns the variable whose override covers path, if any.
func envFor(applied []appliedOverride, path string) string {
	name := ""
	for _, a := range applied {
		if path == a.path || strings.HasPrefix(path, a.path+".") || strings.HasPrefix(path, a.path+"[") {
			name = a.name // later (more specific) overrides win
		}
	}
	return name
}
