package auth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/berth-dev/berth/registryd/configuration"
)

// tokenKeys are the keys and certificates one token test run uses, all
// generated here.
type tokenKeys struct {
	rsa      *rsa.PrivateKey    // in jwks as "rsa-1"
	ed       ed25519.PrivateKey // in jwks as "ed-1"
	ecLeaf   *ecdsa.PrivateKey  // certified by ca (x5c)
	leafCert *x509.Certificate
	rsaRoot  *rsa.PrivateKey // self-signed cert in the bundle (kid = libtrust ID)
	stranger *ecdsa.PrivateKey
	strCert  *x509.Certificate // self-signed, not trusted
	dir      string
}

func newCert(t *testing.T, tmpl *x509.Certificate, pub crypto.PublicKey, parent *x509.Certificate, signer crypto.Signer) *x509.Certificate {
	t.Helper()
	if parent == nil {
		parent = tmpl
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, signer)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func certTemplate(cn string, ca bool) *x509.Certificate {
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	return &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  ca,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
	}
}

func pemCert(c *x509.Certificate) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
}

func newTokenKeys(t *testing.T) *tokenKeys {
	t.Helper()
	k := &tokenKeys{dir: t.TempDir()}
	var err error
	if k.rsa, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		t.Fatal(err)
	}
	if k.rsaRoot, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		t.Fatal(err)
	}
	if _, k.ed, err = ed25519.GenerateKey(rand.Reader); err != nil {
		t.Fatal(err)
	}
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	k.ecLeaf, _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	k.stranger, _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ca := newCert(t, certTemplate("token CA", true), caKey.Public(), nil, caKey)
	k.leafCert = newCert(t, certTemplate("token signer", false), k.ecLeaf.Public(), ca, caKey)
	rsaRootCert := newCert(t, certTemplate("rsa signer", false), k.rsaRoot.Public(), nil, k.rsaRoot)
	k.strCert = newCert(t, certTemplate("stranger", true), k.stranger.Public(), nil, k.stranger)

	bundle := append(pemCert(ca), pemCert(rsaRootCert)...)
	if err := os.WriteFile(filepath.Join(k.dir, "bundle.pem"), bundle, 0o600); err != nil {
		t.Fatal(err)
	}
	jwks, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{
		{Key: k.rsa.Public(), KeyID: "rsa-1", Algorithm: "RS256", Use: "sig"},
		{Key: k.ed.Public(), KeyID: "ed-1", Algorithm: "EdDSA", Use: "sig"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(k.dir, "jwks.json"), jwks, 0o600); err != nil {
		t.Fatal(err)
	}
	return k
}

func (k *tokenKeys) config() *configuration.TokenAuth {
	return &configuration.TokenAuth{
		Realm:          "https://auth.example.com/token",
		Service:        "registry.example.com",
		Issuer:         "test-issuer",
		RootCertBundle: filepath.Join(k.dir, "bundle.pem"),
		JWKS:           filepath.Join(k.dir, "jwks.json"),
	}
}

// tokenSpec describes one token to sign.
type tokenSpec struct {
	alg     jose.SignatureAlgorithm
	key     any
	kid     string
	x5c     []*x509.Certificate
	embed   bool
	iss     string
	aud     []string
	exp     time.Duration // from now; 0 means no exp
	nbf     time.Duration
	access  []ResourceActions
	subject string
}

func (k *tokenKeys) sign(t *testing.T, s tokenSpec) string {
	t.Helper()
	opts := (&jose.SignerOptions{EmbedJWK: s.embed}).WithType("JWT")
	if s.kid != "" {
		opts = opts.WithHeader("kid", s.kid)
	}
	if len(s.x5c) > 0 {
		var chain []string
		for _, c := range s.x5c {
			chain = append(chain, base64.StdEncoding.EncodeToString(c.Raw))
		}
		opts = opts.WithHeader("x5c", chain)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: s.alg, Key: s.key}, opts)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	std := jwt.Claims{Issuer: s.iss, Subject: s.subject, Audience: s.aud, IssuedAt: jwt.NewNumericDate(now), NotBefore: jwt.NewNumericDate(now.Add(s.nbf))}
	if s.exp != 0 {
		std.Expiry = jwt.NewNumericDate(now.Add(s.exp))
	}
	raw, err := jwt.Signed(signer).Claims(std).Claims(Claims{Access: s.access}).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func pushPull(name string) []ResourceActions {
	return []ResourceActions{{Type: "repository", Name: name, Actions: []string{"pull", "push"}}}
}

