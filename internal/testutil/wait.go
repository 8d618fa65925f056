package testutil

import (
	"errors"
	"fmt"
	"testing"
	"time"
)

// The one way tests wait: poll a condition until it holds or a deadline
// passes. Tests never sleep for a fixed time hoping something happened;
// they name what they wait for, and a timeout fails with that name and
// the condition's last error.

const (
	// WaitTimeout is how long a wait lasts unless Within says otherwise:
	// generous, because the machines that run the tests are small and
	// shared, and a wait that holds returns as soon as it does.
	WaitTimeout = 15 * time.Second
	// PollInterval is how often a condition is checked unless Every says
	// otherwise.
	PollInterval = 10 * time.Millisecond
)

// WaitOption tunes Poll, Eventually and EventuallyNoError.
type WaitOption func(*waitConfig)

type waitConfig struct {
	timeout, interval time.Duration
}

// Within sets how long the wait lasts at most.
func Within(d time.Duration) WaitOption { return func(c *waitConfig) { c.timeout = d } }

// Every sets how often the condition is checked.
func Every(d time.Duration) WaitOption { return func(c *waitConfig) { c.interval = d } }

// permanentError ends a Poll at once.
type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// Permanent wraps err so that Poll returns it at once instead of checking
// again: for a condition that can no longer hold (the process being
// waited for exited).
func Permanent(err error) error { return &permanentError{err: err} }

// ErrWaitTimeout is what Poll's error wraps when the condition did not
// hold in time.
var ErrWaitTimeout = errors.New("timed out")

// Poll calls cond at once and then every interval until it returns nil
// (Poll returns nil), returns an error made with Permanent (Poll returns
// it), or the timeout passes (Poll returns an error wrapping
// ErrWaitTimeout and cond's last error).
func Poll(cond func() error, opts ...WaitOption) error {
	c := waitConfig{timeout: WaitTimeout, interval: PollInterval}
	for _, o := range opts {
		o(&c)
	}
	deadline := time.NewTimer(c.timeout)
	defer deadline.Stop()
	tick := time.NewTicker(c.interval)
	defer tick.Stop()
	for {
		err := cond()
		var permanent *permanentError
		switch {
		case err == nil:
			return nil
		case errors.As(err, &permanent):
			return permanent.err
		}
		select {
		case <-deadline.C:
			return fmt.Errorf("%w after %s: %w", ErrWaitTimeout, c.timeout, err)
		case <-tick.C:
		}
	}
}

// errNotYet is the error of a boolean condition that does not hold.
var errNotYet = errors.New("condition not met")

// Eventually fails the test unless cond returns true within the timeout.
// what names the condition in the failure ("the blob is stored").
func Eventually(t testing.TB, what string, cond func() bool, opts ...WaitOption) {
	t.Helper()
	err := Poll(func() error {
		if cond() {
			return nil
		}
		return errNotYet
	}, opts...)
	if err != nil {
		t.Fatalf("waiting until %s: %v", what, err)
	}
}

// EventuallyNoError fails the test unless f returns nil within the
// timeout; the failure shows f's last error. An error made with Permanent
// fails the test at once.
func EventuallyNoError(t testing.TB, what string, f func() error, opts ...WaitOption) {
	t.Helper()
	if err := Poll(f, opts...); err != nil {
		t.Fatalf("waiting until %s: %v", what, err)
	}
}
