package configuration

import (
	"errors"
	"fmt"
	"strings"
)

// Error is a configuration error at one key.
type Error struct {
	// Path is the key path, e.g. "storage.filesystem.rootdirectory" or
	// "notifications.endpoints[0].url"; empty for the document itself.
	Path string
	// Line is the line in the configuration file, 0 when unknown or when
	// the value came from the environment.
	Line int
	// Env is the REGISTRY_* variable the value came from, if any.
	Env string
	// Msg says what is wrong.
	Msg string
}

func (e *Error) Error() string {
	var b strings.Builder
	if e.Env != "" {
		b.WriteString(e.Env)
		b.WriteString(": ")
	}
	if e.Path != "" {
		b.WriteString(e.Path)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	if e.Line > 0 {
		fmt.Fprintf(&b, " (line %d)", e.Line)
	}
	return b.String()
}

// errorList collects errors in document order.
type errorList []error

func (l *errorList) add(path string, line int, format string, args ...any) {
	*l = append(*l, &Error{Path: path, Line: line, Msg: fmt.Sprintf(format, args...)})
}

func (l errorList) err() error {
	return errors.Join(l...)
}

// joinPath appends a key to a key path.
func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// indexPath appends a list index to a key path.
func indexPath(path string, i int) string {
	return fmt.Sprintf("%s[%d]", path, i)
}

// oneOf formats an enum violation.
func oneOf(value string, allowed []string) string {
	return fmt.Sprintf("%q is not one of %s", value, strings.Join(allowed, ", "))
}
