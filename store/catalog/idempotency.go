package catalog

import (
	"context"
	"crypto/subtle"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/punchcard/punchcard/protocol"
)

// Recall returns the answer remembered for a tenant's idempotency key.
// found is false for a new key. A key used before for a different request
// (another request hash) is refused with CodeIdempotencyReuse.
func (c *Catalog) Recall(ctx context.Context, tenant protocol.TenantID, key string, request []byte) (Remembered, bool, error) {
	return RecallTx(ctx, c.db, tenant, key, request)
}

// Querier is what RecallTx and RememberTx run on: the database, or a
// transaction of another store sharing the file (the ledger's online
// writer, which records a basket and its idempotency record in one
// commit).
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

// RecallTx is Recall on q.
func RecallTx(ctx context.Context, q Querier, tenant protocol.TenantID, key string, request []byte) (Remembered, bool, error) {
	var r Remembered
	var h []byte
	err := q.QueryRowContext(ctx, QueryRecall, string(tenant), key).Scan(&h, &r.Status, &r.Body)
	if errors.Is(err, sql.ErrNoRows) {
		return Remembered{}, false, nil
	}
	if err != nil {
		return Remembered{}, false, fmt.Errorf("catalog: recall: %w", err)
	}
	if subtle.ConstantTimeCompare(h, request) != 1 {
		return Remembered{}, false, protocol.NewError(protocol.CodeIdempotencyReuse)
	}
	return r, true, nil
}

// Remember stores the answer to a request with an idempotency key. The
// first answer stored wins; a later one for the same key is ignored.
func (c *Catalog) Remember(ctx context.Context, tenant protocol.TenantID, key string, request []byte, r Remembered) error {
	return RememberTx(ctx, c.db, tenant, key, request, r, c.now())
}

// RememberTx is Remember on q, at now.
func RememberTx(ctx context.Context, q Querier, tenant protocol.TenantID, key string, request []byte, r Remembered, now time.Time) error {
	_, err := RememberNewTx(ctx, q, tenant, key, request, r, now)
	return err
}

// RememberNewTx is RememberTx that reports whether the record was added:
// false when the key was recorded before (the record kept is the first).
// The online writer records a key with it instead of looking it up first.
func RememberNewTx(ctx context.Context, q Querier, tenant protocol.TenantID, key string, request []byte, r Remembered, now time.Time) (bool, error) {
	res, err := q.ExecContext(ctx, QueryRemember, string(tenant), key, request, r.Status, r.Body, now.UnixMicro())
	if err != nil {
		return false, fmt.Errorf("catalog: remember: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("catalog: remember: %w", err)
	}
	return n > 0, nil
}

// RecallIn is RecallTx inside tx, as a method for the services that take
// the catalog as an interface (hub/online).
func (c *Catalog) RecallIn(ctx context.Context, tx *sql.Tx, tenant protocol.TenantID, key string, request []byte) (Remembered, bool, error) {
	return RecallTx(ctx, tx, tenant, key, request)
}

// RememberIn is RememberNewTx inside tx (false: the key was recorded
// before), as a method for the services that
// take the catalog as an interface (hub/online).
func (c *Catalog) RememberIn(ctx context.Context, tx *sql.Tx, tenant protocol.TenantID, key string, request []byte, r Remembered, now time.Time) (bool, error) {
	return RememberNewTx(ctx, tx, tenant, key, request, r, now)
}
