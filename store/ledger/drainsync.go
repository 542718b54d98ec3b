package ledger

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/punchcard/punchcard/protocol"
)

// Ingest's pipelined commit (with the online writer's: Options.
// SerialCommit false).
//
// At synchronous=FULL every drain's commit fsyncs the WAL inside the
// ingest writer's transaction: at fleet load that fsync was about half of
// the writer's wall time, and the next drain waited for it. With the
// pipelined commit the drains commit on a connection of their own at
// synchronous=NORMAL (the frames are written to the WAL, not synced) and
// ingest calls SyncDrains before it publishes the drain's Acks: one
// fsync of the WAL file covers every drain committed before it, and the
// writer records the next drain meanwhile. What holds: no Ack before its
// facts are on disk (an Ack is only published after a SyncDrains that
// returned nil); a SIGKILL loses nothing committed (the frames are in the
// page cache); a power cut loses at most drains not yet acknowledged,
// which their tills still hold and publish again. What changes, as for
// the online writer: other connections can read a drain's rows before
// its sync. A failed fsync is returned (ingest drops those Acks; the tills
// publish again), and every later SyncDrains fsyncs again.

// drainSync is the state of ingest's drains' connection and pipelined
// commit.
type drainSync struct {
	// Guarded by the write gate:
	checked bool // the pool's setting and the WAL file were looked up
	off     bool // nothing to take off the path: drains commit on the pool
	normal  bool // conn is at synchronous=NORMAL (the pipelined commit)
	// conn is the drains' own connection, kept from one drain to the
	// next so that its page cache stays warm: a pooled connection taken
	// per drain was most often one the readers had used meanwhile, whose
	// page cache SQLite drops when another connection wrote since its
	// last transaction, so every drain read its B-trees' pages again
	// (pread: ~6 % of the drains' CPU at 10,000 tills). A larger cache
	// than SQLite's 2,000 KiB did not pay: SQLite scans the cache's hash
	// table at the end of each write transaction. At synchronous=NORMAL
	// with the pipelined commit, at the pool's setting with the serial
	// one. nil until the first drain, after dropDrainConn.
	conn *sql.Conn
	// raw is conn's driver statements of the drains' hot writes
	// (drainraw.go); nil until the first.
	raw *rawStmts
	// bigCache: conn's page cache is drainCacheKiB for a large drain
	// (sizeDrainCache); cacheSetting is its cache_size before, to go
	// back to.
	bigCache     bool
	cacheSetting int64
	// all is applyPreparedIn's list of a drain's facts, kept from one
	// transaction to the next (a copy of every fact: ~1.5 KB a message),
	// unless it grew past maxKeptFacts.
	all []protocol.Redemption

	wal     atomic.Value  // string: the WAL file to sync
	commits atomic.Uint64 // drains committed at NORMAL
	mu      sync.Mutex    // one fsync at a time
	synced  atomic.Uint64 // commits covered by a good fsync
	syncs   atomic.Int64  // fsyncs made by SyncDrains
}

// maxKeptFacts bounds the list of a drain's facts kept for the next one:
// a drain of up to DefaultMaxRedemptionsPerTx (16,384) facts would keep
// ~7 MB.
const maxKeptFacts = 1024

// A large drain's page cache (sizeDrainCache). The trees keyed by
// customer (the journal's, the purchases', the lots') take each
// customer's rows at that customer's own leaf, so a large drain dirties
// a leaf per customer and tree: a catch-up's drain of 16,384 facts of
// 1,000 customers dirties ~11,500 pages (46 MB). In SQLite's default
// cache of 2,000 KiB (500 pages) most of them were written to the WAL
// before the commit (a spill) and read back at the customer's next fact:
// at 1M facts 2.2M reads and 3.5M writes in the drains' system calls
// against 1.0M and 2.4M with this cache (docs/operations.md, make
// bench-catchup). A drain of at least bigDrainFacts facts gets
// drainCacheKiB on the drains' own connection; smaller ones (the
// fleet's: a few facts a message) keep the connection's setting, which
// measured best for them (see drainSync.conn).
const (
	bigDrainFacts = 4096
	drainCacheKiB = 64 << 10
)

