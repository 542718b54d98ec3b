package store

import (
	"context"
	"database/sql/driver"
	"strings"

	"modernc.org/sqlite"
)

// The SQLite driver parses a statement's text on every call of
// ExecContext or QueryContext that was not prepared first: on the hub's
// online path a fifth of the CPU went to parsing the same few texts. Every
// connection Open makes keeps the statements run with arguments prepared
// (up to maxCachedStmts), so each text is parsed once per connection. A
// statement whose rows are still open when the same text runs again (a
// nested query) is run the ordinary way meanwhile.

const maxCachedStmts = 256

// connector opens SQLite connections with a statement cache, traced when
// trace is set (Options.Trace).
type connector struct {
	dsn   string
	trace func(string)
}

func (c connector) Connect(context.Context) (driver.Conn, error) {
	dc, err := (&sqlite.Driver{}).Open(c.dsn)
	if err != nil {
		return nil, err
	}
	conn := dc.(sqliteConn)
	if c.trace != nil {
		conn = tracedConn{conn, c.trace}
	}
	return &cachingConn{sqliteConn: conn, stmts: map[string]*cachedStmt{}}, nil
}

func (c connector) Driver() driver.Driver { return &sqlite.Driver{} }

// preparedStmt is what the cache uses of the driver's statement.
type preparedStmt interface {
	driver.Stmt
	driver.StmtExecContext
	driver.StmtQueryContext
}

type cachedStmt struct {
	st   preparedStmt
	busy bool // rows of it are open
}

// cachingConn is a connection with its statement cache. database/sql uses
// a connection from one goroutine at a time, so the map needs no lock.
type cachingConn struct {
	sqliteConn
	stmts map[string]*cachedStmt
}

// get returns q's cached statement, preparing it on first use; nil when it
// is busy or cannot be cached (the caller runs q the ordinary way).
func (c *cachingConn) get(ctx context.Context, q string) *cachedStmt {
	if cs, ok := c.stmts[q]; ok {
		if cs.busy {
			return nil
		}
		return cs
	}
	if len(c.stmts) >= maxCachedStmts {
		return nil
	}
	st, err := c.sqliteConn.PrepareContext(ctx, q)
	if err != nil {
		return nil // the ordinary path reports it
	}
	ps, ok := st.(preparedStmt)
	if !ok {
		st.Close()
		return nil
	}
	cs := &cachedStmt{st: ps}
	c.stmts[q] = cs
	return cs
}

// cacheable reports whether q is kept prepared: a statement with
// arguments, or one of the savepoint statements the ledger's online writer
// runs around every basket (a text without arguments may be several
// statements, which one prepared statement cannot hold).
func cacheable(q string, args []driver.NamedValue) bool {
	if len(args) > 0 {
		return true
	}
	for _, p := range [...]string{"SAVEPOINT ", "RELEASE ", "ROLLBACK TO "} {
		if strings.HasPrefix(q, p) && !strings.Contains(q, ";") {
			return true
		}
	}
	return false
}

func (c *cachingConn) ExecContext(ctx context.Context, q string, args []driver.NamedValue) (driver.Result, error) {
	if cacheable(q, args) {
		if cs := c.get(ctx, q); cs != nil {
			return cs.st.ExecContext(ctx, args)
		}
	}
	return c.sqliteConn.ExecContext(ctx, q, args)
}

func (c *cachingConn) QueryContext(ctx context.Context, q string, args []driver.NamedValue) (driver.Rows, error) {
	if len(args) > 0 {
		if cs := c.get(ctx, q); cs != nil {
			rows, err := cs.st.QueryContext(ctx, args)
			if err != nil {
				return nil, err
			}
			cs.busy = true
			return &cachedRows{Rows: rows, cs: cs}, nil
		}
	}
	return c.sqliteConn.QueryContext(ctx, q, args)
}

func (c *cachingConn) Close() error {
	for q, cs := range c.stmts {
		cs.st.Close()
		delete(c.stmts, q)
	}
	return c.sqliteConn.Close()
}

// cachedRows frees its statement for the next run when closed.
type cachedRows struct {
	driver.Rows
	cs *cachedStmt
}

func (r *cachedRows) Close() error {
	err := r.Rows.Close()
	r.cs.busy = false
	return err
}
