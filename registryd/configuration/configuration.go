package configuration

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"os"

	"go.yaml.in/yaml/v3"
)

// Options tune ParseWithOptions.
type Options struct {
	// Env holds "NAME=value" pairs; REGISTRY_* ones override keys. Nil
	// means no overrides (Parse passes os.Environ()).
	Env []string
	// Warn, when set, receives a message for each REGISTRY_* variable that
	// is skipped because it is not configuration (see the package
	// documentation).
	Warn func(msg string)
}

// Parse reads a configuration, applies REGISTRY_* overrides from the process
// environment and validates the result.
func Parse(r io.Reader) (*Configuration, error) {
	return ParseWithOptions(r, Options{Env: os.Environ()})
}

// ParseWithEnv is Parse with the environment given explicitly ("NAME=value"
// pairs, as os.Environ returns them).
func ParseWithEnv(r io.Reader, env []string) (*Configuration, error) {
	return ParseWithOptions(r, Options{Env: env})
}

// ParseWithOptions reads a configuration, applies the overrides in opts.Env
// and validates the result. Every error names the key path (and the
// environment variable, when the value came from one); several errors are
// joined.
func ParseWithOptions(r io.Reader, opts Options) (*Configuration, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("reading configuration: %w", err)
	}
	root, err := parseDocument(data)
	if err != nil {
		return nil, err
	}
	applied, err := applyEnv(root, opts.Env, opts.Warn)
	if err != nil {
		return nil, err
	}
	var d decoder
	c := new(Configuration)
	d.decode(root, reflectValue(c), "")
	if err := d.errs.err(); err != nil {
		return nil, blameEnv(err, applied)
	}
	if err := c.Validate(); err != nil {
		return nil, blameEnv(err, applied)
	}
	return c, nil
}

// Decode reads a configuration strictly (unknown keys and bad values are
// errors, as in Parse) but applies no environment overrides and does not
// validate: for tools that transform a configuration whose required values
// may still come from the environment, such as the operator's renderer.
func Decode(r io.Reader) (*Configuration, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("reading configuration: %w", err)
	}
	root, err := parseDocument(data)
	if err != nil {
		return nil, err
	}
	var d decoder
	c := new(Configuration)
	d.decode(root, reflectValue(c), "")
	if err := d.errs.err(); err != nil {
		return nil, err
	}
	return c, nil
}

// parseDocument parses exactly one YAML document whose root is a mapping.
func parseDocument(data []byte) (*yaml.Node, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	switch err := dec.Decode(&doc); {
	case errors.Is(err, io.EOF):
		// An empty file: everything must come from the environment.
		return &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}, nil
	case err != nil:
		return nil, fmt.Errorf("parsing configuration: %w", err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, &Error{Line: extra.Line, Msg: "configuration must be a single YAML document"}
	}
	root := doc.Content[0]
	if isNull(root) {
		return &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}, nil
	}
	if root.Kind != yaml.MappingNode {
		return nil, &Error{Line: root.Line, Msg: "configuration must be a mapping of sections"}
	}
	return root, nil
}

// blameEnv adds the environment variable to errors about keys it set.
func blameEnv(err error, applied []appliedOverride) error {
	if len(applied) == 0 {
		return err
	}
	errs := []error{err}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	}
	for _, e := range errs {
		var ce *Error
		if errors.As(e, &ce) && ce.Env == "" {
			ce.Env = envFor(applied, ce.Path)
		}
	}
	return err
}

// Marshal renders c as YAML: two-space indentation, keys in struct order,
// map keys sorted, zero values omitted, so equal configurations render to
// equal bytes. Parsing the output yields a configuration equal to c.
func Marshal(c *Configuration) ([]byte, error) {
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(c); err != nil {
		return nil, fmt.Errorf("marshalling configuration: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("marshalling configuration: %w", err)
	}
	return buf.Bytes(), nil
}

//go:embed default.yaml
var defaultYAML []byte

// DefaultYAML returns the configuration `registryd serve` uses when it is
// given no file: filesystem storage under DefaultRootDirectory, listening on
// :5000. Parse it with Parse to apply REGISTRY_* overrides (for example
// REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY).
func DefaultYAML() []byte {
	return bytes.Clone(defaultYAML)
}

// Default returns the parsed default configuration, without environment
// overrides.
func Default() *Configuration {
	c, err := ParseWithEnv(bytes.NewReader(defaultYAML), nil)
	if err != nil {
		panic("configuration: embedded default is invalid: " + err.Error())
	}
	return c
}