// sizeDrainCache gives the drains' own connection conn the page cache of
// a drain of n facts: drainCacheKiB from bigDrainFacts on, otherwise the
// setting it had. A pragma that fails leaves the cache as it was (the
// drain only runs slower). Called under the write gate, before the
// drain's transaction begins.
func (l *Ledger) sizeDrainCache(ctx context.Context, conn *sql.Conn, n int) {
	d := &l.drains
	if conn == nil || conn != d.conn || (n >= bigDrainFacts) == d.bigCache {
		return
	}
	if !d.bigCache {
		if err := conn.QueryRowContext(ctx, `PRAGMA cache_size`).Scan(&d.cacheSetting); err != nil {
			return
		}
		if _, err := conn.ExecContext(ctx, fmt.Sprintf(`PRAGMA cache_size = %d`, -drainCacheKiB)); err == nil {
			d.bigCache = true
		}
		return
	}
	if _, err := conn.ExecContext(ctx, fmt.Sprintf(`PRAGMA cache_size = %d`, d.cacheSetting)); err == nil {
		d.bigCache = false
	}
}

// drainConn returns the drains' own connection, kept from one drain to
// the next, and whether it is at synchronous=NORMAL for the pipelined
// commit (the caller then syncs before it acknowledges). With the serial
// commit, or when the pool is at NORMAL or OFF already or the database is
// in memory, it keeps the pool's setting. A commit that must be durable
// by itself (pipelined false) while the connection is at NORMAL runs on
// the pool: nil. nil too when no connection can be had. releaseDrainConn
// drops it after a failed drain. Called under the write gate.
func (l *Ledger) drainConn(ctx context.Context, pipelined bool) (conn *sql.Conn, normal bool) {
	d := &l.drains
	if d.conn == nil {
		d.conn, d.normal = l.openDrainConn(ctx)
	}
	if d.conn == nil || (d.normal && !pipelined) {
		return nil, false
	}
	return d.conn, d.normal
}

// openDrainConn takes the drains' own connection from the pool and sets
// it to synchronous=NORMAL for the pipelined commit.
func (l *Ledger) openDrainConn(ctx context.Context) (*sql.Conn, bool) {
	d := &l.drains
	conn, err := l.db.Conn(ctx)
	if err != nil {
		return nil, false
	}
	if l.serialCommit || d.off {
		return conn, false
	}
	if !d.checked {
		d.checked = true
		var n int
		var file string
		ok := conn.QueryRowContext(ctx, `PRAGMA synchronous`).Scan(&n) == nil && n >= 2
		if ok {
			rows, err := conn.QueryContext(ctx, `PRAGMA database_list`)
			ok = err == nil
			if ok {
				for rows.Next() {
					var seq int
					var name, f string
					if rows.Scan(&seq, &name, &f) == nil && name == "main" {
						file = f
					}
				}
				ok = rows.Close() == nil && rows.Err() == nil && file != ""
			}
		}
		if !ok {
			d.off = true
			return conn, false
		}
		d.wal.Store(file + "-wal")
	}
	if _, err := conn.ExecContext(stmtContext(ctx), `PRAGMA synchronous = NORMAL`); err != nil {
		discardConn(conn, nil)
		return nil, false
	}
	return conn, true
}

// releaseDrainConn ends a drain on conn: kept for the next drain, unless
// the drain failed (ok false), whose connection is dropped so that the
// next drain starts on a fresh one. Called under the write gate.
func (l *Ledger) releaseDrainConn(conn *sql.Conn, ok bool) {
	if !ok && conn == l.drains.conn {
		l.dropDrainConn()
	}
}

// dropDrainConn discards the drains' own connection (its settings are
// not the pool's: it is closed, not pooled). Called under the write gate,
// or when the ledger closes.
func (l *Ledger) dropDrainConn() {
	if c := l.drains.conn; c != nil {
		raw := l.drains.raw
		l.drains.conn, l.drains.raw, l.drains.bigCache = nil, nil, false
		discardConn(c, raw)
	}
}

// discardConn closes a connection taken from the pool without giving it
// back to it, and raw's statements on it first (raw nil: none).
func discardConn(conn *sql.Conn, raw *rawStmts) {
	conn.Raw(func(any) error {
		if raw != nil {
			raw.close()
		}
		return driver.ErrBadConn
	})
	conn.Close()
}

// SyncDrains makes every drain committed so far durable: with the
// pipelined commit it fsyncs the WAL unless a sync since the last commit
// did; otherwise the commits synced themselves and it returns at once.
// Ingest calls it before it publishes a commit's Acks.
func (l *Ledger) SyncDrains(ctx context.Context) error {
	d := &l.drains
	c := d.commits.Load()
	if c <= d.synced.Load() {
		return nil
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	c = d.commits.Load() // what this fsync covers (every commit before it)
	if c <= d.synced.Load() {
		return nil
	}
	path, _ := d.wal.Load().(string)
	if err := syncFile(path); err != nil {
		return wrap("sync drains", err)
	}
	d.synced.Store(c)
	d.syncs.Add(1)
	return nil
}
