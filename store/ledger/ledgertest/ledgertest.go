// Package ledgertest holds what benchmarks of the ledger (and of ingest,
// which feeds it) share: the plain-SQLite baseline the ledger's throughput
// is compared with.
package ledgertest

import (
	"context"
	"database/sql"
	"strings"
	"syscall"
	"time"

	"github.com/punchcard/punchcard/protocol"
)

// PlainSchema creates the baseline table: a journal row's columns (the same
// 24, the same types) and the same keys — the rowid id and the unique
// (tenant, agent, seq) that makes a redemption's identity — but none of the
// journal's secondary indexes and no balances. It is what "just store the
// rows" costs, so the ratio to it is the price of the ledger's guarantees.
func PlainSchema(ctx context.Context, db *sql.DB) error {
	_, err := db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS plain (
		id INTEGER PRIMARY KEY, tenant TEXT NOT NULL, entry TEXT NOT NULL, agent TEXT NOT NULL, seq INTEGER,
		store TEXT NOT NULL, txn_id TEXT NOT NULL, campaign TEXT NOT NULL, code TEXT NOT NULL, customer TEXT NOT NULL,
		order_id TEXT NOT NULL, currency TEXT NOT NULL, discount INTEGER NOT NULL, spend INTEGER NOT NULL,
		points INTEGER NOT NULL, order_total INTEGER NOT NULL, hlc INTEGER NOT NULL, offline INTEGER NOT NULL,
		ref_agent TEXT, ref_seq INTEGER, snapshot INTEGER NOT NULL, sign INTEGER NOT NULL, psign INTEGER NOT NULL,
		received_at INTEGER NOT NULL);
		CREATE UNIQUE INDEX IF NOT EXISTS plain_id ON plain (tenant, agent, seq)`)
	return err
}

// PlainInsert inserts rs in one transaction with one prepared single-row
// INSERT, binding the same 23 values per row as the ledger's journal: the
// textbook way to batch rows into SQLite, as a yardstick.
func PlainInsert(ctx context.Context, db *sql.DB, rs []protocol.Redemption) error {
	return PlainInsertRows(ctx, db, rs, 1)
}

// PlainInsertRows is PlainInsert with INSERTs of perStmt rows (the last one
// shorter), the technique the ledger itself uses for its journal: the
// stricter yardstick.
func PlainInsertRows(ctx context.Context, db *sql.DB, rs []protocol.Redemption, perStmt int) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	now := time.Now().UnixMicro()
	args := make([]any, 0, perStmt*plainArity)
	stmts := map[int]*sql.Stmt{}
	defer func() {
		for _, st := range stmts {
			st.Close()
		}
	}()
	for len(rs) > 0 {
		n := min(perStmt, len(rs))
		st, ok := stmts[n]
		if !ok {
			row := "(" + strings.TrimSuffix(strings.Repeat("?, ", plainArity), ", ") + ")"
			if st, err = tx.PrepareContext(ctx, `INSERT INTO plain (tenant, entry, agent, seq, store, txn_id, campaign, code, customer, order_id,
				currency, discount, spend, points, order_total, hlc, offline, ref_agent, ref_seq, snapshot, sign, psign, received_at)
				VALUES `+strings.TrimSuffix(strings.Repeat(row+", ", n), ", ")); err != nil {
				return err
			}
			stmts[n] = st
		}
		args = args[:0]
		for _, r := range rs[:n] {
			var refAgent, refSeq any
			if r.Ref != nil {
				refAgent, refSeq = string(r.Ref.Agent), int64(r.Ref.Seq)
			}
			args = append(args, string(r.Tenant), r.Kind.String(), string(r.ID.Agent), int64(r.ID.Seq), string(r.Store), r.TxnID,
				string(r.Campaign), string(r.Code), string(r.Customer), r.OrderID, string(r.Currency),
				r.Discount, r.Spend, r.Points, r.OrderTot, int64(r.HLC), r.Offline, refAgent, refSeq, int64(r.Snapshot), 1, 1, now)
		}
		if _, err := st.ExecContext(ctx, args...); err != nil {
			return err
		}
		rs = rs[n:]
	}
	return tx.Commit()
}

const plainArity = 23

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
