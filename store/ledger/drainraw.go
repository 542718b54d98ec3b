package ledger

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
)

// The drains' writes without database/sql's per-statement garbage
// (issue 10). database/sql copies a statement's arguments into a new
// []driver.NamedValue on every Exec (40 bytes an argument: a drain's
// journal, balance and watermark upserts bind ~140), wraps a
// transaction's copy of each prepared statement in a new Stmt per
// transaction (Tx.StmtContext) and its result in another value: at
// 10,000 tills about a seventh of what the hub allocated, and a part of
// each garbage collection's work that delayed Acks. The drains run on a
// connection of their own (drainsync.go), so their hot writes
// (hotStatements) are prepared once on its driver connection, kept with
// it, and run with one argument buffer reused from statement to
// statement; reads keep database/sql's path. Everything else about the
// transaction is unchanged: the statements run inside the database/sql
// transaction that applyDrain began on that connection, which commits or
// rolls back as before.

// rawStmts are the drain connection's driver statements, with the
// argument buffer. Guarded by the write gate, as the connection is.
type rawStmts struct {
	conn  *sql.Conn
	stmts map[string]driver.Stmt
	args  []driver.NamedValue
}

// errTxDone is returned for a write of a drain whose transaction has
// ended: its context was cancelled, so database/sql has rolled it back or
// is about to. Nothing is written outside the transaction.
var errTxDone = errors.New("ledger: drain transaction ended")

// rawDrain returns the raw statements of the drains' connection conn
// (nil: none), created on first use and kept until dropDrainConn. Called
// under the write gate.
func (l *Ledger) rawDrain(conn *sql.Conn) *rawStmts {
	d := &l.drains
	if conn == nil || conn != d.conn {
		return nil
	}
	if d.raw == nil || d.raw.conn != conn {
		d.raw = &rawStmts{conn: conn, stmts: map[string]driver.Stmt{}}
	}
	return d.raw
}

// exec runs q, one of hotStatements, with args on the drains' connection,
// inside the transaction txCtx began: ok is false for any other
// statement (the caller runs it through database/sql). A transaction
// whose txCtx is done is not written to (errTxDone): database/sql rolls
// such a transaction back on its own, and a statement run after that
// would commit by itself. The check and the statement hold the
// connection's lock, which that rollback also takes, so it cannot come
// between them.
func (r *rawStmts) exec(txCtx, ctx context.Context, l *Ledger, q string, args []any) (res sql.Result, ok bool, err error) {
	if _, hot := l.prepared[q]; !hot {
		return nil, false, nil
	}
	err = r.conn.Raw(func(dc any) error {
		if err := txCtx.Err(); err != nil {
			return fmt.Errorf("%w: %w", errTxDone, err)
		}
		st, ok := r.stmts[q]
		if !ok {
			pc, ok := dc.(driver.ConnPrepareContext)
			if !ok {
				return fmt.Errorf("ledger: driver connection %T cannot prepare", dc)
			}
			var err error
			if st, err = pc.PrepareContext(ctx, q); err != nil {
				return err
			}
			r.stmts[q] = st
		}
		se, ok := st.(driver.StmtExecContext)
		if !ok {
			return fmt.Errorf("ledger: driver statement %T cannot exec", st)
		}
		nv := r.args[:0]
		for i, a := range args {
			v, err := driverValue(a)
			if err != nil {
				clear(nv)
				return fmt.Errorf("ledger: argument %d: %w", i+1, err)
			}
			nv = append(nv, driver.NamedValue{Ordinal: i + 1, Value: v})
		}
		r.args = nv
		dr, err := se.ExecContext(ctx, nv)
		clear(nv) // drop the references to the arguments
		res = dr
		return err
	})
	return res, true, err
}

// driverValue is what database/sql binds for v (without a driver's
// NamedValueChecker, which modernc's connection has none of): the driver
// types as they are, anything else (named string and integer types,
// driver.Valuer) through driver.DefaultParameterConverter.
func driverValue(v any) (driver.Value, error) {
	switch v.(type) {
	case nil, int64, float64, bool, []byte, string:
		return v, nil
	}
	return driver.DefaultParameterConverter.ConvertValue(v)
}

// close finalizes the statements. Called with their driver connection
// held (inside its Raw), under the write gate, before the connection is
// discarded.
func (r *rawStmts) close() {
	for q, st := range r.stmts {
		st.Close()
		delete(r.stmts, q)
	}
}
