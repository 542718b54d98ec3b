package ledger

import (
	"context"
	"database/sql"
	"time"

	"github.com/punchcard/punchcard/protocol"
)

// CustomerEntries lists a tenant's journal entries naming customer with
// an ID above after, oldest first, at most limit (default 100). It scans
// the tenant's journal (there is no index by customer, see
// ledger_002_last_redemption.sql): meant for the rare data export, not
// for a hot path.
func (l *Ledger) CustomerEntries(ctx context.Context, tenant protocol.TenantID, customer protocol.CustomerID, after int64, limit int) ([]CustomerEntry, error) {
	if limit <= 0 {
		limit = 100
	}
	rows, err := l.db.QueryContext(ctx, `SELECT id, entry, agent, seq, store, txn_id, campaign, code, order_id, currency, discount, spend, points,
		order_total, offline, ref_agent, ref_seq, hlc, received_at
		FROM ledger_journal WHERE tenant = ? AND customer = ? AND id > ? ORDER BY id LIMIT ?`, string(tenant), string(customer), after, limit)
	if err != nil {
		return nil, wrap("customer entries", err)
	}
	defer rows.Close()
	out := []CustomerEntry{}
	for rows.Next() {
		var e CustomerEntry
		var agent, store, campaign, code, currency string
		var seq, refSeq sql.NullInt64
		var refAgent sql.NullString
		var hlc, received int64
		if err := rows.Scan(&e.ID, &e.Entry, &agent, &seq, &store, &e.TxnID, &campaign, &code, &e.OrderID, &currency, &e.Discount, &e.Spend,
			&e.Points, &e.OrderTotal, &e.Offline, &refAgent, &refSeq, &hlc, &received); err != nil {
			return nil, wrap("customer entries", err)
		}
		e.Redemption = protocol.RedemptionID{Agent: protocol.AgentID(agent), Seq: uint64(seq.Int64)}
		e.Store, e.Campaign, e.Code, e.Currency = protocol.StoreID(store), protocol.CampaignID(campaign), protocol.CodeID(code), protocol.Currency(currency)
		if refAgent.Valid {
			e.Of = &protocol.RedemptionID{Agent: protocol.AgentID(refAgent.String), Seq: uint64(refSeq.Int64)}
		}
		if hlc != 0 {
			e.At = HLCTime(uint64(hlc)).UTC()
		}
		e.ReceivedAt = time.UnixMicro(received).UTC()
		out = append(out, e)
	}
	return out, wrap("customer entries", rows.Err())
}
