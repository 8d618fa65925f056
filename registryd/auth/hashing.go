package auth

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"runtime"
	"sync"
	"sync/atomic"
)

// A bcrypt comparison costs tens of milliseconds of one CPU at the default
// cost, by design. Unbounded, a flood of wrong passwords shares the CPUs
// with every valid login, and all of them slow down together (200 guesses
// delayed a valid login to 5 s on 2 CPUs). So password checks are bounded:
//
//   - At most half the CPUs (GOMAXPROCS/2, at least one) run comparisons at
//     once; the other half keeps serving requests.
//   - Up to hashQueuePerSlot times as many checks wait for a turn, served
//     newest first: under a flood the newest arrival is the one whose
//     client is surely still waiting. When the line is full, the check
//     that has waited longest is refused with ErrBusy (429
//     TOOMANYREQUESTS with Retry-After): no password was compared, so it is
//     no 401.
//   - Checks of the same user and password running at the same time share
//     one comparison (50 CI jobs starting with one robot account cost one).
//   - Credentials that passed are remembered for as long as the htpasswd
//     file is unchanged (up to maxRemembered pairs, as an HMAC of user and
//     password under a key made at start; never the password itself), so
//     a client that has logged in — Docker and containerd send Basic
//     credentials with every request — skips the comparison and is not
//     held up by a flood. Only successes are remembered: every 401 costs
//     exactly one comparison, known user or not.

// ErrBusy is returned by Authorize when the password check could not get
// a turn; the middleware answers 429 TOOMANYREQUESTS with Retry-After.
var ErrBusy = errors.New("too many password checks in progress")

// hashQueuePerSlot is how many checks may wait per running one.
const hashQueuePerSlot = 8

// maxRemembered bounds the credentials remembered as valid.
const maxRemembered = 4096

// hashLimiter bounds concurrent password comparisons (see above).
type hashLimiter struct {
	slots, queue int

	mu      sync.Mutex
	running int
	waiters []chan bool // oldest first; receives true for a turn, false when dropped

	arrived atomic.Int64 // checks that asked for a turn, for tests
	granted atomic.Int64 // turns given, at once or handed over, for tests
}

func newHashLimiter() *hashLimiter {
	slots := max(1, runtime.GOMAXPROCS(0)/2)
	return &hashLimiter{slots: slots, queue: slots * hashQueuePerSlot}
}

// acquire waits for a turn. It fails with ErrBusy when dropped from a full
// line. It does not give up when a client goes away: the check may be
// shared by several requests (see Htpasswd.check), and a waiter nobody
// needs any more is the oldest, first to be dropped.
func (l *hashLimiter) acquire() error {
	l.arrived.Add(1)
	l.mu.Lock()
	if l.running < l.slots {
		l.running++
		l.granted.Add(1)
		l.mu.Unlock()
		return nil
	}
	if l.queue == 0 {
		l.mu.Unlock()
		return ErrBusy
	}
	if len(l.waiters) == l.queue {
		l.waiters[0] <- false
		l.waiters = l.waiters[1:]
	}
	ch := make(chan bool, 1)
	l.waiters = append(l.waiters, ch)
	l.mu.Unlock()
	if !<-ch {
		return ErrBusy
	}
	return nil
}

// release ends a turn, handing it to the newest waiter.
func (l *hashLimiter) release() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if n := len(l.waiters); n > 0 {
		ch := l.waiters[n-1]
		l.waiters = l.waiters[:n-1]
		l.granted.Add(1)
		ch <- true
		return
	}
	l.running--
}

// rememberedLogins are the credentials that passed since the users were
// last loaded.
type rememberedLogins struct {
	key [32]byte

	mu    sync.Mutex
	gen   uint64
	set   map[[32]byte]struct{}
	order [][32]byte // insertion order, for eviction
}

func newRememberedLogins() *rememberedLogins {
	r := &rememberedLogins{set: map[[32]byte]struct{}{}}
	if _, err := rand.Read(r.key[:]); err != nil {
		panic("auth: crypto/rand: " + err.Error())
	}
	return r
}

// id identifies a user and password pair without holding the password.
func (r *rememberedLogins) id(user, password string) [32]byte {
	m := hmac.New(sha256.New, r.key[:])
	_ = binary.Write(m, binary.BigEndian, uint64(len(user)))
	m.Write([]byte(user))
	m.Write([]byte(password))
	var out [32]byte
	m.Sum(out[:0])
	return out
}

// generation changes whenever the users are reloaded.
func (r *rememberedLogins) generation() uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.gen
}

func (r *rememberedLogins) has(id [32]byte) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, ok := r.set[id]
	return ok
}

// add remembers id unless the users were reloaded since gen was read.
func (r *rememberedLogins) add(id [32]byte, gen uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if gen != r.gen {
		return
	}
	if _, ok := r.set[id]; ok {
		return
	}
	if len(r.order) >= maxRemembered {
		delete(r.set, r.order[0])
		r.order = r.order[1:]
	}
	r.set[id] = struct{}{}
	r.order = append(r.order, id)
}

// clear forgets everything; called when the users are reloaded.
func (r *rememberedLogins) clear() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.gen++
	clear(r.set)
	r.order = nil
}
