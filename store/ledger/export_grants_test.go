package ledger

import (
	"context"
	"database/sql"
)

// What the external tests see of the grant groups (grantgroup.go) and
// the write gate (writegate.go).

// GrantTxs is the grant group transactions committed so far.
func GrantTxs(l *Ledger) int64 { return l.grants.txs.Load() }

// GrantsWaiting is the grant requests waiting for a group.
func GrantsWaiting(l *Ledger) int {
	l.grants.mu.Lock()
	defer l.grants.mu.Unlock()
	return len(l.grants.pending)
}

// HoldWriteGate takes the write gate until the returned func is called.
func HoldWriteGate(l *Ledger) (release func()) {
	l.gate.lock()
	return l.gate.unlock
}

// SetGrantGroupMax bounds the grant groups (1: a transaction per grant,
// as before group commit) until restore is called. Not safe while grants
// run.
func SetGrantGroupMax(n int) (restore func()) {
	old := maxGrantGroup
	maxGrantGroup = n
	return func() { maxGrantGroup = old }
}

// DrainSyncs is the drains committed at NORMAL, those a SyncDrains
// covered, and SyncDrains' fsyncs (drainsync.go).
func DrainSyncs(l *Ledger) (commits, synced uint64, syncs int64) {
	d := &l.drains
	return d.commits.Load(), d.synced.Load(), d.syncs.Load()
}

// The large drains' page cache (drainsync.go).
const (
	BigDrainFacts = bigDrainFacts
	DrainCacheKiB = drainCacheKiB
)

// DrainCacheSize is PRAGMA cache_size on the drains' own connection (ok
// false: no connection is kept).
func DrainCacheSize(l *Ledger) (n int64, ok bool, err error) {
	l.gate.lock()
	defer l.gate.unlock()
	c := l.drains.conn
	if c == nil {
		return 0, false, nil
	}
	err = c.QueryRowContext(context.Background(), `PRAGMA cache_size`).Scan(&n)
	return n, true, err
}

// DrainConn is the drains' own connection the ledger keeps between
// drains (nil when none is kept).
func DrainConn(l *Ledger) *sql.Conn {
	l.gate.lock()
	defer l.gate.unlock()
	return l.drains.conn
}
