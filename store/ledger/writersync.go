package ledger

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"sync/atomic"
	"time"
)

// The online writer's pipelined commit.
//
// At synchronous=FULL every commit fsyncs the WAL inside SQLite's write
// lock, and the writer goroutine waits for it before it can begin the
// next group: the disk's sync latency and the kernel's journal work for
// it (charged as system time to the writer's thread) sit on the one
// serial path of the online redeem. Instead the writer's own connection
// commits at synchronous=NORMAL (the frames are written to the WAL, not
// synced) and hands the group to the syncer goroutine, which fsyncs the
// WAL file and only then answers the group's baskets; meanwhile the
// writer records the next group, taking in the baskets that arrive until
// the sync is done (writer.more), and commits it then. The syncer takes
// every group queued behind one sync, so one fsync may cover several
// groups.
//
// What holds: no basket is answered (not a redemption, not a refusal, not
// a replayed answer) before its group's commit is on disk; groups are
// answered in commit order, and a sync covers every earlier commit (one
// file, one fsync), so an answer never depends on a later-synced group.
// The idempotency record and the basket stay in one transaction; a
// SIGKILL loses nothing committed (the frames are in the page cache).
// What changes: other connections can read a group's rows between its
// commit and its sync (about one fsync, a few ms); a power cut in that
// window loses the group, and a reader may have seen it (the baskets
// themselves were not answered). Tier announcements and the event-log
// wake are sent after the sync. A failed fsync fails the groups it was
// to cover (their callers retry under their idempotency keys) and turns
// the pipeline off for the ledger's lifetime: after a failed fsync Linux
// may report the next one clean although pages were lost.
//
// Ledgers opened at synchronous=NORMAL or OFF (the pool's setting) keep
// it: there is nothing to take off the path.

// syncQueue bounds the groups committed and waiting for their sync: the
// writer blocks past it, so that what a power cut can take stays small.
const syncQueue = 4

// syncGroup is one committed group waiting for the syncer.
type syncGroup struct {
	jobs []*job
	wal  string // the WAL file to sync
}

// writerTiming is the writer's wall time, for benchmarks and metrics
// (WriterTimes).
type writerTiming struct {
	busy   atomic.Int64 // ns recording groups, commit included
	commit atomic.Int64 // ns in COMMIT
	sync   atomic.Int64 // ns in the syncer's fsyncs
	syncs  atomic.Int64 // fsyncs made by the syncer
}

// WriterTimes reports the online writer's wall time so far: busy
// recording groups (commit included), in COMMIT, and in the syncer's
// fsyncs, with their count. A busy time close to the elapsed time means
// the writer is the bottleneck; commit over busy is the share of its
// path spent committing.
func (l *Ledger) WriterTimes() (busy, commit, sync time.Duration, syncs int64) {
	t := &l.w.timing
	return time.Duration(t.busy.Load()), time.Duration(t.commit.Load()), time.Duration(t.sync.Load()), t.syncs.Load()
}

// SetSerialCommit turns the pipelined commit off (on: every group's
// commit fsyncs in the writer, as at synchronous=FULL without it) or back
// on, from the writer's next group. For benchmarks comparing the two in
// one process, and Options.SerialCommit.
func (l *Ledger) SetSerialCommit(on bool) { l.w.serial.Store(on) }

// lowerSync sets the writer's new connection to synchronous=NORMAL when
// the pool's setting syncs at every commit and the pipeline is on, and
// learns the WAL file's path.
func (w *writer) lowerSync(ctx context.Context) {
	w.lowered, w.connSerial = false, w.serial.Load()
	if w.connSerial {
		return
	}
	var n int
	if err := w.conn.QueryRowContext(ctx, `PRAGMA synchronous`).Scan(&n); err != nil || n < 2 {
		return // NORMAL or OFF already: no fsync to move
	}
	rows, err := w.conn.QueryContext(ctx, `PRAGMA database_list`)
	if err != nil {
		return
	}
	var file string
	for rows.Next() {
		var seq int
		var name, f string
		if rows.Scan(&seq, &name, &f) == nil && name == "main" {
			file = f
		}
	}
	rows.Close()
	if file == "" || rows.Err() != nil {
		return // an in-memory database: no file to sync
	}
	if _, err := w.conn.ExecContext(ctx, `PRAGMA synchronous = NORMAL`); err != nil {
		return
	}
	w.lowered, w.poolSync, w.walPath = true, n, file+"-wal"
}

