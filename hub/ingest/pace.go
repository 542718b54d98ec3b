package ingest

import (
	"context"
	"sync"
	"time"
)

// When the pipeline's first stage drains the queue (issue 10, the
// fleet's ack tail).
//
// The first stage prepares drain K+1 while the writer records drain K.
// Draining the queue the moment K is handed over put every message that
// arrived during K's transaction into drain K+2: it waited for the rest
// of K, then for all of K+1's transaction, then for its own, about two
// and a half transactions. Now the first stage waits, once K is handed
// over, until K is expected to be about to finish less the expected
// preparation of the next drain (a pacer's lead), or until the writer
// says it is free, or a full drain is queued; what arrives meanwhile
// joins K+1. A message then waits about one and a half transactions and a
// preparation. The cost of a wrong estimate is bounded: too short, and
// the drain waits for the writer as before; too long, and the writer,
// free early, wakes the first stage and idles for one preparation.

// pacer estimates how long the writer takes for a drain of n messages
// (batches and heartbeats) and how long a preparation takes, from
// exponentially weighted averages of the recent drains: the duration as
// a straight line in n (a fixed part, a commit, and a part per message).
type pacer struct {
	mu           sync.Mutex
	seen         bool
	n, a, nn, na float64 // averages of n, duration (ns), n², n × duration
	prep         float64 // average preparation (ns)
}

// paceAlpha weighs the newest drain in the averages.
const paceAlpha = 0.1

// maxLead bounds a lead: the writer's free signal ends any wait sooner.
const maxLead = time.Second

// applied records a writer transaction of n messages that took d.
func (p *pacer) applied(n int, d time.Duration) {
	x, y := float64(n), float64(d)
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.seen {
		p.seen = true
		p.n, p.a, p.nn, p.na = x, y, x*x, x*y
		return
	}
	ew := func(avg *float64, v float64) { *avg += paceAlpha * (v - *avg) }
	ew(&p.n, x)
	ew(&p.a, y)
	ew(&p.nn, x*x)
	ew(&p.na, x*y)
}

// prepared records a preparation that took d.
func (p *pacer) prepared(d time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.prep += paceAlpha * (float64(d) - p.prep)
}

// lead is how long after the writer took a drain of n messages the next
// drain should be taken from the queue: the drain's expected duration
// less a margin for the next one's preparation. 0: at once.
func (p *pacer) lead(n int) time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.seen || p.n <= 0 {
		return 0
	}
	// The line through the averages: slope cov(n, d) / var(n); with too
	// little spread in n, or a line that does not fit (a negative part),
	// the duration in proportion to n.
	per, fixed := p.a/p.n, 0.0
	if v := p.nn - p.n*p.n; v > 0.25 {
		b := (p.na - p.n*p.a) / v
		if c := p.a - b*p.n; b >= 0 && c >= 0 {
			per, fixed = b, c
		}
	}
	est := fixed + per*float64(n)
	w := time.Duration(0.9*est - 1.5*p.prep - float64(500*time.Microsecond))
	return min(max(w, 0), maxLead)
}

// pace waits, before the first stage drains the queue, until the writer
// is done with the drain it was handed (done, checked on every signal on
// free), until, or until ctx ends (false). A signal left over from an
// earlier drain only makes it check again.
func pace(ctx context.Context, free <-chan struct{}, until time.Time, done func() bool) bool {
	var t *time.Timer
	for !done() {
		d := time.Until(until)
		if d <= 0 {
			break
		}
		if t == nil {
			t = time.NewTimer(d)
			defer t.Stop()
		}
		select {
		case <-free:
		case <-t.C:
			return true
		case <-ctx.Done():
			return false
		}
	}
	return ctx.Err() == nil
}
