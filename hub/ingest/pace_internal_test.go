package ingest

import (
	"context"
	"testing"
	"time"
)

func TestPacerLead(t *testing.T) {
	ms := time.Millisecond
	type drain struct {
		n int
		d time.Duration
	}
	for _, c := range []struct {
		name   string
		drains []drain
		prep   time.Duration
		n      int
		want   time.Duration // within 5 %
	}{
		{"nothing seen: at once", nil, 0, 10, 0},
		// 2 ms a commit and 0.5 ms a message: 2 + 0.5 × 40 = 22 ms, 0.9 of
		// it less 1.5 × 1 ms and 0.5 ms.
		{"a line", []drain{{4, 4 * ms}, {20, 12 * ms}, {4, 4 * ms}, {20, 12 * ms}, {12, 8 * ms}}, ms, 40, time.Duration(0.9*22e6 - 1.5e6 - 0.5e6)},
		{"one size: in proportion", []drain{{10, 10 * ms}, {10, 10 * ms}}, 0, 20, time.Duration(0.9*20e6 - 0.5e6)},
		{"preparation longer than the drain: at once", []drain{{10, 2 * ms}}, 5 * ms, 10, 0},
		{"bounded", []drain{{10, 5 * time.Second}}, 0, 10, maxLead},
	} {
		t.Run(c.name, func(t *testing.T) {
			var p pacer
			for _, d := range c.drains {
				p.applied(d.n, d.d)
			}
			for range 100 {
				p.prepared(c.prep)
			}
			got := p.lead(c.n)
			if diff := got - c.want; diff < -c.want/20 || diff > c.want/20 {
				t.Fatalf("lead(%d) = %v, want %v", c.n, got, c.want)
			}
		})
	}
}

// TestPace: the first stage's wait ends when the writer is done with
// the drain it was handed (a signal left over from an earlier drain only
// makes it check again), when the estimate is reached, or when ingest
// stops; none of the cases waits for a clock.
func TestPace(t *testing.T) {
	far := time.Now().Add(time.Hour)
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	for _, c := range []struct {
		name    string
		ctx     context.Context
		until   time.Time
		signals int // left on free before the wait
		doneAt  int // done() is true from its doneAt-th call on (0: never)
		want    bool
		calls   int // done() calls expected
	}{
		{"writer already done", context.Background(), far, 0, 1, true, 1},
		{"a left-over signal, then the writer's own", context.Background(), far, 1, 2, true, 2},
		{"estimate reached", context.Background(), time.Now(), 0, 0, true, 1},
		{"stopped", cancelled, far, 0, 0, false, 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			free := make(chan struct{}, 1)
			for range c.signals {
				free <- struct{}{}
			}
			calls := 0
			done := func() bool { calls++; return c.doneAt > 0 && calls >= c.doneAt }
			if got := pace(c.ctx, free, c.until, done); got != c.want || calls != c.calls {
				t.Fatalf("pace = %v after %d checks, want %v after %d", got, calls, c.want, c.calls)
			}
		})
	}
}