// restoreSync puts the pool's synchronous setting back on the writer's
// connection before it goes back to the pool; a connection that cannot
// have it back is closed instead.
func (w *writer) restoreSync() {
	if !w.lowered {
		return
	}
	w.lowered = false
	if _, err := w.conn.ExecContext(context.Background(), fmt.Sprintf(`PRAGMA synchronous = %d`, w.poolSync)); err != nil {
		w.conn.Raw(func(any) error { return driver.ErrBadConn }) // discarded, not pooled
	}
}

// answer wakes the callers of a group's baskets.
func (l *Ledger) answer(batch []*job) {
	for _, j := range batch {
		close(j.done)
	}
}

// runSyncer makes the groups the writer committed at synchronous=NORMAL
// durable and answers them, in order, until the writer closes syncq.
func (l *Ledger) runSyncer() {
	w := l.w
	defer close(w.synced)
	var groups []syncGroup
	for first := range w.syncq {
		groups = append(groups[:0], first)
	more:
		for {
			select {
			case g, ok := <-w.syncq:
				if !ok {
					break more
				}
				groups = append(groups, g)
			default:
				break more
			}
		}
		t0 := time.Now()
		// One fsync covers every group committed before it: the last
		// group's file (a new writer connection may name it anew).
		err := syncFile(groups[len(groups)-1].wal)
		w.timing.sync.Add(int64(time.Since(t0)))
		w.timing.syncs.Add(1)
		if err != nil {
			w.serial.Store(true) // the next fsync could lie: commit with it from now on
		}
		l.tiersCommitted()
		l.eventsCommitted() // events.go
		w.inflight.Add(-int64(len(groups)))
		select {
		case w.syncIdle <- struct{}{}: // wakes more: the writer commits its open group
		default:
		}
		for _, g := range groups {
			for _, j := range g.jobs {
				if err != nil && j.err == nil {
					j.out, j.replayed, j.err = nil, false, wrap("redeem: sync", err)
				}
			}
			l.answer(g.jobs)
		}
		clear(groups)
	}
}

// more hands the writer's open group another basket, n baskets in. While
// the previous group's fsync runs (the pipelined commit) it waits for one
// to arrive: the decisions of group N+1 are recorded while group N syncs,
// and the group grows by what arrives meanwhile instead of being
// committed at once (small groups cost more commits per basket).
// Otherwise it takes in a basket queued since the group began when the
// writer's take-in is on (takein.go). It returns nil, and the writer
// commits, when there is none, at the writer's group bound, or when the
// writer stops.
func (w *writer) more(n int) *job {
	if n >= w.group {
		return nil
	}
	if w.inflight.Load() == 0 {
		select {
		case <-w.syncIdle: // a stale wake: drop it
		default:
		}
		if !w.takeIn.on {
			return nil
		}
		select {
		case j := <-w.q:
			return j
		default:
			return nil
		}
	}
	select {
	case j := <-w.q:
		return j
	case <-w.syncIdle:
		return nil
	case <-w.stop:
		return nil
	}
}

// syncFile fsyncs the WAL file at path. A WAL that is gone was
// checkpointed into the database file and removed by the last connection
// to close, which synced both: the database file is synced again.
func syncFile(path string) error {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		f, err = os.Open(strings.TrimSuffix(path, "-wal"))
	}
	if err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
