package ledger

import (
	"context"

	"github.com/punchcard/punchcard/protocol"
	pledger "github.com/punchcard/punchcard/protocol/ledger"
)

// PurchaseAOV sums the tenant's purchase history (ledger_purchases, by
// the time of each order) per bucket and currency, split by whether a
// reward was applied to the order and not voided (pledger.AOVRow). Per
// order it looks up the redemptions of its transaction
// (ledger_journal_txn) and their rollbacks (ledger_journal_ref).
func (l *Ledger) PurchaseAOV(ctx context.Context, tenant protocol.TenantID, bs []pledger.Bucket) ([]pledger.AOVRow, error) {
	text, args, err := aovSQL(tenant, bs)
	if err != nil {
		return nil, err
	}
	rows, err := l.db.QueryContext(ctx, text, args...)
	if err != nil {
		return nil, wrap("aov", err)
	}
	defer rows.Close()
	var out []pledger.AOVRow
	for rows.Next() {
		var r pledger.AOVRow
		var cur string
		if err := rows.Scan(&r.Bucket, &cur, &r.Rewarded, &r.Orders, &r.Value); err != nil {
			return nil, wrap("aov", err)
		}
		r.Currency = protocol.Currency(cur)
		out = append(out, r)
	}
	return out, wrap("aov", rows.Err())
}

// aovSQL is PurchaseAOV's statement. ledger_purchases.at is in Unix
// microseconds.
func aovSQL(tenant protocol.TenantID, bs []pledger.Bucket) (string, []any, error) {
	cte, args, err := bucketsCTE(bs, micros, []any{string(tenant)})
	if err != nil {
		return "", nil, err
	}
	// The purchases are ledger_customer_rows of kind 4 (n1 at, n2 value,
	// s1 currency, s2 agent, k2 txn): a view takes no INDEXED BY.
	return cte + `, o(i, currency, value, rewarded) AS (SELECT b.i, p.s1, p.n2,
			EXISTS (SELECT 1 FROM ledger_journal j INDEXED BY ledger_journal_txn
				WHERE j.tenant = p.tenant AND j.agent = p.s2 AND j.txn_id = p.k2 AND j.entry = 'redeem' AND j.sign > 0
				AND NOT EXISTS (SELECT 1 FROM ledger_journal r INDEXED BY ledger_journal_ref
					WHERE r.tenant = j.tenant AND r.ref_agent = j.agent AND r.ref_seq = j.seq AND r.sign < 0))
			FROM b JOIN ledger_customer_rows p INDEXED BY ledger_purchases_report ON p.tenant = ?1 AND p.kind = 4 AND p.n1 >= b.lo AND p.n1 < b.hi)
		SELECT i, currency, rewarded, COUNT(*), SUM(value) FROM o GROUP BY i, currency, rewarded ORDER BY i, currency, rewarded`, args, nil
}
