// Package ledgertest holds what benchmarks of the ledger (and of ingest,
// which feeds it) share: the plain-SQLite baseline the ledger's throughput
// is compared with.
package ledgertest

import (
	"context"
	"database/sql"
	"syscall"
	"time"

	"github.com/punchcard/punchcard/protocol"
)

// PlainSchema creates the baseline table: a redemption's columns, no
// indexes, no balances.
func PlainSchema(ctx context.Context, db *sql.DB) error {
	_, err := db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS plain (tenant TEXT, agent TEXT, seq INTEGER, store TEXT, txn_id TEXT,
		campaign TEXT, code TEXT, customer TEXT, currency TEXT, discount INTEGER, order_total INTEGER, hlc INTEGER)`)
	return err
}

// PlainInsert inserts rs in one transaction with one prepared statement:
// the fastest way to put these rows into SQLite, as a yardstick.
func PlainInsert(ctx context.Context, db *sql.DB, rs []protocol.Redemption) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	st, err := tx.PrepareContext(ctx, `INSERT INTO plain VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
	if err != nil {
		return err
	}
	defer st.Close()
	for _, r := range rs {
		if _, err := st.ExecContext(ctx, string(r.Tenant), string(r.ID.Agent), int64(r.ID.Seq), string(r.Store), r.TxnID,
			string(r.Campaign), string(r.Code), string(r.Customer), string(r.Currency), r.Discount, r.OrderTot, int64(r.HLC)); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// CPUTime is the process's user+system CPU time so far. Benchmarks report
// CPU per op next to wall time, because on a shared machine the wall time
// of an fsync-bound benchmark says more about the neighbours than the code.
func CPUTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
