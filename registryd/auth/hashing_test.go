package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/berth-dev/berth/internal/testutil"
)

// countCompares counts bcrypt comparisons until the test ends.
func countCompares(t *testing.T) func() int {
	t.Helper()
	var mu sync.Mutex
	n := 0
	orig := compareHash
	compareHash = func(hash, password []byte) error {
		mu.Lock()
		n++
		mu.Unlock()
		return orig(hash, password)
	}
	t.Cleanup(func() { compareHash = orig })
	return func() int {
		mu.Lock()
		defer mu.Unlock()
		c := n
		n = 0
		return c
	}
}

func TestHtpasswdRemembersOnlyValidLogins(t *testing.T) {
	path := filepath.Join(t.TempDir(), "htpasswd")
	if err := os.WriteFile(path, []byte(htpasswdLine(t, "alice", "old")), 0o600); err != nil {
		t.Fatal(err)
	}
	h, err := NewHtpasswd("r", path, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	compares := countCompares(t)
	ctx := context.Background()
	steps := []struct {
		user, password string
		ok             bool
		compares       int
	}{
		{"alice", "old", true, 1},    // checked
		{"alice", "old", true, 0},    // remembered
		{"alice", "wrong", false, 1}, // a 401 always costs one comparison
		{"alice", "wrong", false, 1}, // failures are never remembered
		{"nobody", "old", false, 1},  // nor does an unknown user cost less
		{"alice", "old", true, 0},
	}
	for i, s := range steps {
		err := h.check(ctx, s.user, s.password)
		if (err == nil) != s.ok {
			t.Fatalf("step %d (%s/%s): err = %v, want ok=%v", i, s.user, s.password, err, s.ok)
		}
		if n := compares(); n != s.compares {
			t.Errorf("step %d (%s/%s): %d comparisons, want %d", i, s.user, s.password, n, s.compares)
		}
	}

	// A new file forgets every remembered login: the old password is
	// compared again, and refused.
	if err := os.WriteFile(path, []byte(htpasswdLine(t, "alice", "new")), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := h.Reload(); err != nil {
		t.Fatal(err)
	}
	if err := h.check(ctx, "alice", "old"); err == nil {
		t.Fatal("the old password still works after the file changed")
	}
	if n := compares(); n != 1 {
		t.Errorf("old password after reload: %d comparisons, want 1", n)
	}
}

// waitersOf is how many checks wait for a turn.
func waitersOf(l *hashLimiter) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.waiters)
}

func TestHashLimiterServesNewestFirstAndDropsOldest(t *testing.T) {
	l := &hashLimiter{slots: 1, queue: 2}
	if err := l.acquire(); err != nil { // the one running turn
		t.Fatal(err)
	}
	type result struct {
		name string
		err  error
	}
	results := make(chan result, 3)
	for i, name := range []string{"first", "second", "third"} {
		go func() { results <- result{name, l.acquire()} }()
		waiting := min(i+1, 2)
		testutil.Eventually(t, name+" waits", func() bool { return waitersOf(l) == waiting })
		if i == 2 {
			// The line was full: the oldest waiter was dropped.
			if r := <-results; r.name != "first" || !errors.Is(r.err, ErrBusy) {
				t.Fatalf("%s: %v, want first dropped with ErrBusy", r.name, r.err)
			}
		}
	}
	for _, want := range []string{"third", "second"} {
		l.release()
		if r := <-results; r.name != want || r.err != nil {
			t.Fatalf("turn went to %s (%v), want %s", r.name, r.err, want)
		}
	}
	l.release()
	if l.running != 0 || waitersOf(l) != 0 {
		t.Fatalf("running %d, waiters %d after every turn ended", l.running, waitersOf(l))
	}
}

