package store

import (
	"context"
	"database/sql/driver"

	"modernc.org/sqlite"
)

// The DSN is the same with and without tracing; only the connector
// differs.

// tracer wraps the SQLite driver and reports the text of every statement
// prepared, executed or queried (Options.Trace), so that a test can check
// the query plan of each statement a code path runs.
type tracer struct {
	dsn   string
	trace func(query string)
}

func (t tracer) Connect(context.Context) (driver.Conn, error) {
	c, err := (&sqlite.Driver{}).Open(t.dsn)
	if err != nil {
		return nil, err
	}
	return tracedConn{c.(sqliteConn), t.trace}, nil
}

func (t tracer) Driver() driver.Driver { return &sqlite.Driver{} }

// sqliteConn is what database/sql uses of the SQLite driver's connection.
type sqliteConn interface {
	driver.Conn
	driver.ConnBeginTx
	driver.ConnPrepareContext
	driver.ExecerContext
	driver.QueryerContext
	driver.SessionResetter
	driver.Validator
}

type tracedConn struct {
	sqliteConn
	trace func(string)
}

func (c tracedConn) Prepare(q string) (driver.Stmt, error) {
	c.trace(q)
	return c.sqliteConn.Prepare(q)
}

func (c tracedConn) PrepareContext(ctx context.Context, q string) (driver.Stmt, error) {
	c.trace(q)
	return c.sqliteConn.PrepareContext(ctx, q)
}

func (c tracedConn) ExecContext(ctx context.Context, q string, args []driver.NamedValue) (driver.Result, error) {
	c.trace(q)
	return c.sqliteConn.ExecContext(ctx, q, args)
}

func (c tracedConn) QueryContext(ctx context.Context, q string, args []driver.NamedValue) (driver.Rows, error) {
	c.trace(q)
	return c.sqliteConn.QueryContext(ctx, q, args)
}
