package store

import (
	"context"
	"crypto/subtle"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/punchcard/punchcard/protocol"
)

// The idempotency records of the hub's APIs live in one table,
// catalog_idempotency (created by store/catalog's migrations, in the hub's
// one database file). The catalog reads and writes them on its own; the
// ledger's online writer writes them inside the transaction of the basket
// they answer (ledger.RedeemOnce). Both use these functions, so that
// neither store imports the other.

// Querier is what the idempotency functions run on: the database, or a
// transaction.
type Querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

var (
	_ Querier = (*sql.DB)(nil)
	_ Querier = (*sql.Tx)(nil)
)

// Statements of the idempotency records (the online path checks their
// query plans).
const (
	QueryRecall   = `SELECT request, status, body FROM catalog_idempotency WHERE tenant = ? AND key = ?`
	QueryRemember = `INSERT INTO catalog_idempotency (tenant, key, request, status, body, created_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`
)

// RecallIdem returns the answer recorded for a tenant's idempotency key;
// found is false for a new key. A key recorded for another request (its
// hash differs) is refused with CodeIdempotencyReuse.
func RecallIdem(ctx context.Context, q Querier, tenant protocol.TenantID, key string, request []byte) (status int, body []byte, found bool, err error) {
	var h []byte
	err = q.QueryRowContext(ctx, QueryRecall, string(tenant), key).Scan(&h, &status, &body)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil, false, nil
	}
	if err != nil {
		return 0, nil, false, fmt.Errorf("idempotency: recall: %w", err)
	}
	if subtle.ConstantTimeCompare(h, request) != 1 {
		return 0, nil, false, protocol.NewError(protocol.CodeIdempotencyReuse)
	}
	return status, body, true, nil
}

// RememberIdem records the answer to a request under its key, at now, and
// reports whether it was added: false when the key was recorded before
// (the record kept is the first).
func RememberIdem(ctx context.Context, q Querier, tenant protocol.TenantID, key string, request []byte, status int, body []byte, now time.Time) (bool, error) {
	res, err := q.ExecContext(ctx, QueryRemember, string(tenant), key, request, status, body, now.UnixMicro())
	if err != nil {
		return false, fmt.Errorf("idempotency: remember: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("idempotency: remember: %w", err)
	}
	return n > 0, nil
}
