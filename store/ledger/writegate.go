package ledger

import "sync"

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
type writeGate struct{ mu sync.Mutex }

func (g *writeGate) lock()   { g.mu.Lock() }
func (g *writeGate) unlock() { g.mu.Unlock() }
