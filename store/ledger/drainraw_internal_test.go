package ledger

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"path/filepath"
	"reflect"
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

// TestRawRowScan: a raw query's row assigns what database/sql's Scan
// would for the destinations the drain's reads use, and refuses what it
// would refuse (NULL into a plain value).
func TestRawRowScan(t *testing.T) {
	type named string
	type count int64
	for _, tc := range []struct {
		name string
		v    any // driver value
		dest any
		want any // *dest after the scan
		err  bool
	}{
		{name: "String", v: "a", dest: new(string), want: "a"},
		{name: "StringFromBytes", v: []byte("b"), dest: new(string), want: "b"},
		{name: "Int64", v: int64(-7), dest: new(int64), want: int64(-7)},
		{name: "Int", v: int64(9), dest: new(int), want: 9},
		{name: "Bool", v: int64(1), dest: new(bool), want: true},
		{name: "BoolFalse", v: int64(0), dest: new(bool), want: false},
		{name: "Float", v: int64(2), dest: new(float64), want: 2.0},
		{name: "Bytes", v: []byte{1, 2}, dest: new([]byte), want: []byte{1, 2}},
		{name: "BytesNull", v: nil, dest: new([]byte), want: []byte(nil)},
		{name: "Any", v: int64(3), dest: new(any), want: any(int64(3))},
		{name: "NullString", v: "x", dest: new(sql.NullString), want: sql.NullString{String: "x", Valid: true}},
		{name: "NullStringNull", v: nil, dest: new(sql.NullString), want: sql.NullString{}},
		{name: "NullInt64", v: int64(4), dest: new(sql.NullInt64), want: sql.NullInt64{Int64: 4, Valid: true}},
		{name: "NamedString", v: "n", dest: new(named), want: named("n")},
		{name: "NamedInt", v: int64(5), dest: new(count), want: count(5)},
		{name: "Uint64", v: int64(6), dest: new(uint64), want: uint64(6)},
		{name: "ErrNullString", v: nil, dest: new(string), err: true},
		{name: "ErrNullInt64", v: nil, dest: new(int64), err: true},
		{name: "ErrStringToInt", v: "1", dest: new(int64), err: true},
		{name: "ErrNegativeUint", v: int64(-1), dest: new(uint64), err: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			row := rawRow{vals: []driver.Value{tc.v}}
			err := row.Scan(tc.dest)
			if (err != nil) != tc.err {
				t.Fatalf("Scan: %v, want error %v", err, tc.err)
			}
			if tc.err {
				return
			}
			if got := reflect.ValueOf(tc.dest).Elem().Interface(); !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("scanned %#v, want %#v", got, tc.want)
			}
		})
	}
	if err := (&rawRow{vals: []driver.Value{int64(1)}}).Scan(new(int64), new(int64)); err == nil {
		t.Fatal("two destinations for one column scanned")
	}
}
