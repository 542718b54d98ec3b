package ledger

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"sync"
	"sync/atomic"
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

// drainSync is the state of ingest's pipelined commit.
type drainSync struct {
	// Guarded by the write gate:
	checked  bool // the pool's setting and the WAL file were looked up
	off      bool // nothing to take off the path: drains commit on the pool
	poolSync int  // the pool's synchronous setting, put back after each drain

	wal     atomic.Value  // string: the WAL file to sync
	commits atomic.Uint64 // drains committed at NORMAL
	mu      sync.Mutex    // one fsync at a time
	synced  atomic.Uint64 // commits covered by a good fsync
	syncs   atomic.Int64  // fsyncs made by SyncDrains
}

// drainConn returns a pooled connection set to synchronous=NORMAL for
// one drain, or nil when drains commit on the pool as it is (serial
// commit, a pool at NORMAL or OFF already, an in-memory database).
// releaseDrainConn gives it back. Called under the write gate.
func (l *Ledger) drainConn(ctx context.Context) *sql.Conn {
	d := &l.drains
	if l.serialCommit || d.off {
		return nil
	}
	conn, err := l.db.Conn(ctx)
	if err != nil {
		return nil
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
			conn.Close()
			return nil
		}
		d.poolSync = n
		d.wal.Store(file + "-wal")
	}
	if _, err := conn.ExecContext(stmtContext(ctx), `PRAGMA synchronous = NORMAL`); err != nil {
		l.releaseDrainConn(conn)
		return nil
	}
	return conn
}

// releaseDrainConn puts the pool's synchronous setting back on a drain's
// connection and gives it back, or discards it if the setting cannot be
// put back.
func (l *Ledger) releaseDrainConn(conn *sql.Conn) {
	if _, err := conn.ExecContext(context.Background(), fmt.Sprintf(`PRAGMA synchronous = %d`, l.drains.poolSync)); err != nil {
		conn.Raw(func(any) error { return driver.ErrBadConn }) // discarded, not pooled
	}
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
