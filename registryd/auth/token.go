package auth

import (
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base32"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/berth-dev/berth/registryd/configuration"
)

// Leeway is the clock skew tolerated on a token's exp, nbf and iat.
const Leeway = 60 * time.Second

// DefaultAutoRedirectPath is the realm path auth.token.autoredirect uses
// when autoredirectpath is unset (the reference's default).
const DefaultAutoRedirectPath = "/auth/token/"

// ResourceActions is one entry of a token's "access" claim.
type ResourceActions struct {
	Type    string   `json:"type"`
	Class   string   `json:"class,omitempty"`
	Name    string   `json:"name"`
	Actions []string `json:"actions"`
}

// Claims are the registry-specific claims of a token.
type Claims struct {
	Access []ResourceActions `json:"access"`
}

// Token checks bearer JWTs from an external token service, per the Docker
// token authentication specification (auth.token).
//
// The signing key is found, in this order, from: the x5c certificate chain
// in the header, verified against rootcertbundle; an embedded jwk that is
// one of the trusted keys or carries its own x5c chain verified against
// rootcertbundle; the kid, looked up among the jwks keys and the
// rootcertbundle certificates' keys (each known by its libtrust
// fingerprint, which Distribution's token servers use, and by its RFC 7638
// thumbprint). A key never comes from the token alone. The algorithm must
// be one of signingalgorithms (all of the reference's list by default), and
// the key type must fit it, so an HMAC token can only be checked with a
// symmetric jwks key.
//
// Claims: iss must equal issuer, aud must contain service, exp is required,
// exp/nbf/iat are checked with Leeway, and access must grant every action
// the request needs ("*" grants any action).
type Token struct {
	realm, service, issuer string
	autoRedirect           bool
	autoRedirectPath       string
	algs                   []jose.SignatureAlgorithm
	roots                  *x509.CertPool
	keys                   map[string]any // kid -> key
	trusted                []crypto.PublicKey
	now                    func() time.Time
}

// NewToken reads rootcertbundle and jwks and returns the token provider.
func NewToken(c *configuration.TokenAuth) (*Token, error) {
	t := &Token{
		realm:            c.Realm,
		service:          c.Service,
		issuer:           c.Issuer,
		autoRedirect:     c.AutoRedirect,
		autoRedirectPath: c.AutoRedirectPath,
		keys:             map[string]any{},
		now:              time.Now,
	}
	if t.autoRedirectPath == "" {
		t.autoRedirectPath = DefaultAutoRedirectPath
	}
	algs := c.SigningAlgorithms
	if len(algs) == 0 {
		algs = configuration.SigningAlgorithms
	}
	for _, a := range algs {
		t.algs = append(t.algs, jose.SignatureAlgorithm(a))
	}
	if c.RootCertBundle != "" {
		if err := t.loadRootCerts(c.RootCertBundle); err != nil {
			return nil, fmt.Errorf("auth.token.rootcertbundle: %w", err)
		}
	}
	if c.JWKS != "" {
		if err := t.loadJWKS(c.JWKS); err != nil {
			return nil, fmt.Errorf("auth.token.jwks: %w", err)
		}
	}
	if len(t.keys) == 0 && t.roots == nil {
		return nil, errors.New("auth.token: no trusted keys (set rootcertbundle or jwks)")
	}
	return t, nil
}

func (t *Token) loadRootCerts(path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	pool := x509.NewCertPool()
	n := 0
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		pool.AddCert(cert)
		t.trust(cert.PublicKey)
		n++
	}
	if n == 0 {
		return fmt.Errorf("%s: no PEM certificates", path)
	}
	t.roots = pool
	return nil
}

// trust adds a certificate's public key under the key IDs token servers
// use for it.
func (t *Token) trust(key crypto.PublicKey) {
	t.trusted = append(t.trusted, key)
	if id, err := libtrustKeyID(key); err == nil {
		t.keys[id] = key
	}
	if tp, err := (&jose.JSONWebKey{Key: key}).Thumbprint(crypto.SHA256); err == nil {
		t.keys[base64URL(tp)] = key
	}
}

func (t *Token) loadJWKS(path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(data, &set); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if len(set.Keys) == 0 {
		return fmt.Errorf("%s: no keys", path)
	}
	for i, k := range set.Keys {
		if !k.Valid() {
			return fmt.Errorf("%s: key %d is not valid", path, i)
		}
		if !k.IsPublic() {
			if _, symmetric := k.Key.([]byte); !symmetric {
				return fmt.Errorf("%s: key %d (%q) is a private key; publish only public keys", path, i, k.KeyID)
			}
		}
		if k.KeyID == "" {
			return fmt.Errorf("%s: key %d has no kid", path, i)
		}
		t.keys[k.KeyID] = k.Key
		if pub, ok := k.Key.(crypto.PublicKey); ok {
			if _, symmetric := k.Key.([]byte); !symmetric {
				t.trusted = append(t.trusted, pub)
			}
		}
	}
	return nil
}

// errInsufficientScope marks a valid token that does not grant enough.
var errInsufficientScope = errors.New("insufficient scope")

