package ledger

import (
	"context"
	"database/sql"
	"time"

	"github.com/punchcard/punchcard/protocol"
	pledger "github.com/punchcard/punchcard/protocol/ledger"
)

// The customer history of the support desk (ledger_012_adjustments.sql):
// every read is an index search (TestHistoryPlans).

// History types are protocol/ledger's.
type (
	HistoryQuery = pledger.HistoryQuery
	HistoryEntry = pledger.HistoryEntry
	HistoryPage  = pledger.HistoryPage
)

// MaxHistoryLimit bounds a page of CustomerActivity; DefaultHistoryLimit
// is a page when the query names none.
const (
	DefaultHistoryLimit = 50
	MaxHistoryLimit     = 200
)

const (
	// qHistoryEntries: ledger_journal_customer_id, newest first.
	qHistoryEntries = `SELECT j.id, j.entry, j.agent, j.seq, j.store, j.txn_id, j.campaign, j.code, j.order_id, j.currency, j.discount, j.spend,
		j.points, j.order_total, j.offline, j.ref_agent, j.ref_seq, j.hlc, j.received_at, j.lot,
		a.reason, a.note, a.reference, a.actor, a.expires_at
		FROM ledger_journal j LEFT JOIN ledger_adjustments a ON a.tenant = j.tenant AND a.agent = j.agent AND a.seq = j.seq AND j.entry = '` + pledger.EntryPointsAdjusted + `'
		WHERE j.tenant = ?1 AND j.customer = ?2 AND j.customer != '' AND j.id < ?3 ORDER BY j.id DESC LIMIT ?4`
	// qHistoryTiers: ledger_tier_history_customer, and an upgrade's fact
	// by ledger_journal_id; newest first in the activity's order: (anchor,
	// id) below the position, the anchor being the fact's journal ID, or
	// for the review's changes the newest journal ID when it was written
	// (ledger_019_history_tiers.sql). A customer's tier changes are few.
	qHistoryTiers = `SELECT h.id, coalesce(j.id, h.after_entry) AS anchor, h.at, h.from_tier, h.to_tier, h.reason, h.src_agent, h.src_seq
		FROM ledger_tier_history h LEFT JOIN ledger_journal j ON h.src_seq IS NOT NULL AND j.tenant = h.tenant AND j.agent = h.src_agent AND j.seq = h.src_seq
		WHERE h.tenant = ?1 AND h.customer = ?2 AND (coalesce(j.id, h.after_entry), h.id) < (?3, ?4) ORDER BY anchor DESC, h.id DESC LIMIT ?5`
	// qRolledBackBy: ledger_journal_ref. Only a rollback by the
	// redemption's own agent or by the hub voids it.
	qRolledBackBy = `SELECT agent, seq FROM ledger_journal WHERE tenant = ?1 AND ref_agent = ?2 AND ref_seq = ?3 AND entry = 'rollback'
		AND (agent = ref_agent OR agent = ?4) ORDER BY id LIMIT 1`
	// qHistoryConflicts: ledger_conflicts_customer, newest first.
	qHistoryConflicts = `SELECT id, tenant, kind, campaign, code, customer, agent, seq, other_agent, other_seq, detail, created_at
		FROM ledger_conflicts WHERE tenant = ?1 AND customer = ?2 AND customer != '' AND id < ?3 ORDER BY id DESC LIMIT ?4`
)

// historyStatements are plan-checked (TestHistoryPlans).
var historyStatements = []string{qHistoryEntries, qHistoryTiers, qRolledBackBy, qHistoryConflicts, qSale}

