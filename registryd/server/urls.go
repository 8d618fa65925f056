package server

import (
	"net/url"

	"github.com/berth-dev/berth/registryd/configuration"
)

// httpHost is http.host as a URL, nil when unset. The configuration's
// validation has already refused a host that is no absolute URL.
func httpHost(h *configuration.HTTP) *url.URL {
	if h.Host == "" {
		return nil
	}
	u, err := url.Parse(h.Host)
	if err != nil {
		return nil
	}
	return u
}
