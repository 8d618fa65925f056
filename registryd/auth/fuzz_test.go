package auth

import (
	"crypto/ed25519"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/berth-dev/berth/registryd/configuration"
)

// FuzzParseHtpasswd checks that any htpasswd file either is refused or
// yields only entries it spells: a non-empty user without a colon, with a
// bcrypt hash, on a line of the file.
func FuzzParseHtpasswd(f *testing.F) {
	f.Add([]byte("alice:$2y$05$abcdefghijklmnopqrstuuJq6tU4H8c3W9tL7Vn2oCzXcY1aP0bQe\n# comment\n\nbob:{SHA}x\n"))
	f.Add([]byte(":$2a$x\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		users, err := parseHtpasswd(data, slog.New(slog.DiscardHandler))
		if err != nil {
			return
		}
		for user, hash := range users {
			if user == "" || strings.Contains(user, ":") {
				t.Fatalf("user %q from %q", user, data)
			}
			if !isBcrypt(string(hash)) {
				t.Fatalf("user %q has a non-bcrypt hash %q", user, hash)
			}
			if !strings.Contains(string(data), user+":"+string(hash)) {
				t.Fatalf("entry %q:%q is not in the file %q", user, hash, data)
			}
		}
	})
}

// fuzzNow is the clock of FuzzTokenVerify: tokens signed at it are valid,
// whenever the fuzzer runs.
var fuzzNow = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// FuzzTokenVerify checks that no bearer token is accepted unless the
// trusted key signed it: the only token signed here names the subject
// "fuzz-user", so an accepted token naming anyone else, or granting
// anything else, is a forgery. Any input must be refused or accepted
// without a panic.
func FuzzTokenVerify(f *testing.F) {
	seed := make([]byte, ed25519.SeedSize)
	copy(seed, "berth fuzz token key, not secret")
	key := ed25519.NewKeyFromSeed(seed)
	dir := f.TempDir()
	jwks, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: key.Public(), KeyID: "ed-1", Algorithm: "EdDSA", Use: "sig"}}})
	if err != nil {
		f.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "jwks.json"), jwks, 0o600); err != nil {
		f.Fatal(err)
	}
	tok, err := NewToken(&configuration.TokenAuth{Realm: "https://auth.test/token", Service: "registry.test", Issuer: "issuer", JWKS: filepath.Join(dir, "jwks.json")})
	if err != nil {
		f.Fatal(err)
	}
	tok.now = func() time.Time { return fuzzNow }

	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.EdDSA, Key: key}, (&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", "ed-1"))
	if err != nil {
		f.Fatal(err)
	}
	granted := []ResourceActions{{Type: "repository", Name: "lib/app", Actions: []string{"pull"}}}
	valid, err := jwt.Signed(signer).Claims(jwt.Claims{
		Issuer: "issuer", Subject: "fuzz-user", Audience: jwt.Audience{"registry.test"},
		Expiry: jwt.NewNumericDate(fuzzNow.Add(time.Hour)), NotBefore: jwt.NewNumericDate(fuzzNow.Add(-time.Minute)),
	}).Claims(Claims{Access: granted}).Serialize()
	if err != nil {
		f.Fatal(err)
	}
	if sub, _, err := tok.verify(valid); err != nil || sub != "fuzz-user" {
		f.Fatalf("the seed token is refused: %q, %v", sub, err)
	}
	f.Add(valid)
	f.Add(valid[:strings.LastIndexByte(valid, '.')+1])
	f.Fuzz(func(t *testing.T, raw string) {
		sub, access, err := tok.verify(raw)
		if err != nil {
			return
		}
		if sub != "fuzz-user" || len(access) != 1 || access[0].Name != "lib/app" || strings.Join(access[0].Actions, ",") != "pull" {
			t.Fatalf("accepted a token the key did not sign: subject %q, access %+v", sub, access)
		}
	})
}
