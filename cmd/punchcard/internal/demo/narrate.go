package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
)

// Narrator prints the story: numbered steps, what happened in each, and a
// line every few seconds while something is awaited, so a store manager
// reading along always knows what the program is doing.
type Narrator struct {
	w     io.Writer
	total int
	// ProgressEvery is how often Wait reports that it is still waiting.
	ProgressEvery time.Duration

	mu sync.Mutex
	n  int
}

// NewNarrator writes to w a story of total steps.
func NewNarrator(w io.Writer, total int) *Narrator {
	return &Narrator{w: w, total: total, ProgressEvery: 2 * time.Second}
}

func (n *Narrator) printf(format string, args ...any) {
	n.mu.Lock()
	defer n.mu.Unlock()
	fmt.Fprintf(n.w, format, args...)
}

// Step starts step number i with a title.
func (n *Narrator) Step(i int, title string) {
	n.mu.Lock()
	n.n = i
	n.mu.Unlock()
	n.printf("\n[%d/%d] %s\n", i, n.total, title)
}

// Say prints one indented line of the current step.
func (n *Narrator) Say(format string, args ...any) {
	n.printf("      %s\n", indentMore(fmt.Sprintf(format, args...)))
}

// OK prints an outcome the story expected and observed.
func (n *Narrator) OK(format string, args ...any) {
	n.printf("      ✓ %s\n", indentMore(fmt.Sprintf(format, args...)))
}

// Bad prints an outcome that differs from what the story expects.
func (n *Narrator) Bad(format string, args ...any) {
	n.printf("      ✗ %s\n", indentMore(fmt.Sprintf(format, args...)))
}

// Progress prints a waiting line (for the supervisor's callbacks).
func (n *Narrator) Progress(format string, args ...any) {
	n.printf("        … %s\n", fmt.Sprintf(format, args...))
}

func indentMore(s string) string { return strings.ReplaceAll(s, "\n", "\n        ") }

// ErrWaitTimeout is returned by Wait when the condition did not hold in
// time.
var ErrWaitTimeout = errors.New("timed out")

// Wait polls cond every 100 ms until it reports done, returns an error, the
// timeout passes or ctx ends. Every ProgressEvery it prints what it is
// waiting for and the last state cond described.
func (n *Narrator) Wait(ctx context.Context, what string, timeout time.Duration, cond func(ctx context.Context) (done bool, state string, err error)) error {
	start := time.Now()
	deadline := start.Add(timeout)
	next := start.Add(n.ProgressEvery)
	var state string
	for {
		done, s, err := cond(ctx)
		if err != nil {
			return err
		}
		if done {
			return nil
		}
		state = s
		now := time.Now()
		if now.After(deadline) {
			return fmt.Errorf("%s: %w after %s (last seen: %s)", what, ErrWaitTimeout, timeout, state)
		}
		if now.After(next) {
			n.Progress("waiting for %s (%s so far; %s)", what, now.Sub(start).Round(time.Second), state)
			next = now.Add(n.ProgressEvery)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}
