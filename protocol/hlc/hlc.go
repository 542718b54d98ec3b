// Package hlc is the agent's hybrid logical clock. Redemptions are stamped
// with it so that the hub can order one agent's facts even when the till's
// wall clock jumps backwards (NTP step, dead RTC battery) and across
// restarts: the stamp never decreases as long as the last value is persisted
// and handed back to New.
//
// A Timestamp is 64 bits: the upper 48 are Unix milliseconds, the lower 16
// a logical counter that breaks ties within one millisecond and carries the
// clock forward while the wall clock is behind.
package hlc

import (
	"sync"
	"time"
)

// Timestamp is a hybrid logical clock value: ms<<16 | logical.
type Timestamp uint64

// LogicalBits is the width of the logical counter.
const LogicalBits = 16

const logicalMask = 1<<LogicalBits - 1

// Pack builds a Timestamp from Unix milliseconds and a logical counter.
func Pack(ms int64, logical uint16) Timestamp {
	if ms < 0 {
		ms = 0
	}
	return Timestamp(uint64(ms)<<LogicalBits | uint64(logical))
}

// Millis is the physical part in Unix milliseconds.
func (t Timestamp) Millis() int64 { return int64(uint64(t) >> LogicalBits) }

// Logical is the logical counter.
func (t Timestamp) Logical() uint16 { return uint16(uint64(t) & logicalMask) }

// Time is the physical part as a time.Time.
func (t Timestamp) Time() time.Time { return time.UnixMilli(t.Millis()) }

// Clock hands out strictly increasing Timestamps. It is safe for concurrent
// use.
type Clock struct {
	mu   sync.Mutex
	last Timestamp
	now  func() time.Time
}

// New returns a clock that never goes below last (the highest value the
// previous run persisted). now is the wall clock; nil means time.Now.
func New(last Timestamp, now func() time.Time) *Clock {
	if now == nil {
		now = time.Now
	}
	return &Clock{last: last, now: now}
}

// Now returns a Timestamp greater than every one returned or observed
// before. When the wall clock is ahead of the last value the physical part
// follows it and the counter restarts; otherwise the counter increments (and
// on overflow the physical part advances one millisecond).
func (c *Clock) Now() Timestamp {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.last = next(c.last, c.now().UnixMilli())
	return c.last
}

// Observe merges a timestamp received from elsewhere (the hub) so that
// later local stamps order after it, and returns the new clock value.
func (c *Clock) Observe(remote Timestamp) Timestamp {
	c.mu.Lock()
	defer c.mu.Unlock()
	if remote > c.last {
		c.last = remote
	}
	c.last = next(c.last, c.now().UnixMilli())
	return c.last
}

// Last is the latest value handed out or observed, for persistence.
func (c *Clock) Last() Timestamp {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.last
}

func next(last Timestamp, wallMS int64) Timestamp {
	if wallMS > last.Millis() {
		return Pack(wallMS, 0)
	}
	if last.Logical() == logicalMask {
		return Pack(last.Millis()+1, 0)
	}
	return last + 1
}
