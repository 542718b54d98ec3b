package store_test

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/punchcard/punchcard/store"
)

// walPages writes pages 4 KiB pages' worth of rows into t (about one page
// each, in transactions of 10) and returns the WAL file's size in pages
// after each transaction, through after (may be nil).
func writePages(t *testing.T, db *sql.DB, pages int, after func(i int)) {
	t.Helper()
	ctx := context.Background()
	blob := make([]byte, 3000)
	for i := 0; i < pages; i += 10 {
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		for j := 0; j < 10; j++ {
			if _, err := tx.ExecContext(ctx, `INSERT INTO t (b) VALUES (?)`, blob); err != nil {
				t.Fatal(err)
			}
		}
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
		if after != nil {
			after(i)
		}
	}
}

func walFilePages(t *testing.T, path string) int64 {
	t.Helper()
	st, err := os.Stat(path + "-wal")
	if err != nil {
		t.Fatal(err)
	}
	return st.Size() / 4096
}

func openT(t *testing.T, opts store.Options) (*sql.DB, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "t.db")
	opts.Sync = store.SyncNormal // the test is about checkpoints, not fsyncs
	db, err := store.Open(context.Background(), path, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if _, err := db.Exec(`CREATE TABLE t (id INTEGER PRIMARY KEY, b BLOB)`); err != nil {
		t.Fatal(err)
	}
	return db, path
}

// With NoAutoCheckpoint no commit checkpoints, on any pooled
// connection: the WAL keeps every frame (SQLite's default would have
// started it over near 1,000 pages).
func TestNoAutoCheckpoint(t *testing.T) {
	db, path := openT(t, store.Options{NoAutoCheckpoint: true, MaxOpenConns: 4})
	// Every connection of the pool has it off.
	ctx := context.Background()
	var conns []*sql.Conn
	for range 4 {
		c, err := db.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		var n int
		if err := c.QueryRowContext(ctx, `PRAGMA wal_autocheckpoint`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 0 {
			t.Fatalf("wal_autocheckpoint = %d on a pooled connection, want 0", n)
		}
	}
	for _, c := range conns {
		c.Close()
	}
	writePages(t, db, 3000, nil)
	if n := walFilePages(t, path); n < 3000 {
		t.Fatalf("WAL of %d pages after 3,000 pages written without checkpoints: a commit checkpointed", n)
	}

	// The default, for contrast: commits checkpoint and the WAL starts
	// over, so it stays near 1,000 pages.
	db2, path2 := openT(t, store.Options{})
	writePages(t, db2, 3000, nil)
	if n := walFilePages(t, path2); n >= 3000 {
		t.Fatalf("WAL of %d pages with SQLite's auto-checkpoint: want it started over", n)
	}
}

// A Checkpointer keeps the WAL bounded when no commit checkpoints, under
// a writer that commits without pause (holding the gate the
// checkpointer's Quiesce takes, as the ledger's writers do): its rounds
// under Quiesce let the next transaction start the WAL over, so the WAL
// holds what was written between two such rounds, not everything (a
// checkpoint beside the writer alone never catches up with it). The
// writer goes on until the WAL started over 10 times, or fails after
// 200,000 pages (a count, not a time).
func TestCheckpointerBoundsWAL(t *testing.T) {
	db, path := openT(t, store.Options{NoAutoCheckpoint: true})
	var gate sync.Mutex
	c := store.StartCheckpointer(db, store.CheckpointerOptions{Every: time.Millisecond, RestartPages: 100,
		Quiesce: func() func() { gate.Lock(); return gate.Unlock }})
	defer c.Close()
	ctx := context.Background()
	blob := make([]byte, 3000)
	pages := 0
	for c.Stats().Restarts < 10 {
		if pages > 200_000 {
			t.Fatalf("the WAL never started over 10 times in %d pages written: %+v", pages, c.Stats())
		}
		gate.Lock()
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		for range 10 {
			if _, err := tx.ExecContext(ctx, `INSERT INTO t (b) VALUES (?)`, blob); err != nil {
				t.Fatal(err)
			}
		}
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
		gate.Unlock()
		pages += 10
	}
	s := c.Stats()
	if s.Rounds == 0 || s.Frames == 0 || s.Errors != 0 {
		t.Fatalf("checkpointer stats %+v", s)
	}
	t.Logf("%d pages written, WAL file %d pages; %+v", pages, walFilePages(t, path), s)
}

// A round does not hold the writers back while a reader pins the WAL (a
// long read, such as a list of every till, began before the frames to
// copy): the copy beside the writers stops at the reader, and one under
// Quiesce could not go further, so holding the writers would only make
// them wait. It defers at most MaxDeferred rounds in a row, then holds
// them anyway; once the reader is gone, a round copies everything beside
// the writers and finishes under Quiesce. Fails on a checkpointer that
// holds the writers whenever the WAL holds RestartPages.
func TestCheckpointerDefersBehindReader(t *testing.T) {
	db, _ := openT(t, store.Options{NoAutoCheckpoint: true})
	ctx := context.Background()
	quiesced := 0
	c := store.StartCheckpointer(db, store.CheckpointerOptions{Every: time.Hour, RestartPages: 100, FinishPages: 50, MaxDeferred: 3,
		Quiesce: func() func() { quiesced++; return func() {} }})
	defer c.Close()

	writePages(t, db, 20, nil)
	reader, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer reader.Close()
	if _, err := reader.ExecContext(ctx, `BEGIN`); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := reader.QueryRowContext(ctx, `SELECT count(*) FROM t`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	writePages(t, db, 300, nil) // beyond the reader's snapshot

	round := func() store.CheckpointStats {
		t.Helper()
		if err := c.Round(ctx); err != nil {
			t.Fatal(err)
		}
		return c.Stats()
	}
	for i := 1; i <= 3; i++ {
		if s := round(); quiesced != 0 || s.Deferred != int64(i) || s.Held != 0 {
			t.Fatalf("round %d behind a reader: writers held back %d times, stats %+v; want 0 and %d deferred", i, quiesced, s, i)
		}
	}
	if s := round(); quiesced != 1 || s.Held != 1 || s.Deferred != 3 {
		t.Fatalf("round after 3 deferred: writers held back %d times, stats %+v; want once", quiesced, s)
	}

	if _, err := reader.ExecContext(ctx, `ROLLBACK`); err != nil {
		t.Fatal(err)
	}
	if s := round(); quiesced != 2 || s.Held != 2 || s.Deferred != 3 {
		t.Fatalf("round with the reader gone: writers held back %d times, stats %+v; want a second time, nothing deferred", quiesced, s)
	}
}