// CustomerActivity returns one page of a customer's activity, newest
// first: the journal entries naming them (redemptions online and at the
// tills, earns, burns, rollbacks, expiries, adjustments), each with the
// rollback that voided it, and the conflicts about them. It reads in one
// transaction, so the page is one consistent state.
func (l *Ledger) CustomerActivity(ctx context.Context, tenant protocol.TenantID, customer protocol.CustomerID, q HistoryQuery) (HistoryPage, error) {
	page := HistoryPage{Entries: []HistoryEntry{}, Conflicts: []Conflict{}}
	if q.Limit <= 0 {
		q.Limit = DefaultHistoryLimit
	}
	q.Limit = min(q.Limit, MaxHistoryLimit)
	if q.BeforeEntry <= 0 && q.BeforeTier <= 0 {
		q.BeforeEntry, q.BeforeTier = 1<<62, 0
	}
	// The journal entries below the position: below a tier change at
	// (e, t) lies entry e itself.
	beforeJournal := q.BeforeEntry
	if q.BeforeTier > 0 {
		beforeJournal++
	}
	if q.BeforeConflict <= 0 {
		q.BeforeConflict = 1 << 62
	}
	tx, err := l.db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return page, wrap("customer activity: begin", err)
	}
	defer tx.Rollback()
	rows, err := tx.QueryContext(ctx, qHistoryEntries, string(tenant), string(customer), beforeJournal, q.Limit)
	if err != nil {
		return page, wrap("customer activity", err)
	}
	for rows.Next() {
		var e HistoryEntry
		var agent, st, campaign, code, currency string
		var seq, refSeq, lot, expires sql.NullInt64
		var refAgent, reason, note, ref, actor sql.NullString
		var hlc, received int64
		if err := rows.Scan(&e.ID, &e.Entry, &agent, &seq, &st, &e.TxnID, &campaign, &code, &e.OrderID, &currency, &e.Discount, &e.Spend,
			&e.Points, &e.OrderTotal, &e.Offline, &refAgent, &refSeq, &hlc, &received, &lot, &reason, &note, &ref, &actor, &expires); err != nil {
			rows.Close()
			return page, wrap("customer activity", err)
		}
		e.Agent = protocol.AgentID(agent)
		if seq.Valid {
			e.Redemption = protocol.RedemptionID{Agent: e.Agent, Seq: uint64(seq.Int64)}
		}
		e.Channel = "till"
		if e.Agent == protocol.HubSender {
			e.Channel = "online"
		}
		e.Store, e.Campaign, e.Code, e.Currency = protocol.StoreID(st), protocol.CampaignID(campaign), protocol.CodeID(code), protocol.Currency(currency)
		if refAgent.Valid {
			e.Of = &protocol.RedemptionID{Agent: protocol.AgentID(refAgent.String), Seq: uint64(refSeq.Int64)}
		}
		if hlc != 0 {
			e.At = HLCTime(uint64(hlc)).UTC()
		}
		e.ReceivedAt = time.UnixMicro(received).UTC()
		e.Lot = lot.Int64
		if reason.Valid {
			e.Adjustment = &pledger.AdjustmentInfo{Reason: reason.String, Note: note.String, Reference: ref.String, By: actor.String}
			if expires.Int64 != 0 {
				e.Adjustment.ExpiresAt = time.UnixMicro(expires.Int64).UTC()
			}
		}
		page.Entries = append(page.Entries, e)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return page, wrap("customer activity", err)
	}
	if err := mergeTiers(ctx, tx, tenant, customer, q, &page); err != nil {
		return page, err
	}
	rb, err := tx.PrepareContext(ctx, qRolledBackBy)
	if err != nil {
		return page, wrap("customer activity", err)
	}
	defer rb.Close()
	for i := range page.Entries {
		e := &page.Entries[i]
		if e.Redemption.Seq == 0 || e.Entry == entryName(protocol.KindRollback) || e.Entry == pledger.EntryPointsAdjusted {
			continue
		}
		var a string
		var s int64
		err := rb.QueryRowContext(ctx, string(tenant), string(e.Redemption.Agent), int64(e.Redemption.Seq), string(protocol.HubSender)).Scan(&a, &s)
		switch {
		case err == sql.ErrNoRows:
		case err != nil:
			return page, wrap("customer activity", err)
		default:
			e.RolledBackBy = &protocol.RedemptionID{Agent: protocol.AgentID(a), Seq: uint64(s)}
		}
	}
	crow, err := tx.QueryContext(ctx, qHistoryConflicts, string(tenant), string(customer), q.BeforeConflict, q.Limit)
	if err != nil {
		return page, wrap("customer activity", err)
	}
	defer crow.Close()
	for crow.Next() {
		var c Conflict
		var tn, kind, campaign, code, cu, agent, detail string
		var seq, at int64
		var oa sql.NullString
		var os sql.NullInt64
		if err := crow.Scan(&c.ID, &tn, &kind, &campaign, &code, &cu, &agent, &seq, &oa, &os, &detail, &at); err != nil {
			return page, wrap("customer activity", err)
		}
		c.Tenant, c.Kind, c.Campaign, c.Code, c.Customer, c.Detail = protocol.TenantID(tn), ConflictKind(kind),
			protocol.CampaignID(campaign), protocol.CodeID(code), protocol.CustomerID(cu), detail
		c.Redemption = protocol.RedemptionID{Agent: protocol.AgentID(agent), Seq: uint64(seq)}
		if oa.Valid {
			c.Other = &protocol.RedemptionID{Agent: protocol.AgentID(oa.String), Seq: uint64(os.Int64)}
		}
		c.At = time.UnixMicro(at).UTC()
		page.Conflicts = append(page.Conflicts, c)
	}
	return page, wrap("customer activity", crow.Err())
}

