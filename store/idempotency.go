package store

import (
	"bytes"
	"context"
	"crypto/subtle"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/klauspost/compress/s2"

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

// QueryPruneIdem deletes the records written before ?1 among the first ?2
// in the order they were written (rowid: SQLite gives a new row the
// largest rowid plus one), up to the first one not yet due. It reads at
// most ?2 rows and deletes a range of rowids: no index on created_at for
// every basket's commit to write, and no scan of the table when nothing is
// due. A record stamped by a clock that jumped ahead holds the ones
// written after it until it is due itself.
const QueryPruneIdem = `WITH head AS (SELECT rowid AS r, created_at FROM catalog_idempotency ORDER BY rowid LIMIT ?2)
	DELETE FROM catalog_idempotency WHERE rowid <= (SELECT MAX(r) FROM head)
	AND rowid < COALESCE((SELECT MIN(r) FROM head WHERE created_at >= ?1), 9223372036854775807)`

// PruneIdem deletes up to limit idempotency records written before
// before, oldest first, and reports how many it deleted: the hub's
// retention job (Options.IdempotencyRetention) runs it until it deletes
// none. A retry after its record is gone is a new request; an online
// redeem's is still found by its transaction id in the ledger (its
// Idempotency-Key) and not recorded twice.
func PruneIdem(ctx context.Context, q Querier, before time.Time, limit int) (int64, error) {
	res, err := q.ExecContext(ctx, QueryPruneIdem, before.UnixMicro(), limit)
	if err != nil {
		return 0, fmt.Errorf("idempotency: prune: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("idempotency: prune: %w", err)
	}
	return n, nil
}

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
	if body, err = decodeIdemBody(body); err != nil {
		return 0, nil, false, fmt.Errorf("idempotency: recall %q: %w", key, err)
	}
	return status, body, true, nil
}

// RememberIdem records the answer to a request under its key, at now, and
// reports whether it was added: false when the key was recorded before
// (the record kept is the first).
func RememberIdem(ctx context.Context, q Querier, tenant protocol.TenantID, key string, request []byte, status int, body []byte, now time.Time) (bool, error) {
	stored, err := encodeIdemBody(body)
	if err != nil {
		return false, fmt.Errorf("idempotency: remember: %w", err)
	}
	res, err := q.ExecContext(ctx, QueryRemember, string(tenant), key, request, status, stored, now.UnixMicro())
	if err != nil {
		return false, fmt.Errorf("idempotency: remember: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("idempotency: remember: %w", err)
	}
	return n > 0, nil
}

// The stored body. An online redeem's answer (its decision and its
// redemptions as recorded) is ~2 KiB of JSON: one record filled a B-tree
// leaf page of its own, one more page for every basket's commit to write
// to the WAL, written on the online writer's serial path. So a body of
// idemCompressMin bytes or more is stored compressed, behind a header no
// answer starts with (idemS2: a NUL byte, then the format). The format
// is an S2 block (github.com/klauspost/compress/s2, a Snappy extension):
// ~1-3 µs for 2 KiB where compress/flate at BestSpeed took ~20 µs, at
// about 4x smaller for these answers. A body stored as it is (a short
// one, one that does not shrink, and every record written before this
// format) never starts with a NUL, as the answers are JSON (a body that
// did start with one is stored compressed, whatever its length). No
// migration: both forms are read.
const (
	idemCompressMin = 512
	idemS2          = "\x00\x01" // NUL, then format 1: an S2 block follows
)

// encodeIdemBody returns body as stored.
func encodeIdemBody(body []byte) ([]byte, error) {
	if len(body) < idemCompressMin && (len(body) == 0 || body[0] != 0) {
		return body, nil
	}
	out := make([]byte, len(idemS2), len(idemS2)+s2.MaxEncodedLen(len(body)))
	copy(out, idemS2)
	enc := s2.Encode(out[len(idemS2):cap(out)], body)
	if len(idemS2)+len(enc) >= len(body) && body[0] != 0 {
		return body, nil // incompressible: as it is
	}
	return out[:len(idemS2)+len(enc)], nil
}

// errIdemFormat is the answer for a stored body of an unknown format.
var errIdemFormat = errors.New("a stored answer of an unknown format")

// decodeIdemBody returns the body stored as stored.
func decodeIdemBody(stored []byte) ([]byte, error) {
	if len(stored) == 0 || stored[0] != 0 {
		return stored, nil
	}
	if !bytes.HasPrefix(stored, []byte(idemS2)) {
		return nil, errIdemFormat
	}
	body, err := s2.Decode(nil, stored[len(idemS2):])
	if err != nil {
		return nil, fmt.Errorf("a stored answer: %w", err)
	}
	return body, nil
}
