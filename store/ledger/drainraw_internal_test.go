package ledger

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/punchcard/punchcard/protocol"
)

// TestDrainRawWrites: the drains' hot writes without database/sql
// (drainraw.go) run inside the transaction begun on the drains'
// connection, so they commit and roll back with it; once the
// transaction's context is done they write nothing (database/sql rolls
// such a transaction back, and a statement after that would commit on
// its own); a statement that is not a hot one is left to database/sql;
// and the statements survive from one transaction to the next and are
// finalized when the connection is dropped.
func TestDrainRawWrites(t *testing.T) {
	ctx := context.Background()
	l, err := Open(ctx, filepath.Join(t.TempDir(), "hub.db"), Options{Facts: &MemFacts{}})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	count := func(agent string) int {
		t.Helper()
		var n int
		if err := l.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM ledger_agents WHERE tenant = 't1' AND agent = ?`, agent).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	// write runs upWatermarkN[1] for agent in a transaction on the drains'
	// connection with a context cancelled before (cancel) or not, and
	// commits or rolls back.
	write := func(agent string, cancel, commit bool) error {
		t.Helper()
		l.gate.lock()
		defer l.gate.unlock()
		conn, _ := l.drainConn(ctx, true)
		if conn == nil {
			t.Fatal("no drains' connection")
		}
		raw := l.rawDrain(conn)
		if raw == nil {
			t.Fatal("no raw statements on the drains' connection")
		}
		txCtx, stop := context.WithCancel(ctx)
		defer stop()
		tx, err := conn.BeginTx(txCtx, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback()
		if cancel {
			stop()
			// Until database/sql has rolled it back.
			for {
				if _, err := tx.ExecContext(ctx, `SELECT 1`); errors.Is(err, sql.ErrTxDone) {
					break
				}
				runtime.Gosched()
			}
		}
		_, ok, err := raw.exec(txCtx, ctx, l, upWatermarkN[1], []any{"t1", protocol.AgentID(agent), int64(7), int64(1)})
		if !ok {
			t.Fatal("a hot statement was not run raw")
		}
		if err != nil {
			return err
		}
		if commit {
			return tx.Commit()
		}
		return tx.Rollback()
	}
	for _, tc := range []struct {
		name           string
		cancel, commit bool
		want           int
		wantErr        error
	}{
		{name: "Commit", commit: true, want: 1},
		{name: "Rollback", want: 0},
		{name: "ErrTxDone", cancel: true, commit: true, want: 0, wantErr: errTxDone},
	} {
		t.Run(tc.name, func(t *testing.T) {
			agent := "till-" + tc.name
			err := write(agent, tc.cancel, tc.commit)
			if got := count(agent); got != tc.want {
				t.Fatalf("%d rows of %s, want %d", got, agent, tc.want)
			}
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("write: %v, want %v", err, tc.wantErr)
			}
		})
	}
	t.Run("NotHot", func(t *testing.T) {
		l.gate.lock()
		defer l.gate.unlock()
		conn, _ := l.drainConn(ctx, true)
		if _, ok, err := l.rawDrain(conn).exec(ctx, ctx, l, `DELETE FROM ledger_agents`, nil); ok || err != nil {
			t.Fatalf("a statement that is not hot ran raw: %v %v", ok, err)
		}
	})
	t.Run("Kept", func(t *testing.T) {
		l.gate.lock()
		raw := l.drains.raw
		n := len(raw.stmts)
		l.dropDrainConn()
		l.gate.unlock()
		if n != 1 || len(raw.stmts) != 0 || l.drains.raw != nil {
			t.Fatalf("%d statements kept over the transactions, %d left after the drop (want 1, 0)", n, len(raw.stmts))
		}
		if err := write("till-again", false, true); err != nil {
			t.Fatal(err)
		}
		if got := count("till-again"); got != 1 {
			t.Fatalf("%d rows after a new connection, want 1", got)
		}
	})
}
