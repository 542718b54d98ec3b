package ledger

import (
	"context"
	"database/sql"
	"errors"
	"slices"

	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/protocol/snapshot"
)

// DefaultMaxCustomerChanges is how many changed customers a customer-state
// delta lists at most (hub/snapshots); further behind, a full list.
const DefaultMaxCustomerChanges = 5_000

// CustomerHead is the tenant's customer-state position: the number of
// changes of its customers' tiers and segment memberships so far (0:
// none), ledger_017_customer_seq. It moves without the catalog version.
func (l *Ledger) CustomerHead(ctx context.Context, tenant protocol.TenantID) (uint64, error) {
	var h int64
	err := l.db.QueryRowContext(ctx, `SELECT seq FROM ledger_customer_seq WHERE tenant = ?`, string(tenant)).Scan(&h)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	return uint64(h), wrap("customer head", err)
}

// CustomerChanges returns the customers whose tier or segment memberships
// changed after position after (a range scan of the (tenant, cseq)
// index: it costs the changes since, not every customer), with the head
// they were read at. ok is false when more than limit customers changed,
// or after is beyond head (a position of another database): the caller
// then sends the whole lists.
func (l *Ledger) CustomerChanges(ctx context.Context, tenant protocol.TenantID, after uint64, limit int) (ids []protocol.CustomerID, head uint64, ok bool, err error) {
	tx, err := l.db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, 0, false, wrap("customer changes", err)
	}
	defer tx.Rollback()
	var h int64
	switch err := tx.QueryRowContext(ctx, `SELECT seq FROM ledger_customer_seq WHERE tenant = ?`, string(tenant)).Scan(&h); {
	case errors.Is(err, sql.ErrNoRows):
	case err != nil:
		return nil, 0, false, wrap("customer changes", err)
	}
	head = uint64(h)
	if after > head {
		return nil, head, false, nil
	}
	rows, err := tx.QueryContext(ctx, `SELECT customer FROM ledger_customer_state WHERE tenant = ? AND cseq > ? ORDER BY cseq LIMIT ?`,
		string(tenant), int64(after), limit+1)
	if err != nil {
		return nil, 0, false, wrap("customer changes", err)
	}
	defer rows.Close()
	for rows.Next() {
		var c string
		if err := rows.Scan(&c); err != nil {
			return nil, 0, false, wrap("customer changes", err)
		}
		ids = append(ids, protocol.CustomerID(c))
	}
	if err := rows.Err(); err != nil {
		return nil, 0, false, wrap("customer changes", err)
	}
	if len(ids) > limit {
		return nil, head, false, nil
	}
	slices.Sort(ids)
	return ids, head, true, nil
}

// SegmentsOf returns the stored segments among segs (sorted) of each of
// the customers ids, one entry per customer, with no segments when it is
// in none: a customer-state delta's Segments (snapshot.MergeSegments).
func (l *Ledger) SegmentsOf(ctx context.Context, tenant protocol.TenantID, ids []protocol.CustomerID, segs []string) ([]snapshot.CustomerSegments, error) {
	out := make([]snapshot.CustomerSegments, 0, len(ids))
	for _, id := range ids {
		e := snapshot.CustomerSegments{Customer: id, Segments: []string{}}
		rows, err := l.db.QueryContext(ctx, qSegsOf, string(tenant), string(id))
		if err != nil {
			return nil, wrap("segments of", err)
		}
		for rows.Next() {
			var g string
			if err := rows.Scan(&g); err != nil {
				rows.Close()
				return nil, wrap("segments of", err)
			}
			if _, found := slices.BinarySearch(segs, g); found {
				e.Segments = append(e.Segments, g)
			}
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, wrap("segments of", err)
		}
		out = append(out, e)
	}
	return out, nil
}
