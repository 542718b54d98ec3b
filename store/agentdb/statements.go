package agentdb

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/punchcard/punchcard/protocol"
)

// StatementUse is an offline points burn against a points statement
// (protocol/token.Statement): the till spends at most Amount against
// Serial, less its own earlier burns against it (not rolled back).
type StatementUse struct {
	Serial   protocol.CodeID
	Customer protocol.CustomerID
	Amount   int64 // the statement's points
	Points   int64 // this burn, > 0
	Expires  int64 // the statement's expiry, Unix seconds
}

// StatementBurnt is what this till burnt against a statement serial (its
// own facts, less those rolled back).
func (d *DB) StatementBurnt(ctx context.Context, serial protocol.CodeID) (int64, error) {
	return statementBurnt(ctx, d.db, serial)
}

type queryRower interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func statementBurnt(ctx context.Context, q queryRower, serial protocol.CodeID) (int64, error) {
	var n int64
	if err := q.QueryRowContext(ctx, `SELECT COALESCE(SUM(points), 0) FROM points_statement_burns WHERE serial = ?`, string(serial)).Scan(&n); err != nil {
		return 0, fmt.Errorf("agentdb: statement burnt: %w", err)
	}
	return n, nil
}

// useStatement checks, in the fact's transaction, that the burn fits what
// is left of the statement (insufficient_points otherwise) and records it.
func useStatement(ctx context.Context, tx *sql.Tx, seq uint64, u StatementUse) error {
	burnt, err := statementBurnt(ctx, tx, u.Serial)
	if err != nil {
		return err
	}
	if u.Points <= 0 || burnt+u.Points > u.Amount {
		return protocol.Errorf(protocol.CodeInsufficientPts, "The points statement allows %d more points offline.", max(u.Amount-burnt, 0))
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO points_statement_burns (serial, seq, customer, points, expires) VALUES (?, ?, ?, ?, ?)`,
		string(u.Serial), int64(seq), string(u.Customer), u.Points, u.Expires); err != nil {
		return fmt.Errorf("agentdb: record statement burn: %w", err)
	}
	return nil
}

// voidStatementBurn gives a rolled-back burn back to its statement.
func voidStatementBurn(ctx context.Context, tx *sql.Tx, seq uint64) error {
	if _, err := tx.ExecContext(ctx, `DELETE FROM points_statement_burns WHERE seq = ?`, int64(seq)); err != nil {
		return fmt.Errorf("agentdb: void statement burn: %w", err)
	}
	return nil
}
