// Package testutil holds the waiting helpers every package's tests share,
// so that no test races the clock: a test waits on a condition for as
// long as the test binary may run (go test -timeout), not for a fixed
// figure that a loaded machine (two cores, -race, other suites beside it)
// can exceed. A wait that gives up says what it waited for and the last
// state it saw.
//
// It imports nothing of Punchcard's, so every package can use it.
package testutil

import (
	"os"
	"testing"
	"time"
)

// Patience is how long a test waits for a condition: until a minute before
// the test binary's own deadline (go test -timeout), leaving time to
// report; 10 minutes when the binary has none.
func Patience(tb testing.TB) time.Duration {
	if d, ok := tb.(interface{ Deadline() (time.Time, bool) }); ok {
		if t, ok := d.Deadline(); ok {
			return max(time.Until(t)-time.Minute, time.Second)
		}
	}
	return 10 * time.Minute
}

// Poll is how often Eventually tests its condition.
const Poll = 20 * time.Millisecond

// Eventually polls cond until it holds, for Patience(tb); then it fails
// the test with what it waited for and the state cond last reported.
func Eventually(tb testing.TB, what string, cond func() (ok bool, state string)) {
	tb.Helper()
	if err := Await(tb, what, cond); err != nil {
		tb.Fatal(err)
	}
}

// Until is Eventually for a condition without a state to report.
func Until(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	Eventually(tb, what, func() (bool, string) { return cond(), "" })
}

// Await is Eventually returning the failure instead of failing the test
// (for a wait inside a helper that has no testing.TB of its own to fail,
// or that must clean up first).
func Await(tb testing.TB, what string, cond func() (ok bool, state string)) error {
	return AwaitFor(Patience(tb), what, cond)
}

// AwaitFor polls cond until it holds or patience passes. Use it only where
// the patience is itself what is tested or where there is no testing.TB
// (a harness); a test waits with Eventually.
func AwaitFor(patience time.Duration, what string, cond func() (ok bool, state string)) error {
	start := time.Now()
	deadline := start.Add(patience)
	for {
		ok, state := cond()
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			if state != "" {
				state = " (last seen: " + state + ")"
			}
			return &TimeoutError{What: what, After: time.Since(start).Round(time.Millisecond), State: state}
		}
		time.Sleep(Poll)
	}
}

// TimeoutError is a wait that gave up.
type TimeoutError struct {
	What  string
	After time.Duration
	State string
}

func (e *TimeoutError) Error() string {
	return "timed out after " + e.After.String() + " waiting for " + e.What + e.State
}

// Receive waits for a value on ch for Patience(tb) and returns it; it
// fails the test, naming what, when none comes or ch is closed.
func Receive[T any](tb testing.TB, what string, ch <-chan T) T {
	tb.Helper()
	p := Patience(tb)
	t := time.NewTimer(p)
	defer t.Stop()
	select {
	case v, ok := <-ch:
		if !ok {
			tb.Fatalf("waiting for %s: the channel was closed", what)
		}
		return v
	case <-t.C:
		tb.Fatalf("timed out after %s waiting for %s", p, what)
	}
	var zero T
	return zero
}

// Closed waits for ch to be closed (a done channel) for Patience(tb); it
// fails the test, naming what, when it is not.
func Closed[T any](tb testing.TB, what string, ch <-chan T) {
	tb.Helper()
	p := Patience(tb)
	t := time.NewTimer(p)
	defer t.Stop()
	for {
		select {
		case _, ok := <-ch:
			if !ok {
				return
			}
		case <-t.C:
			tb.Fatalf("timed out after %s waiting for %s", p, what)
		}
	}
}

// Long reports whether the long runs were asked for (PUNCHCARD_LONG=1,
// make test-long; PUNCHCARD_CHAOS=1, make chaos, asks too).
func Long() bool { return os.Getenv("PUNCHCARD_LONG") != "" || os.Getenv("PUNCHCARD_CHAOS") != "" }

// Rounds is how many rounds (seeds, iterations) a long randomized test
// runs: full without the race detector and in the long runs; under -race
// in make test, short (at least 1): the same checks on fewer random
// sequences, the full count left to go test without -race and to make
// test-long.
func Rounds(full, short int) int {
	if Race && !Long() {
		return max(short, 1)
	}
	return full
}
