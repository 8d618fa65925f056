package auth

import (
	"fmt"
	"net/http"
)

// Silly is Distribution's development-only provider: any Authorization
// header is accepted, whatever it holds; without one the client gets a
// Bearer challenge naming the realm, service and scope.
type Silly struct {
	realm, service string
}

// NewSilly returns the silly provider (auth.silly).
func NewSilly(realm, service string) *Silly { return &Silly{realm: realm, service: service} }

// Authorize implements Controller.
func (s *Silly) Authorize(r *http.Request, access []Access) (*http.Request, error) {
	if r.Header.Get("Authorization") != "" {
		return r, nil
	}
	return nil, &Challenge{Header: bearerChallenge(s.realm, s.service, access, "")}
}

// bearerChallenge is a Bearer WWW-Authenticate value per the Docker token
// specification: realm, service, scope when access is needed, and error
// when a presented token was refused.
func bearerChallenge(realm, service string, access []Access, errCode string) string {
	h := fmt.Sprintf("Bearer realm=%q,service=%q", realm, service)
	if scope := scopeParam(access); scope != "" {
		h += fmt.Sprintf(",scope=%q", scope)
	}
	if errCode != "" {
		h += fmt.Sprintf(",error=%q", errCode)
	}
	return h
}
