package agentdb

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/protocol/hlc"
)

// The till's disk stays bounded: the WAL is emptied past WALLimit, the
// records that only serve retries and rollbacks are pruned after their
// retention windows, and new sales are refused (storage_full) before the
// file system fills. What the hub has not acknowledged (the outbox and its
// redemptions) is never pruned.
const (
	// DefaultIdempotencyRetention keeps a POS request's stored answer for
	// three days. A POS retries an unanswered request within seconds or
	// minutes; one that crashed replays its journal when it restarts,
	// which after a crash on Friday evening is Monday morning. Inside the
	// window a retry gets the stored answer; after it, a retry of a sale
	// whose redemptions are still kept is refused with
	// idempotency_key_reused, never recorded twice.
	DefaultIdempotencyRetention = 72 * time.Hour
	// DefaultRedemptionRetention keeps acknowledged redemptions for 35
	// days: the usual 30-day return period plus margin, for rollbacks and
	// earn-after-redeem at the till. Past it, the hub's ledger still has
	// them; the till answers not_found.
	DefaultRedemptionRetention = 35 * 24 * time.Hour
	// DefaultMinFreeBytes is the free space the data directory must keep
	// (256 MiB): room for a full WAL (DefaultWALLimit), a rewrite of a
	// multi-megabyte snapshot, and the rollbacks and acks that still pass
	// when new sales are refused.
	DefaultMinFreeBytes = 256 << 20
	// DefaultWALLimit (8 MiB, a few hundred sales of WAL frames) bounds
	// the WAL: a TRUNCATE checkpoint that often costs a sale a few
	// milliseconds, and the WAL stays a small part of the disk per sale.
	DefaultWALLimit = 8 << 20
	// DefaultPruneEvery is how often the background loop prunes.
	DefaultPruneEvery = 10 * time.Minute
)

// pruneBatch bounds the rows one prune transaction deletes, so that a sale
// never waits long for the write lock.
const pruneBatch = 2000

// PruneStats counts what one Prune removed.
type PruneStats struct {
	Txns        int64 // idempotency records
	Redemptions int64 // acknowledged redemptions
	OwnUses     int64 // own code uses the stored snapshot's figures count
}

// Prune deletes the idempotency records older than IdempotencyRetention
// and the redemptions older than RedemptionRetention that the hub has
// acknowledged (seq below every outbox row). The background loop runs it
// every PruneEvery; freed pages are reused by later sales, so the file stops
// growing once sales and pruning balance.
func (d *DB) Prune(ctx context.Context) (PruneStats, error) {
	var st PruneStats
	now := d.now()
	cut := now.Add(-d.opts.IdempotencyRetention).UnixMilli()
	for {
		n, err := d.pruneBatch(ctx, `DELETE FROM txns WHERE (op, txn_id) IN (SELECT op, txn_id FROM txns WHERE created_ms < ? LIMIT ?)`, cut, pruneBatch)
		st.Txns += n
		if err != nil {
			return st, fmt.Errorf("agentdb: prune txns: %w", err)
		}
		if n < pruneBatch {
			break
		}
	}
	// Own earns of periods that ended (no period is longer than a year).
	if _, err := d.pruneBatch(ctx, `DELETE FROM own_earn_periods WHERE start < ?`, now.Add(-367*24*time.Hour).Unix()); err != nil {
		return st, fmt.Errorf("agentdb: prune own earn periods: %w", err)
	}
	// Burns against statements that expired (a day's grace for clocks).
	if _, err := d.pruneBatch(ctx, `DELETE FROM points_statement_burns WHERE expires < ?`, now.Add(-24*time.Hour).Unix()); err != nil {
		return st, fmt.Errorf("agentdb: prune statement burns: %w", err)
	}
	n, err := d.pruneOwnUses(ctx)
	st.OwnUses = n
	if err != nil {
		return st, fmt.Errorf("agentdb: prune own uses: %w", err)
	}
	if d.opts.RedemptionRetention < 0 {
		return st, nil
	}
	hcut := int64(hlc.Pack(now.Add(-d.opts.RedemptionRetention).UnixMilli(), 0))
	for {
		n, err := d.pruneBatch(ctx, `DELETE FROM redemptions WHERE seq IN (SELECT seq FROM redemptions
			WHERE seq < COALESCE((SELECT MIN(seq) FROM outbox), (SELECT next_seq FROM agent_state WHERE id = 1))
			AND hlc < ? ORDER BY seq LIMIT ?)`, hcut, pruneBatch)
		st.Redemptions += n
		if err != nil {
			return st, fmt.Errorf("agentdb: prune redemptions: %w", err)
		}
		if n < pruneBatch {
			break
		}
	}
	return st, nil
}

// pruneBatch runs one delete in its own relaxed transaction: a prune lost
// to a power cut is simply done again.
func (d *DB) pruneBatch(ctx context.Context, q string, args ...any) (int64, error) {
	tx, end, err := d.beginRelaxed(ctx)
	if err != nil {
		return 0, err
	}
	defer end()
	res, err := tx.ExecContext(ctx, q, args...)
	if err != nil {
		return 0, err
	}
	n, _ := res.RowsAffected()
	return n, tx.Commit()
}

// checkPruned refuses a txn id whose idempotency record was pruned while
// its redemptions are kept: a late retry must not record the sale again.
func checkPruned(ctx context.Context, tx *sql.Tx, op Op, txnID string) error {
	var used bool
	if err := tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM redemptions WHERE op = ? AND txn_id = ?)`, string(op), txnID).Scan(&used); err != nil {
		return fmt.Errorf("agentdb: lookup txn: %w", err)
	}
	if used {
		return protocol.Errorf(protocol.CodeIdempotencyReuse, "This transaction id was already used on this till, longer ago than its answer is kept.")
	}
	return nil
}

// checkFree refuses a new sale when the data directory's file system has
// less than MinFreeBytes free.
func (d *DB) checkFree() error {
	if d.opts.MinFreeBytes < 0 {
		return nil
	}
	free, ok := d.opts.FreeBytes(filepath.Dir(d.path))
	if ok && free < uint64(d.opts.MinFreeBytes) {
		return protocol.NewError(protocol.CodeStorageFull)
	}
	return nil
}

// FreeBytes is the free space of the data directory's file system, and
// false when the platform cannot tell.
func (d *DB) FreeBytes() (uint64, bool) { return d.opts.FreeBytes(filepath.Dir(d.path)) }

// Size is the bytes the database takes on disk: the file and its WAL.
func (d *DB) Size() (db, wal int64) {
	if fi, err := os.Stat(d.path); err == nil {
		db = fi.Size()
	}
	return db, d.walSize()
}

func (d *DB) walSize() int64 {
	fi, err := os.Stat(d.path + "-wal")
	if err != nil {
		return 0
	}
	return fi.Size()
}

// Checkpoint copies the WAL into the database file and truncates it. It
// holds the write lock, so sales wait for it, and waits for readers up to
// the busy timeout; false when a reader kept it from completing.
func (d *DB) Checkpoint(ctx context.Context) (bool, error) { return d.truncateWAL(ctx) }

func (d *DB) truncateWAL(ctx context.Context) (bool, error) {
	d.wmu.Lock()
	defer d.wmu.Unlock()
	var busy, logFrames, done int
	if err := d.wconn.QueryRowContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`).Scan(&busy, &logFrames, &done); err != nil {
		return false, err
	}
	return busy == 0, nil
}

func (d *DB) logf(msg string, err error) {
	if d.opts.Logf != nil {
		d.opts.Logf(msg, err)
	}
}
