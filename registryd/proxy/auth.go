package proxy

import (
	"fmt"
	"net/url"
	"sync"
	"time"

	"github.com/docker/docker-credential-helpers/client"
	"github.com/google/go-containerregistry/pkg/authn"

	"github.com/berth-dev/berth/registryd/configuration"
)

// Authenticator returns what answers upstream's authentication challenge
// for the proxy section: the credentials of proxy.exec's helper, or
// proxy.username and proxy.password, or nil (anonymous) without either.
func Authenticator(p *configuration.Proxy) (authn.Authenticator, error) {
	if p.Exec != nil {
		u, err := url.Parse(p.RemoteURL)
		if err != nil {
			return nil, fmt.Errorf("proxy.remoteurl: %w", err)
		}
		return NewExecAuthenticator(p.Exec.Command, u.Host, p.Exec.Lifetime), nil
	}
	if p.Username != "" || p.Password != "" {
		return &authn.Basic{Username: p.Username, Password: p.Password}, nil
	}
	return nil, nil
}

// execAuthenticator runs a Docker credential helper (proxy.exec.command)
// as Distribution does: `<command> get` with the upstream host on stdin,
// printing {"Username": ..., "Secret": ...}. The credentials are reused
// for lifetime: with no lifetime they are fetched once, with 0 for every
// upstream authentication (token request or Basic request), as
// Distribution's exec credentials do.
type execAuthenticator struct {
	helper   client.ProgramFunc
	command  string
	host     string
	lifetime *time.Duration
	now      func() time.Time

	mu     sync.Mutex
	creds  *authn.AuthConfig
	expiry time.Time
}

// NewExecAuthenticator returns the credentials of the helper command for
// host, reused for lifetime (see execAuthenticator).
func NewExecAuthenticator(command, host string, lifetime *time.Duration) authn.Authenticator {
	return &execAuthenticator{helper: client.NewShellProgramFunc(command), command: command, host: host, lifetime: lifetime, now: time.Now}
}

func (e *execAuthenticator) Authorization() (*authn.AuthConfig, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	now := e.now()
	if e.creds != nil && (e.lifetime == nil || now.Before(e.expiry)) {
		return e.creds, nil
	}
	c, err := client.Get(e.helper, e.host)
	if err != nil {
		return nil, fmt.Errorf("proxy.exec.command %s: %w", e.command, err)
	}
	e.creds = &authn.AuthConfig{Username: c.Username, Password: c.Secret}
	if e.lifetime != nil && *e.lifetime > 0 {
		e.expiry = now.Add(*e.lifetime)
	}
	return e.creds, nil
}
