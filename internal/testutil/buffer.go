package testutil

import (
	"bytes"
	"sync"
)

// LockedBuffer is a bytes.Buffer that many goroutines may write and read
// at once: the sink of a server's logs or a child process's output, read
// by the test while the writers run.
type LockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p.
func (l *LockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// String returns everything written so far.
func (l *LockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// Len returns how many bytes were written so far.
func (l *LockedBuffer) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Len()
}

// Reset forgets everything written so far.
func (l *LockedBuffer) Reset() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.b.Reset()
}

// Collector keeps values many goroutines hand it (events a sink or a
// handler receives) for the test to take.
type Collector[T any] struct {
	mu     sync.Mutex
	values []T
}

// Add keeps vs.
func (c *Collector[T]) Add(vs ...T) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.values = append(c.values, vs...)
}

// Take returns what was added since the last Take, in order, and forgets it.
func (c *Collector[T]) Take() []T {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := c.values
	c.values = nil
	return out
}
