package auth

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"golang.org/x/crypto/bcrypt"
	"golang.org/x/sync/singleflight"

	"github.com/berth-dev/berth/registryd/internal/filewatch"
)

// DefaultHtpasswdUser is the user a missing htpasswd file is provisioned
// with, as in Distribution.
const DefaultHtpasswdUser = "docker"

// Htpasswd checks HTTP Basic credentials against an htpasswd file of bcrypt
// entries (auth.htpasswd).
//
//   - Only bcrypt hashes ($2a$, $2b$, $2y$) are accepted; an entry with any
//     other hash is skipped with a log line naming the user.
//   - A missing file is created (mode 0600) with DefaultHtpasswdUser and a
//     random password, which is logged once, as Distribution prints it; it
//     is the only way to learn it.
//   - The file is read again whenever it changes on disk (Run); a file
//     that cannot be read or parsed then keeps the users already loaded.
//   - An unknown user costs a bcrypt comparison against a dummy hash, so
//     response time does not tell which users exist.
//   - Comparisons are bounded and valid logins remembered (hashing.go), so
//     a flood of wrong passwords cannot starve valid requests.
//   - A failed login is logged at info level with the name it claimed as
//     claimedUser (an untrusted string, escaped by the log handler), never
//     as a user; the access log names only authenticated users.
type Htpasswd struct {
	realm string
	path  string
	log   *slog.Logger
	watch *filewatch.Watcher

	hashing    *hashLimiter
	remembered *rememberedLogins
	inflight   singleflight.Group // identical credentials checked at once share one comparison

	mu    sync.RWMutex
	users map[string][]byte
}

// dummyHash is compared against when the user is unknown.
var dummyHash = sync.OnceValue(func() []byte {
	h, err := bcrypt.GenerateFromPassword([]byte("registryd-unknown-user"), bcrypt.DefaultCost)
	if err != nil {
		panic("auth: bcrypt: " + err.Error())
	}
	return h
})

// NewHtpasswd loads the htpasswd file at path, creating it when missing,
// and starts watching its directory.
func NewHtpasswd(realm, path string, log *slog.Logger) (*Htpasswd, error) {
	if log == nil {
		log = slog.Default()
	}
	h := &Htpasswd{realm: realm, path: path, log: log, hashing: newHashLimiter(), remembered: newRememberedLogins()}
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		if err := h.provision(); err != nil {
			return nil, fmt.Errorf("auth.htpasswd.path: %w", err)
		}
	}
	if err := h.Reload(); err != nil {
		return nil, fmt.Errorf("auth.htpasswd.path: %w", err)
	}
	w, err := filewatch.New(path)
	if err != nil {
		return nil, fmt.Errorf("auth.htpasswd.path: %w", err)
	}
	w.OnError(func(err error) { log.Warn("Watching the htpasswd file", "path", path, "error", err) })
	h.watch = w
	dummyHash() // pay for it at start, not on the first unknown user
	return h, nil
}

// provision creates a missing htpasswd file with one generated user.
func (h *Htpasswd) provision() error {
	var secret [32]byte
	if _, err := rand.Read(secret[:]); err != nil {
		return err
	}
	password := base64.RawURLEncoding.EncodeToString(secret[:])
	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.DefaultCost)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(h.path), 0o700); err != nil {
		return err
	}
	line := DefaultHtpasswdUser + ":" + string(hash) + "\n"
	if err := os.WriteFile(h.path, []byte(line), 0o600); err != nil {
		return err
	}
	h.log.Warn("htpasswd is missing, provisioning with default user",
		"path", h.path, "user", DefaultHtpasswdUser, "password", password)
	return nil
}

// Reload reads the file again; on error the users loaded before stay.
func (h *Htpasswd) Reload() error {
	data, err := os.ReadFile(h.path)
	if err != nil {
		return err
	}
	users, err := parseHtpasswd(data, h.log)
	if err != nil {
		return fmt.Errorf("%s: %w", h.path, err)
	}
	h.mu.Lock()
	h.users = users
	h.remembered.clear() // under mu: no check can pair old users with the new generation
	h.mu.Unlock()
	return nil
}

// Run reloads the file whenever it changes until ctx ends.
func (h *Htpasswd) Run(ctx context.Context) {
	h.watch.Run(ctx, func() {
		if err := h.Reload(); err != nil {
			h.log.Error("Reloading the htpasswd file failed; keeping the users loaded before", "path", h.path, "error", err)
			return
		}
		h.mu.RLock()
		n := len(h.users)
		h.mu.RUnlock()
		h.log.Info("Reloaded the htpasswd file", "path", h.path, "users", n)
	})
}

// parseHtpasswd reads "user:hash" lines; blank lines and # comments are
// skipped, so are non-bcrypt entries (logged).
func parseHtpasswd(data []byte, log *slog.Logger) (map[string][]byte, error) {
	users := map[string][]byte{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		user, hash, ok := strings.Cut(line, ":")
		if !ok || user == "" {
			return nil, fmt.Errorf("line %d: not a user:hash entry", n)
		}
		if !isBcrypt(hash) {
			log.Warn("Ignoring htpasswd entry: only bcrypt hashes are supported", "user", user, "line", n)
			continue
		}
		users[user] = []byte(hash)
	}
	return users, sc.Err()
}

func isBcrypt(hash string) bool {
	for _, p := range []string{"$2a$", "$2b$", "$2y$"} {
		if strings.HasPrefix(hash, p) {
			return true
		}
	}
	return false
}

// Authorize implements Controller: any valid user has every access.
func (h *Htpasswd) Authorize(r *http.Request, _ []Access) (*http.Request, error) {
	challenge := fmt.Sprintf("Basic realm=%q", h.realm)
	user, password, ok := r.BasicAuth()
	if !ok {
		return nil, &Challenge{Header: challenge}
	}
	switch err := h.check(r.Context(), user, password); {
	case errors.Is(err, errBadCredentials):
		h.log.InfoContext(r.Context(), "Login failed", "claimedUser", user, "remoteAddr", r.RemoteAddr)
		return nil, &Challenge{Header: challenge, Err: err}
	case err != nil:
		return nil, err
	}
	return withUser(r, user), nil
}

var errBadCredentials = errors.New("invalid username or password")

// compareHash checks a password against a bcrypt hash; a variable so tests
// can see which hash each check compares against.
var compareHash = bcrypt.CompareHashAndPassword

// check verifies a password: remembered, or by one bcrypt comparison when
// a turn is free (ErrBusy otherwise), shared with the checks of the same
// credentials running at the same time. It returns ctx's error when the
// client goes away first.
func (h *Htpasswd) check(ctx context.Context, user, password string) error {
	id := h.remembered.id(user, password)
	h.mu.RLock()
	hash, known := h.users[user]
	gen := h.remembered.generation()
	h.mu.RUnlock()
	if known && h.remembered.has(id) {
		return nil
	}
	ch := h.inflight.DoChan(string(id[:]), func() (any, error) {
		if err := h.hashing.acquire(); err != nil {
			return nil, err
		}
		defer h.hashing.release()
		if !known {
			_ = compareHash(dummyHash(), []byte(password))
			return nil, errBadCredentials
		}
		if compareHash(hash, []byte(password)) != nil {
			return nil, errBadCredentials
		}
		h.remembered.add(id, gen)
		return nil, nil
	})
	select {
	case res := <-ch:
		return res.Err
	case <-ctx.Done():
		return ctx.Err()
	}
}
