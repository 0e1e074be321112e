// Package enginetest holds in-memory doubles for fast engine tests: a fake
// clock and a WhatsApp gateway. The proof of anything WhatsApp-facing runs
// the real whatsmeow client against wasim; these only test engine logic.
package enginetest

import (
	"context"
	"sort"
	"sync"
	"time"
)

// Clock is a fake engine.Clock: time moves only when the test says.
type Clock struct {
	mu      sync.Mutex
	now     time.Time
	waiters []waiter
	changed chan struct{} // closed and replaced when waiters change
	asked   int           // timers requested so far
}

type waiter struct {
	at time.Time
	ch chan time.Time
}

// NewClock returns a fake clock at t.
func NewClock(t time.Time) *Clock { return &Clock{now: t, changed: make(chan struct{})} }

// Now is the fake time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// After fires when the fake time reaches now+d.
func (c *Clock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := make(chan time.Time, 1)
	if d <= 0 {
		ch <- c.now
		return ch
	}
	c.waiters = append(c.waiters, waiter{c.now.Add(d), ch})
	c.asked++
	c.signalLocked()
	return ch
}

// Asked is how many timers (for a positive duration) were requested so far.
func (c *Clock) Asked() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.asked
}

// WaitAsked waits until more than n timers were requested, or ctx ends: a
// loop that waits on the clock after each round has finished one more.
func (c *Clock) WaitAsked(ctx context.Context, n int) bool {
	for {
		c.mu.Lock()
		asked, ch := c.asked, c.changed
		c.mu.Unlock()
		if asked > n {
			return true
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return false
		}
	}
}

func (c *Clock) signalLocked() {
	close(c.changed)
	c.changed = make(chan struct{})
}

// Advance moves time forward by d and fires the timers that are due.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.setLocked(c.now.Add(d))
}

func (c *Clock) setLocked(t time.Time) {
	c.now = t
	kept := c.waiters[:0]
	for _, w := range c.waiters {
		if !w.at.After(t) {
			w.ch <- t
		} else {
			kept = append(kept, w)
		}
	}
	c.waiters = kept
	c.signalLocked()
}

// AdvanceToNext waits (up to ctx) until a timer is pending, then moves time
// to the earliest one and fires it. It returns false if ctx ended first.
func (c *Clock) AdvanceToNext(ctx context.Context) bool {
	for {
		c.mu.Lock()
		if len(c.waiters) > 0 {
			sort.Slice(c.waiters, func(i, j int) bool { return c.waiters[i].at.Before(c.waiters[j].at) })
			c.setLocked(c.waiters[0].at)
			c.mu.Unlock()
			return true
		}
		changed := c.changed
		c.mu.Unlock()
		select {
		case <-changed:
		case <-ctx.Done():
			return false
		}
	}
}
