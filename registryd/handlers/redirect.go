package handlers

import (
	"net/http"
	"strconv"
	"strings"
)

// redirectable reports whether a blob GET or HEAD may be answered with a
// redirect to the storage backend. Only a request without a Range header,
// or with one range that has a start ("bytes=N-" or "bytes=N-M", N <= M),
// is: every object store answers those as registryd would. Suffix ranges
// ("bytes=-N", which Azure Blob Storage does not support), several ranges
// and malformed ones are served by registryd itself, so a client gets the
// same answer whatever the backend.
func redirectable(r *http.Request) bool {
	rng := r.Header.Values("Range")
	switch len(rng) {
	case 0:
		return true
	case 1:
	default:
		return false
	}
	spec, ok := strings.CutPrefix(rng[0], "bytes=")
	if !ok {
		return false
	}
	first, last, ok := strings.Cut(strings.TrimSpace(spec), "-")
	if !ok || first == "" {
		return false
	}
	start, err := strconv.ParseUint(first, 10, 63)
	if err != nil {
		return false
	}
	if last == "" {
		return true
	}
	end, err := strconv.ParseUint(last, 10, 63)
	return err == nil && start <= end
}