func TestHtpasswdSharesConcurrentChecksOfTheSameCredentials(t *testing.T) {
	// 50 clients log in with one account at once on a fresh process: one
	// comparison serves them all, none is refused for want of a turn.
	path := filepath.Join(t.TempDir(), "htpasswd")
	if err := os.WriteFile(path, []byte(htpasswdLine(t, "robot", "pw")), 0o600); err != nil {
		t.Fatal(err)
	}
	h, err := NewHtpasswd("r", path, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	compares := countCompares(t)
	errs := make(chan error, 50)
	for range 50 {
		go func() { errs <- h.check(context.Background(), "robot", "pw") }()
	}
	for range 50 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if n := compares(); n != 1 {
		t.Errorf("%d comparisons for 50 identical logins, want 1", n)
	}
}

// TestValidLoginDuringAFlood sends 200 concurrent wrong-password requests,
// each a different guess (bcrypt at the default cost), and, once all have
// reached the password check, a first login of another user and a request
// of a user who has logged in before: both answer 200 within a second.
// Every request of the flood is answered, 401 after a comparison or 429
// with Retry-After when it got no turn.
func TestValidLoginDuringAFlood(t *testing.T) {
	const flood = 200
	path := filepath.Join(t.TempDir(), "htpasswd")
	var file string
	for _, u := range []string{"alice", "bob"} {
		hash, err := bcrypt.GenerateFromPassword([]byte(u+"-pw"), bcrypt.DefaultCost)
		if err != nil {
			t.Fatal(err)
		}
		file += u + ":" + string(hash) + "\n"
	}
	if err := os.WriteFile(path, []byte(file), 0o600); err != nil {
		t.Fatal(err)
	}
	h, err := NewHtpasswd("r", path, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(Middleware(h, "", slog.New(slog.DiscardHandler), okHandler))
	t.Cleanup(srv.Close)
	get := func(user, password string) (int, string, error) {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+"/v2/", nil)
		req.SetBasicAuth(user, password)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		var body struct {
			Errors []struct{ Code string } `json:"errors"`
		}
		raw, _ := io.ReadAll(resp.Body)
		_ = json.Unmarshal(raw, &body)
		code := resp.Header.Get("Retry-After")
		if len(body.Errors) > 0 {
			code = body.Errors[0].Code + " Retry-After=" + code
		}
		return resp.StatusCode, code, nil
	}
	if status, _, err := get("alice", "alice-pw"); err != nil || status != http.StatusOK {
		t.Fatalf("alice's first login: %d %v", status, err)
	}
	// A first login during the flood waits for at most the comparison
	// running when it arrives, then has its own: about two comparisons,
	// 0.1-0.2 s on 2 CPUs. Without the bound it waited for the whole flood
	// (5 s; 200 comparisons on one slot). The limit is 1 s, or eight
	// comparisons when other work on the machine (other test packages run
	// alongside, the race detector) makes one comparison, timed alone
	// before and after the flood, slower than an eighth of a second. Eight
	// leaves room for that timing's noise (four was exceeded by 2% in CI
	// under -race, at 816 ms a comparison) and still fails the unbounded
	// wait by a factor of ten; the order the line is served in is checked
	// by counting turns, below, not by time.
	aliceHash := []byte(strings.SplitN(strings.Split(file, "\n")[0], ":", 2)[1])
	oneComparison := func() time.Duration {
		var runs []time.Duration
		for range 3 {
			start := time.Now()
			_ = bcrypt.CompareHashAndPassword(aliceHash, []byte("x"))
			runs = append(runs, time.Since(start))
		}
		slices.Sort(runs)
		return runs[1]
	}
	comparison := oneComparison()
	type timing struct {
		who  string
		took time.Duration
	}
	var timings []timing

	before := h.hashing.arrived.Load()
	var (
		mu      sync.Mutex
		answers = map[string]int{}
		wg      sync.WaitGroup
	)
	for i := range flood {
		user := "alice"
		if i%2 == 1 {
			user = fmt.Sprintf("guess%d", i)
		}
		wg.Go(func() {
			status, code, err := get(user, fmt.Sprintf("guess-%d", i)) // every guess differs: none shares a check
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				answers["error "+err.Error()]++
				return
			}
			answers[fmt.Sprintf("%d %s", status, code)]++
		})
	}
	testutil.Eventually(t, "the whole flood reaches the password check", func() bool {
		return h.hashing.arrived.Load()-before >= flood
	})

	for _, c := range []struct{ user, why string }{{"bob", "first login"}, {"alice", "logged in before"}} {
		start, turnsBefore := time.Now(), h.hashing.granted.Load()
		status, _, err := get(c.user, c.user+"-pw")
		// Served newest first, a check waits for the comparisons running
		// when it arrives and, at worst, for those given the turns that
		// came free while its request was on the way: 2 × slots, then its
		// own. Served oldest first it would wait for the whole line
		// (hashQueuePerSlot × slots). Counted, not timed.
		if turns, most := h.hashing.granted.Load()-turnsBefore, int64(2*h.hashing.slots+1); turns > most {
			t.Errorf("%s (%s): %d password checks were given a turn while it waited, want at most %d", c.user, c.why, turns, most)
		}
		timings = append(timings, timing{c.user + " (" + c.why + ")", time.Since(start)})
		if err != nil || status != http.StatusOK {
			t.Errorf("%s (%s) during the flood: %d %v", c.user, c.why, status, err)
		}
	}
	wg.Wait()
	comparison = max(comparison, oneComparison())
	limit := max(time.Second, 8*comparison)
	for _, tm := range timings {
		t.Logf("%s: answered in %s during the flood (one comparison alone: %s)", tm.who, tm.took.Round(time.Millisecond), comparison.Round(time.Millisecond))
		if tm.took > limit {
			t.Errorf("%s answered after %s during the flood, want within %s", tm.who, tm.took.Round(time.Millisecond), limit.Round(time.Millisecond))
		}
	}
	t.Logf("flood answers: %v", answers)
	total := 0
	for k, n := range answers {
		total += n
		if k != "401 UNAUTHORIZED Retry-After=" && k != "429 TOOMANYREQUESTS Retry-After=1" {
			t.Errorf("%d flood requests answered %q", n, k)
		}
	}
	if total != flood || answers["401 UNAUTHORIZED Retry-After="] == 0 {
		t.Errorf("flood answers %v: want %d answers, some of them 401", answers, flood)
	}
}