// mergeTiers reads the tier changes below q's position and merges them
// into page.Entries (the journal's, newest first), keeping the newest
// q.Limit of both, and sets the page's next position. A tier change at
// (e, t) is newer than journal entry e and older than e+1.
func mergeTiers(ctx context.Context, tx *sql.Tx, tenant protocol.TenantID, customer protocol.CustomerID, q HistoryQuery, page *HistoryPage) error {
	rows, err := tx.QueryContext(ctx, qHistoryTiers, string(tenant), string(customer), q.BeforeEntry, q.BeforeTier, q.Limit)
	if err != nil {
		return wrap("customer activity: tiers", err)
	}
	type tierAt struct {
		after int64
		e     HistoryEntry
	}
	var ts []tierAt
	for rows.Next() {
		var t tierAt
		var at int64
		var agent string
		var seq sql.NullInt64
		ch := &pledger.TierChangeInfo{}
		if err := rows.Scan(&t.e.ID, &t.after, &at, &ch.From, &ch.To, &ch.Reason, &agent, &seq); err != nil {
			rows.Close()
			return wrap("customer activity: tiers", err)
		}
		if seq.Valid {
			ch.Fact = &protocol.RedemptionID{Agent: protocol.AgentID(agent), Seq: uint64(seq.Int64)}
		}
		t.e.Entry, t.e.Tier, t.e.Channel, t.e.Agent = pledger.EntryTierChanged, ch, "hub", protocol.HubSender
		t.e.At = time.UnixMicro(at).UTC()
		t.e.ReceivedAt = t.e.At
		ts = append(ts, t)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return wrap("customer activity: tiers", err)
	}
	js := page.Entries
	out := make([]HistoryEntry, 0, min(q.Limit, len(js)+len(ts)))
	i, k := 0, 0
	for len(out) < q.Limit && (i < len(js) || k < len(ts)) {
		if k == len(ts) || (i < len(js) && js[i].ID > ts[k].after) {
			out = append(out, js[i])
			page.NextEntry, page.NextTier = js[i].ID, 0
			i++
			continue
		}
		out = append(out, ts[k].e)
		page.NextEntry, page.NextTier = ts[k].after, ts[k].e.ID
		k++
	}
	page.Entries = out
	return nil
}

// qSale is SaleRedemptions' statement (ledger_journal_txn).
const qSale = selectRedemption + ` WHERE tenant = ? AND agent = ? AND txn_id = ? ORDER BY id LIMIT 1000`

// SaleRedemptions returns the journal entries of one sale: a till's
// transaction (agent, txn_id), or an online one (the hub, its
// Idempotency-Key), oldest first, by index. A reward applied after the
// sale (hub/online AfterSale) reads the sale as recorded from them.
func (l *Ledger) SaleRedemptions(ctx context.Context, tenant protocol.TenantID, agent protocol.AgentID, txn string) ([]protocol.Redemption, error) {
	rows, err := l.db.QueryContext(ctx, qSale, string(tenant), string(agent), txn)
	if err != nil {
		return nil, wrap("sale", err)
	}
	defer rows.Close()
	var out []protocol.Redemption
	for rows.Next() {
		r, _, err := scanRedemption(rows)
		if err != nil {
			return nil, wrap("sale", err)
		}
		out = append(out, r)
	}
	return out, wrap("sale", rows.Err())
}