func TestToken(t *testing.T) {
	k := newTokenKeys(t)
	ctl, err := NewToken(k.config())
	if err != nil {
		t.Fatal(err)
	}
	mw := Middleware(ctl, "", nil, okHandler)
	libtrustID, err := libtrustKeyID(k.rsaRoot.Public())
	if err != nil {
		t.Fatal(err)
	}
	valid := func(mod func(*tokenSpec)) tokenSpec {
		s := tokenSpec{alg: jose.RS256, key: k.rsa, kid: "rsa-1", iss: "test-issuer", aud: []string{"registry.example.com"},
			exp: 5 * time.Minute, access: pushPull("team/app"), subject: "ci-bot"}
		if mod != nil {
			mod(&s)
		}
		return s
	}
	const realmService = `Bearer realm="https://auth.example.com/token",service="registry.example.com"`
	tests := map[string]struct {
		spec      *tokenSpec // nil: no Authorization header
		method    string
		target    string
		want      int
		challenge string // expected WWW-Authenticate when 401
	}{
		"RS256 by jwks kid": {spec: ptr(valid(nil)), method: "PUT", target: "/v2/team/app/manifests/v1", want: 200},
		"ES256 by x5c chain": {spec: ptr(valid(func(s *tokenSpec) {
			s.alg, s.key, s.kid, s.x5c = jose.ES256, k.ecLeaf, "", []*x509.Certificate{k.leafCert}
		})), method: "GET", target: "/v2/team/app/blobs/sha256:abc", want: 200},
		"EdDSA by jwks kid": {spec: ptr(valid(func(s *tokenSpec) { s.alg, s.key, s.kid = jose.EdDSA, k.ed, "ed-1" })),
			method: "PATCH", target: "/v2/team/app/blobs/uploads/u1", want: 200},
		"EdDSA by embedded trusted jwk": {spec: ptr(valid(func(s *tokenSpec) { s.alg, s.key, s.kid, s.embed = jose.EdDSA, k.ed, "", true })),
			method: "GET", target: "/v2/team/app/tags/list", want: 200},
		"RS256 by libtrust kid of a bundle cert": {spec: ptr(valid(func(s *tokenSpec) { s.key, s.kid = k.rsaRoot, libtrustID })),
			method: "GET", target: "/v2/team/app/manifests/v1", want: 200},
		"base needs only a valid token": {spec: ptr(valid(func(s *tokenSpec) { s.access = nil })), method: "GET", target: "/v2/", want: 200},
		"wildcard action": {spec: ptr(valid(func(s *tokenSpec) {
			s.access = []ResourceActions{{Type: "repository", Name: "team/app", Actions: []string{"*"}}}
		})), method: "DELETE", target: "/v2/team/app/manifests/sha256:abc", want: 200},
		"catalog": {spec: ptr(valid(func(s *tokenSpec) {
			s.access = []ResourceActions{{Type: "registry", Name: "catalog", Actions: []string{"*"}}}
		})), method: "GET", target: "/v2/_catalog", want: 200},
		"audience among several": {spec: ptr(valid(func(s *tokenSpec) { s.aud = []string{"other", "registry.example.com"} })),
			method: "GET", target: "/v2/team/app/manifests/v1", want: 200},
		"nbf within leeway": {spec: ptr(valid(func(s *tokenSpec) { s.nbf = 30 * time.Second })), method: "GET", target: "/v2/team/app/manifests/v1", want: 200},

		"no token": {method: "GET", target: "/v2/team/app/manifests/v1", want: 401,
			challenge: realmService + `,scope="repository:team/app:pull"`},
		"no token on base": {method: "GET", target: "/v2/", want: 401, challenge: realmService},
		"expired": {spec: ptr(valid(func(s *tokenSpec) { s.exp = -2 * time.Minute; s.nbf = -10 * time.Minute })),
			method: "GET", target: "/v2/team/app/manifests/v1", want: 401,
			challenge: realmService + `,scope="repository:team/app:pull",error="invalid_token"`},
		"wrong audience": {spec: ptr(valid(func(s *tokenSpec) { s.aud = []string{"other-registry"} })),
			method: "GET", target: "/v2/team/app/manifests/v1", want: 401,
			challenge: realmService + `,scope="repository:team/app:pull",error="invalid_token"`},
		"wrong issuer": {spec: ptr(valid(func(s *tokenSpec) { s.iss = "mallory" })), method: "GET", target: "/v2/team/app/manifests/v1", want: 401,
			challenge: realmService + `,scope="repository:team/app:pull",error="invalid_token"`},
		"no exp":        {spec: ptr(valid(func(s *tokenSpec) { s.exp = 0 })), method: "GET", target: "/v2/team/app/manifests/v1", want: 401},
		"not yet valid": {spec: ptr(valid(func(s *tokenSpec) { s.nbf = 10 * time.Minute })), method: "GET", target: "/v2/team/app/manifests/v1", want: 401},
		"insufficient scope: pull-only token pushes": {
			spec:   ptr(valid(func(s *tokenSpec) { s.access[0].Actions = []string{"pull"} })),
			method: "PUT", target: "/v2/team/app/manifests/v1", want: 401,
			challenge: realmService + `,scope="repository:team/app:pull,push",error="insufficient_scope"`},
		"insufficient scope: other repository": {spec: ptr(valid(nil)), method: "GET", target: "/v2/team/other/manifests/v1", want: 401,
			challenge: realmService + `,scope="repository:team/other:pull",error="insufficient_scope"`},
		"insufficient scope: delete": {spec: ptr(valid(nil)), method: "DELETE", target: "/v2/team/app/manifests/v1", want: 401,
			challenge: realmService + `,scope="repository:team/app:delete",error="insufficient_scope"`},
		"insufficient scope: mount source": {spec: ptr(valid(nil)), method: "POST", target: "/v2/team/app/blobs/uploads/?mount=sha256:abc&from=secret/repo", want: 401,
			challenge: realmService + `,scope="repository:team/app:pull,push repository:secret/repo:pull",error="insufficient_scope"`},
		"catalog needs registry scope": {spec: ptr(valid(nil)), method: "GET", target: "/v2/_catalog", want: 401,
			challenge: realmService + `,scope="registry:catalog:*",error="insufficient_scope"`},
		"unknown kid":        {spec: ptr(valid(func(s *tokenSpec) { s.kid = "nope" })), method: "GET", target: "/v2/", want: 401},
		"kid of another key": {spec: ptr(valid(func(s *tokenSpec) { s.key = k.rsaRoot })), method: "GET", target: "/v2/", want: 401},
		"untrusted embedded jwk": {spec: ptr(valid(func(s *tokenSpec) { s.alg, s.key, s.kid, s.embed = jose.ES256, k.stranger, "", true })),
			method: "GET", target: "/v2/", want: 401},
		"x5c to an untrusted root": {spec: ptr(valid(func(s *tokenSpec) {
			s.alg, s.key, s.kid, s.x5c = jose.ES256, k.stranger, "", []*x509.Certificate{k.strCert}
		})), method: "GET", target: "/v2/", want: 401},
		"x5c of another key": {spec: ptr(valid(func(s *tokenSpec) {
			s.alg, s.key, s.kid, s.x5c = jose.ES256, k.stranger, "", []*x509.Certificate{k.leafCert}
		})), method: "GET", target: "/v2/", want: 401},
		"no key named": {spec: ptr(valid(func(s *tokenSpec) { s.kid = "" })), method: "GET", target: "/v2/", want: 401},
		"garbage":      {spec: &tokenSpec{}, method: "GET", target: "/v2/", want: 401},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var set func(*http.Request)
			if tc.spec != nil {
				raw := "not.a.jwt"
				if tc.spec.key != nil {
					raw = k.sign(t, *tc.spec)
				}
				set = func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+raw) }
			}
			w := do(mw, tc.method, tc.target, set)
			if w.Code != tc.want {
				t.Fatalf("status = %d, want %d (WWW-Authenticate %q)", w.Code, tc.want, w.Header().Get("WWW-Authenticate"))
			}
			if tc.want == 200 {
				if got := w.Header().Get("X-User"); got != "ci-bot" {
					t.Errorf("user = %q, want the token subject", got)
				}
				return
			}
			if code := errorCode(t, w); code != "UNAUTHORIZED" {
				t.Errorf("code = %s", code)
			}
			got := w.Header().Get("WWW-Authenticate")
			if tc.challenge != "" && got != tc.challenge {
				t.Errorf("WWW-Authenticate =\n  %s\nwant\n  %s", got, tc.challenge)
			}
			if tc.spec != nil && !strings.Contains(got, "error=") {
				t.Errorf("a refused token's challenge has no error: %s", got)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

func TestTokenSigningAlgorithms(t *testing.T) {
	k := newTokenKeys(t)
	cfg := k.config()
	cfg.SigningAlgorithms = []string{"RS256"}
	ctl, err := NewToken(cfg)
	if err != nil {
		t.Fatal(err)
	}
	mw := Middleware(ctl, "", nil, okHandler)
	sign := func(alg jose.SignatureAlgorithm, key any, kid string) func(*http.Request) {
		raw := k.sign(t, tokenSpec{alg: alg, key: key, kid: kid, iss: "test-issuer", aud: []string{"registry.example.com"}, exp: time.Minute})
		return func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+raw) }
	}
	if c := do(mw, "GET", "/v2/", sign(jose.RS256, k.rsa, "rsa-1")).Code; c != 200 {
		t.Errorf("RS256 allowed: status %d", c)
	}
	if c := do(mw, "GET", "/v2/", sign(jose.EdDSA, k.ed, "ed-1")).Code; c != 401 {
		t.Errorf("EdDSA not in signingalgorithms: status %d", c)
	}
	if c := do(mw, "GET", "/v2/", sign(jose.PS256, k.rsa, "rsa-1")).Code; c != 401 {
		t.Errorf("PS256 not in signingalgorithms: status %d", c)
	}
}