// Authorize implements Controller.
func (t *Token) Authorize(r *http.Request, access []Access) (*http.Request, error) {
	realm := t.realmFor(r)
	raw, ok := bearer(r)
	if !ok {
		return nil, &Challenge{Header: bearerChallenge(realm, t.service, access, "")}
	}
	sub, granted, err := t.verify(raw)
	if err != nil {
		return nil, &Challenge{Header: bearerChallenge(realm, t.service, access, "invalid_token"), Err: err}
	}
	for _, a := range access {
		if !grants(granted, a) {
			return nil, &Challenge{
				Header: bearerChallenge(realm, t.service, access, "insufficient_scope"),
				Err:    fmt.Errorf("%w: %s:%s:%s", errInsufficientScope, a.Type, a.Name, a.Action),
			}
		}
	}
	return withUser(r, sub), nil
}

func bearer(r *http.Request) (string, bool) {
	scheme, raw, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	raw = strings.TrimSpace(raw)
	return raw, raw != ""
}

// realmFor is the configured realm, or with autoredirect the token path
// on the host the client asked for (scheme from X-Forwarded-Proto, https
// otherwise), as the reference describes.
func (t *Token) realmFor(r *http.Request) string {
	if !t.autoRedirect {
		return t.realm
	}
	scheme := "https"
	if fp := r.Header.Get("X-Forwarded-Proto"); fp != "" {
		scheme = strings.TrimSpace(strings.Split(fp, ",")[0])
	}
	return scheme + "://" + r.Host + t.autoRedirectPath
}

// verify checks raw's signature and standard claims and returns its
// subject and access claim.
func (t *Token) verify(raw string) (string, []ResourceActions, error) {
	tok, err := jwt.ParseSigned(raw, t.algs)
	if err != nil {
		return "", nil, fmt.Errorf("malformed token: %w", err)
	}
	if len(tok.Headers) != 1 {
		return "", nil, errors.New("malformed token: want exactly one signature")
	}
	key, err := t.signingKey(tok.Headers[0])
	if err != nil {
		return "", nil, err
	}
	var std jwt.Claims
	var priv Claims
	if err := tok.Claims(key, &std, &priv); err != nil {
		return "", nil, fmt.Errorf("signature: %w", err)
	}
	if std.Expiry == nil {
		return "", nil, errors.New("token has no exp claim")
	}
	expected := jwt.Expected{Issuer: t.issuer, AnyAudience: jwt.Audience{t.service}, Time: t.now()}
	if err := std.ValidateWithLeeway(expected, Leeway); err != nil {
		return "", nil, err
	}
	return std.Subject, priv.Access, nil
}

// signingKey finds the trusted key a token header points at.
func (t *Token) signingKey(h jose.Header) (any, error) {
	if t.roots != nil {
		chains, err := h.Certificates(x509.VerifyOptions{Roots: t.roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}, CurrentTime: t.now()})
		switch {
		case err == nil:
			return chains[0][0].PublicKey, nil
		case !errors.Is(err, jose.ErrMissingX5cHeader):
			return nil, fmt.Errorf("x5c: %w", err)
		}
	}
	if jwk := h.JSONWebKey; jwk != nil {
		return t.embeddedKey(jwk)
	}
	if h.KeyID != "" {
		if key, ok := t.keys[h.KeyID]; ok {
			return key, nil
		}
		return nil, fmt.Errorf("unknown kid %q", h.KeyID)
	}
	return nil, errors.New("token names no key (x5c, jwk or kid)")
}

// embeddedKey accepts a header's jwk only if it is trusted already or
// carries a certificate chain to a root.
func (t *Token) embeddedKey(jwk *jose.JSONWebKey) (any, error) {
	pub, ok := jwk.Key.(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !jwk.IsPublic() {
		return nil, errors.New("jwk: not a public key")
	}
	if len(jwk.Certificates) > 0 {
		if t.roots == nil {
			return nil, errors.New("jwk: certificate chain but no rootcertbundle")
		}
		inter := x509.NewCertPool()
		for _, c := range jwk.Certificates[1:] {
			inter.AddCert(c)
		}
		leaf := jwk.Certificates[0]
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: t.roots, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}, CurrentTime: t.now()}); err != nil {
			return nil, fmt.Errorf("jwk x5c: %w", err)
		}
		if !pub.Equal(leaf.PublicKey) {
			return nil, errors.New("jwk: key does not match its certificate")
		}
		return jwk.Key, nil
	}
	if slices.ContainsFunc(t.trusted, func(k crypto.PublicKey) bool { return pub.Equal(k) }) {
		return jwk.Key, nil
	}
	return nil, errors.New("jwk: untrusted key without certificate chain")
}

// grants says whether the access claim allows a.
func grants(granted []ResourceActions, a Access) bool {
	for _, g := range granted {
		if g.Type == a.Type && g.Name == a.Name &&
			(slices.Contains(g.Actions, a.Action) || slices.Contains(g.Actions, "*")) {
			return true
		}
	}
	return false
}

// libtrustKeyID is the key ID Docker's libtrust gives a public key, which
// Distribution-era token servers put in kid: the SHA-256 of the PKIX DER
// form, truncated to 240 bits, base32 encoded, in 12 colon-separated
// groups of 4.
func libtrustKeyID(key crypto.PublicKey) (string, error) {
	der, err := x509.MarshalPKIXPublicKey(key)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(der)
	s := strings.TrimRight(base32.StdEncoding.EncodeToString(sum[:30]), "=")
	var groups []string
	for i := 0; i < len(s); i += 4 {
		groups = append(groups, s[i:min(i+4, len(s))])
	}
	return strings.Join(groups, ":"), nil
}

func base64URL(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }
