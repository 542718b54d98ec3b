package ledger

import (
	"sync"
	"sync/atomic"
	"time"
)

// writeGate serializes this process's ledger transactions that take
// SQLite's write lock from the pool (ingest's drains and heartbeats,
// allowance grant groups and returns) before they BEGIN, so that they
// queue in Go, each starting the moment the previous one commits, rather
// than in SQLite's busy handler, which sleeps 1, 2, 5, 10 … 100 ms
// between tries: at fleet scale (hundreds of grants a second beside
// ingest's drains) those sleeps, not the work, were most of ingest's
// wall time. Writers in other processes, and the online writer on its
// own connection (basket.go), still meet SQLite's lock and its busy
// timeout as before. Held only around a transaction and never while
// waiting for a pooled connection's holder.
//
// It counts its waits and holds (GateStats), so that a stalled writer
// shows in the hub's metrics.
type writeGate struct {
	mu    sync.Mutex
	taken time.Time // under mu: when the holder took it

	waitNs, holdNs, holds, slow atomic.Int64
	buckets                     [len(GateBuckets) + 1]atomic.Int64 // holds of at most GateBuckets[i] (not cumulative); the last: longer
}

// GateBuckets are the upper bounds of GateStats.Buckets.
var GateBuckets = [...]time.Duration{time.Millisecond, 5 * time.Millisecond, 10 * time.Millisecond, 25 * time.Millisecond,
	50 * time.Millisecond, 100 * time.Millisecond, 250 * time.Millisecond, 500 * time.Millisecond, time.Second, 2500 * time.Millisecond}

// SlowGateHold is the hold of the write gate GateStats counts as slow.
const SlowGateHold = 100 * time.Millisecond

func (g *writeGate) lock() {
	t0 := time.Now()
	g.mu.Lock()
	g.taken = time.Now()
	g.waitNs.Add(int64(g.taken.Sub(t0)))
}

func (g *writeGate) unlock() {
	d := int64(time.Since(g.taken))
	g.holdNs.Add(d)
	g.holds.Add(1)
	if d >= int64(SlowGateHold) {
		g.slow.Add(1)
	}
	i := 0
	for i < len(GateBuckets) && d > int64(GateBuckets[i]) {
		i++
	}
	g.buckets[i].Add(1)
	g.mu.Unlock()
}

// GateStats are the write gate's counters since the ledger opened: how
// long this process's pooled writers (ingest's drains, grant groups,
// returns) waited for each other and held the gate (a transaction,
// commit included).
type GateStats struct {
	Holds, Slow int64         // holds, and those of SlowGateHold or more
	Wait, Hold  time.Duration // sums
	// Buckets[i] counts the holds of at most GateBuckets[i] and more
	// than the bound before it (not cumulative); the last one counts
	// the longer ones.
	Buckets [len(GateBuckets) + 1]int64
}

// GateStats returns the write gate's counters.
func (l *Ledger) GateStats() GateStats {
	g := &l.gate
	s := GateStats{Holds: g.holds.Load(), Slow: g.slow.Load(), Wait: time.Duration(g.waitNs.Load()), Hold: time.Duration(g.holdNs.Load())}
	for i := range g.buckets {
		s.Buckets[i] = g.buckets[i].Load()
	}
	return s
}

// HoldWriters holds back this process's pooled ledger writers (the
// write gate: ingest's drains, grant groups, returns) until release is
// called; the hub's background checkpointer (store.Checkpointer's
// Quiesce) finishes a round under it, so that the next writer starts the
// WAL over. The hold counts in GateStats like a transaction.
func (l *Ledger) HoldWriters() (release func()) {
	l.gate.lock()
	return l.gate.unlock
}
