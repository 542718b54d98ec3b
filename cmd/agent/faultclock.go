package main

import (
	"os"
	"strings"
	"sync"
	"time"
)

// FaultClockEnv names the test-only fault injection knob: a file holding a
// signed offset ("+1h", "-90m", "0s") added to the agent's wall clock. The
// fault tests use it to jump a till's clock without touching the host's
// (Go does not read time through libc, so libfaketime cannot). Unset, the
// agent uses time.Now unchanged. See docs/agent.md.
const FaultClockEnv = "PUNCHCARD_FAULT_CLOCK_FILE"

// faultClockPoll is how often the offset file is re-read.
const faultClockPoll = 100 * time.Millisecond

// faultClock is time.Now plus the offset in a file, re-read at most every
// faultClockPoll. A missing or unparsable file means no offset: the knob
// must never stop a till from selling.
type faultClock struct {
	path string
	base func() time.Time

	mu     sync.Mutex
	offset time.Duration
	readAt time.Time
}

func newFaultClock(path string) *faultClock {
	return &faultClock{path: path, base: time.Now}
}

// Now is the shifted wall clock.
func (f *faultClock) Now() time.Time {
	now := f.base()
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.readAt.IsZero() || now.Sub(f.readAt) >= faultClockPoll || now.Before(f.readAt) {
		f.offset = readOffset(f.path)
		f.readAt = now
	}
	return now.Add(f.offset)
}

func readOffset(path string) time.Duration {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	d, err := time.ParseDuration(strings.TrimSpace(string(b)))
	if err != nil {
		return 0
	}
	return d
}