func TestTokenAutoRedirect(t *testing.T) {
	k := newTokenKeys(t)
	cfg := k.config()
	cfg.AutoRedirect = true
	ctl, err := NewToken(cfg)
	if err != nil {
		t.Fatal(err)
	}
	mw := Middleware(ctl, "", nil, okHandler)
	w := do(mw, "GET", "http://reg.internal:5000/v2/", nil)
	if got, want := w.Header().Get("WWW-Authenticate"), `Bearer realm="https://reg.internal:5000/auth/token/",service="registry.example.com"`; got != want {
		t.Errorf("challenge = %s, want %s", got, want)
	}
	w = do(mw, "GET", "http://reg.internal/v2/", func(r *http.Request) { r.Header.Set("X-Forwarded-Proto", "http") })
	if got := w.Header().Get("WWW-Authenticate"); !strings.HasPrefix(got, `Bearer realm="http://reg.internal/auth/token/"`) {
		t.Errorf("challenge = %s", got)
	}
}

func TestNewTokenErrors(t *testing.T) {
	k := newTokenKeys(t)
	empty := filepath.Join(k.dir, "empty")
	if err := os.WriteFile(empty, []byte("{}"), 0o600); err != nil {
		t.Fatal(err)
	}
	priv, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: k.rsa, KeyID: "p"}}})
	privPath := filepath.Join(k.dir, "private.json")
	if err := os.WriteFile(privPath, priv, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := map[string]struct {
		mod  func(*configuration.TokenAuth)
		want string
	}{
		"missing bundle":    {mod: func(c *configuration.TokenAuth) { c.RootCertBundle = filepath.Join(k.dir, "nope") }, want: "auth.token.rootcertbundle"},
		"bundle not PEM":    {mod: func(c *configuration.TokenAuth) { c.RootCertBundle = empty }, want: "auth.token.rootcertbundle"},
		"jwks without keys": {mod: func(c *configuration.TokenAuth) { c.JWKS = empty }, want: "auth.token.jwks"},
		"private jwk":       {mod: func(c *configuration.TokenAuth) { c.JWKS = privPath }, want: "private key"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			cfg := k.config()
			tc.mod(cfg)
			_, err := NewToken(cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one naming %s", err, tc.want)
			}
		})
	}
}

func TestSilly(t *testing.T) {
	mw := Middleware(NewSilly("silly-realm", "silly-service"), "", nil, okHandler)
	w := do(mw, "GET", "/v2/x/manifests/v1", nil)
	if w.Code != 401 {
		t.Fatalf("no header: status %d", w.Code)
	}
	if got, want := w.Header().Get("WWW-Authenticate"), `Bearer realm="silly-realm",service="silly-service",scope="repository:x:pull"`; got != want {
		t.Errorf("challenge = %s, want %s", got, want)
	}
	if code := errorCode(t, w); code != "UNAUTHORIZED" {
		t.Errorf("code = %s", code)
	}
	if c := do(mw, "PUT", "/v2/x/manifests/v1", func(r *http.Request) { r.Header.Set("Authorization", "anything at all") }).Code; c != 200 {
		t.Errorf("with a header: status %d", c)
	}
}

func TestNewRefusesTwoProviders(t *testing.T) {
	_, err := New(&configuration.Auth{Silly: &configuration.SillyAuth{}, Htpasswd: &configuration.HtpasswdAuth{}}, Options{})
	if err == nil || !strings.HasPrefix(err.Error(), "auth:") {
		t.Fatalf("err = %v", err)
	}
}
