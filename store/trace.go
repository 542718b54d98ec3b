package store

import (
	"context"
	"database/sql/driver"
)

// Tracing (Options.Trace) wraps the SQLite driver's connection and reports
// the text of every statement prepared, executed or queried, so that a
// test can check the query plan of each statement a code path runs. With
// the statement cache (stmtcache.go) in front, a cached statement is
// reported when it is prepared, once per connection.

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
