package testkit

import (
	"sync"
	"time"
)

// Clock is a clock tests move by hand, safe for concurrent use.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock returns a clock at 2030-03-14 09:00 UTC: a fixed instant, so
// that expiries and days are the same on every run.
func NewClock() *Clock {
	return &Clock{t: time.Date(2030, 3, 14, 9, 0, 0, 0, time.UTC)}
}

// Now is the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock d forward.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}
