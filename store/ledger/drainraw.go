package ledger

import (
	"bytes"
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"reflect"
)

// The drains' writes without database/sql's per-statement garbage
// (issue 10). database/sql copies a statement's arguments into a new
// []driver.NamedValue on every Exec (40 bytes an argument: a drain's
// journal, balance and watermark upserts bind ~140), wraps a
// transaction's copy of each prepared statement in a new Stmt per
// transaction (Tx.StmtContext) and its result in another value: at
// 10,000 tills about a seventh of what the hub allocated, and a part of
// each garbage collection's work that delayed Acks. The drains run on a
// connection of their own (drainsync.go), so their hot statements
// (hotStatements: the writes, and the reads of state.queryRow and
// queryRows, whose rows are scanned by rawRow) are prepared once on its
// driver connection, kept with it, and run with one argument buffer
// reused from statement to statement. Everything else about the
// transaction is unchanged: the statements run inside the database/sql
// transaction that applyDrain began on that connection, which commits or
// rolls back as before.

// rawStmts are the drain connection's driver statements, with the
// argument buffer. Guarded by the write gate, as the connection is.
type rawStmts struct {
	conn  *sql.Conn
	stmts map[string]driver.Stmt
	args  []driver.NamedValue
	row   rawRow
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
		st, err := r.stmt(txCtx, ctx, dc, q)
		if err != nil {
			return err
		}
		se, ok := st.(driver.StmtExecContext)
		if !ok {
			return fmt.Errorf("ledger: driver statement %T cannot exec", st)
		}
		nv, err := r.bind(args)
		if err != nil {
			return err
		}
		dr, err := se.ExecContext(ctx, nv)
		clear(nv) // drop the references to the arguments
		res = dr
		return err
	})
	return res, true, err
}

// query runs q, one of hotStatements, as exec does, and hands each row to
// scan (ok false: not a hot statement, nothing run). scan runs with the
// connection held: it must not use the database.
func (r *rawStmts) query(txCtx, ctx context.Context, l *Ledger, q string, args []any, scan func(rowScanner) error) (ok bool, err error) {
	if _, hot := l.prepared[q]; !hot {
		return false, nil
	}
	return true, r.conn.Raw(func(dc any) error {
		st, err := r.stmt(txCtx, ctx, dc, q)
		if err != nil {
			return err
		}
		sq, ok := st.(driver.StmtQueryContext)
		if !ok {
			return fmt.Errorf("ledger: driver statement %T cannot query", st)
		}
		nv, err := r.bind(args)
		if err != nil {
			return err
		}
		rows, err := sq.QueryContext(ctx, nv)
		clear(nv)
		if err != nil {
			return err
		}
		n := len(rows.Columns())
		if cap(r.row.vals) < n {
			r.row.vals = make([]driver.Value, n)
		}
		vals := r.row.vals[:n]
		r.row.vals = vals
		defer clear(vals)
		for {
			if err := rows.Next(vals); err == io.EOF {
				break
			} else if err != nil {
				rows.Close()
				return err
			}
			if err := scan(&r.row); err != nil {
				rows.Close()
				return err
			}
		}
		return rows.Close()
	})
}

// stmt returns q prepared on the driver connection dc, once per
// connection, after checking that the transaction txCtx began is not
// over: database/sql rolls such a transaction back on its own, and a
// statement run after that would commit by itself. The check and the
// statement hold the connection's lock, which that rollback also takes,
// so it cannot come between them.
func (r *rawStmts) stmt(txCtx, ctx context.Context, dc any, q string) (driver.Stmt, error) {
	if err := txCtx.Err(); err != nil {
		return nil, fmt.Errorf("%w: %w", errTxDone, err)
	}
	if st, ok := r.stmts[q]; ok {
		return st, nil
	}
	pc, ok := dc.(driver.ConnPrepareContext)
	if !ok {
		return nil, fmt.Errorf("ledger: driver connection %T cannot prepare", dc)
	}
	st, err := pc.PrepareContext(ctx, q)
	if err != nil {
		return nil, err
	}
	r.stmts[q] = st
	return st, nil
}

// bind returns args as the driver takes them, in the reused buffer.
func (r *rawStmts) bind(args []any) ([]driver.NamedValue, error) {
	nv := r.args[:0]
	for i, a := range args {
		v, err := driverValue(a)
		if err != nil {
			clear(nv)
			return nil, fmt.Errorf("ledger: argument %d: %w", i+1, err)
		}
		nv = append(nv, driver.NamedValue{Ordinal: i + 1, Value: v})
	}
	r.args = nv
	return nv, nil
}

// rowScanner is a row to scan: *sql.Rows, or a raw query's rawRow.
type rowScanner interface{ Scan(dest ...any) error }

// rawRow is the current row of a raw query.
type rawRow struct{ vals []driver.Value }

// Scan assigns the row's values as database/sql's Rows.Scan does, for
// the destinations the drain's reads use: *string, *int64, *int, *bool,
// *float64, *[]byte (a copy), *any, a sql.Scanner (sql.NullString,
// sql.NullInt64, ...), and pointers to named string, integer and bool
// types. NULL goes only into a Scanner or *any, as with database/sql.
func (r *rawRow) Scan(dest ...any) error {
	if len(dest) != len(r.vals) {
		return fmt.Errorf("ledger: scan: %d destinations for %d columns", len(dest), len(r.vals))
	}
	for i, d := range dest {
		if err := assignValue(d, r.vals[i]); err != nil {
			return fmt.Errorf("ledger: scan column %d: %w", i, err)
		}
	}
	return nil
}

func assignValue(dest any, v driver.Value) error {
	switch d := dest.(type) {
	case *string:
		switch x := v.(type) {
		case string:
			*d = x
			return nil
		case []byte:
			*d = string(x)
			return nil
		}
	case *int64:
		if x, ok := v.(int64); ok {
			*d = x
			return nil
		}
	case *int:
		if x, ok := v.(int64); ok {
			*d = int(x)
			return nil
		}
	case *bool:
		switch x := v.(type) {
		case int64:
			*d = x != 0
			return nil
		case bool:
			*d = x
			return nil
		}
	case *float64:
		switch x := v.(type) {
		case float64:
			*d = x
			return nil
		case int64:
			*d = float64(x)
			return nil
		}
	case *[]byte:
		switch x := v.(type) {
		case nil:
			*d = nil
			return nil
		case []byte:
			*d = bytes.Clone(x)
			return nil
		case string:
			*d = []byte(x)
			return nil
		}
	case *any:
		if x, ok := v.([]byte); ok {
			v = bytes.Clone(x)
		}
		*d = v
		return nil
	case sql.Scanner:
		return d.Scan(v)
	default:
		rv := reflect.ValueOf(dest)
		if rv.Kind() != reflect.Pointer || rv.IsNil() {
			break
		}
		e := rv.Elem()
		switch x := v.(type) {
		case string:
			if e.Kind() == reflect.String {
				e.SetString(x)
				return nil
			}
		case int64:
			switch e.Kind() {
			case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
				if !e.OverflowInt(x) {
					e.SetInt(x)
					return nil
				}
			case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
				if x >= 0 && !e.OverflowUint(uint64(x)) {
					e.SetUint(uint64(x))
					return nil
				}
			case reflect.Bool:
				e.SetBool(x != 0)
				return nil
			}
		}
	}
	return fmt.Errorf("cannot assign %T into %T", v, dest)
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
