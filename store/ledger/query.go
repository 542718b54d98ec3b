package ledger

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/punchcard/punchcard/protocol"
)

// Campaign returns a campaign's balance (zero for one never redeemed), in
// one statement (the online decision asks it on every request).
func (l *Ledger) Campaign(ctx context.Context, tenant protocol.TenantID, campaign protocol.CampaignID) (CampaignBalance, error) {
	var b CampaignBalance
	err := l.prepared[qCampaignBalance].QueryRowContext(ctx, string(tenant), string(campaign)).
		Scan(&b.Count, &b.Discount, &b.OrderValue, &b.ReservedCount, &b.ReservedAmount)
	return b, wrap("campaign", err)
}

// qCampaignBalance is Campaign's statement: the balance row (if any) and
// the sum of the agents' outstanding allowances, as reserved sums them.
const qCampaignBalance = `SELECT
	COALESCE((SELECT count FROM ledger_campaigns WHERE tenant = ?1 AND campaign = ?2), 0),
	COALESCE((SELECT discount FROM ledger_campaigns WHERE tenant = ?1 AND campaign = ?2), 0),
	COALESCE((SELECT order_value FROM ledger_campaigns WHERE tenant = ?1 AND campaign = ?2), 0),
	COALESCE((SELECT outstanding_count FROM ledger_allowance_totals WHERE tenant = ?1 AND campaign = ?2), 0),
	COALESCE((SELECT outstanding_amount FROM ledger_allowance_totals WHERE tenant = ?1 AND campaign = ?2), 0)`

// CodeUses is how often a code has been redeemed, net of rollbacks.
func (l *Ledger) CodeUses(ctx context.Context, tenant protocol.TenantID, code protocol.CodeID) (int64, error) {
	return l.scalar(ctx, qCodeUses, string(tenant), string(code))
}

// GiftCardSpent is what has been spent from a gift card; its balance is
// the initial value less this (negative after an overdraw conflict).
func (l *Ledger) GiftCardSpent(ctx context.Context, tenant protocol.TenantID, code protocol.CodeID) (int64, error) {
	return l.scalar(ctx, qCardSpent, string(tenant), string(code))
}

// Points is a customer's loyalty points balance.
func (l *Ledger) Points(ctx context.Context, tenant protocol.TenantID, customer protocol.CustomerID) (int64, error) {
	return l.scalar(ctx, qPointsLive, string(tenant), string(customer), micros(l.now())) // lots.go
}

// CustomerCount is how often a customer has redeemed a campaign.
func (l *Ledger) CustomerCount(ctx context.Context, tenant protocol.TenantID, customer protocol.CustomerID, campaign protocol.CampaignID) (int64, error) {
	return l.scalar(ctx, qCustCount, string(tenant), string(customer), string(campaign))
}

// Outstanding is an agent's allowance left of a campaign as the hub sees
// it (negative after an overrun): granted − returned − used.
func (l *Ledger) Outstanding(ctx context.Context, tenant protocol.TenantID, agent protocol.AgentID, campaign protocol.CampaignID) (count, amount int64, err error) {
	err = l.db.QueryRowContext(ctx, `SELECT granted_count - returned_count - used_count, granted_amount - returned_amount - used_amount
		FROM ledger_allowances WHERE tenant = ? AND agent = ? AND campaign = ?`, string(tenant), string(agent), string(campaign)).Scan(&count, &amount)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, 0, nil
	}
	return count, amount, wrap("outstanding", err)
}

// The online decision's reads (prepared by New: every online request runs
// them).
const (
	qCodeUses  = `SELECT uses FROM ledger_codes WHERE tenant = ? AND code = ?`
	qCardSpent = `SELECT spent FROM ledger_giftcards WHERE tenant = ? AND code = ?`
	qCustCount = `SELECT count FROM ledger_customer_campaigns WHERE tenant = ? AND customer = ? AND campaign = ?`
)

func (l *Ledger) scalar(ctx context.Context, q string, args ...any) (int64, error) {
	var v int64
	var err error
	if st, ok := l.prepared[q]; ok {
		err = st.QueryRowContext(ctx, args...).Scan(&v)
	} else {
		err = l.db.QueryRowContext(ctx, q, args...).Scan(&v)
	}
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	return v, wrap("query", err)
}

// Conflicts lists a tenant's conflicts with an ID above after, oldest
// first, at most limit (default 100).
func (l *Ledger) Conflicts(ctx context.Context, tenant protocol.TenantID, after int64, limit int) ([]Conflict, error) {
	if limit <= 0 {
		limit = 100
	}
	rows, err := l.db.QueryContext(ctx, `SELECT id, tenant, kind, campaign, code, customer, agent, seq, other_agent, other_seq, detail, created_at
		FROM ledger_conflicts WHERE tenant = ? AND id > ? ORDER BY id LIMIT ?`, string(tenant), after, limit)
	if err != nil {
		return nil, wrap("conflicts", err)
	}
	defer rows.Close()
	var out []Conflict
	for rows.Next() {
		var c Conflict
		var tenant, kind, campaign, code, customer, agent, detail string
		var seq, at int64
		var oa sql.NullString
		var os sql.NullInt64
		if err := rows.Scan(&c.ID, &tenant, &kind, &campaign, &code, &customer, &agent, &seq, &oa, &os, &detail, &at); err != nil {
			return nil, wrap("conflicts", err)
		}
		c.Tenant, c.Kind, c.Campaign, c.Code, c.Customer, c.Detail = protocol.TenantID(tenant), ConflictKind(kind),
			protocol.CampaignID(campaign), protocol.CodeID(code), protocol.CustomerID(customer), detail
		c.Redemption = protocol.RedemptionID{Agent: protocol.AgentID(agent), Seq: uint64(seq)}
		if oa.Valid {
			c.Other = &protocol.RedemptionID{Agent: protocol.AgentID(oa.String), Seq: uint64(os.Int64)}
		}
		c.At = time.UnixMicro(at)
		out = append(out, c)
	}
	return out, wrap("conflicts", rows.Err())
}

// AgentSync is the hub's view of one agent's sync.
type AgentSync struct {
	Watermark uint64              // every seq up to here is applied
	State     protocol.AgentState // the last heartbeat
	SeenAt    time.Time           // when the hub last heard from it
}

// Agent returns an agent's sync state (zero for an unknown agent).
func (l *Ledger) Agent(ctx context.Context, tenant protocol.TenantID, agent protocol.AgentID) (AgentSync, error) {
	var a AgentSync
	var wm, sv, ls, hlc, seen int64
	err := l.db.QueryRowContext(ctx, `SELECT watermark, snapshot_version, last_seq, outbox_depth, hlc, seen_at FROM ledger_agents WHERE tenant = ? AND agent = ?`,
		string(tenant), string(agent)).Scan(&wm, &sv, &ls, &a.State.OutboxDepth, &hlc, &seen)
	if errors.Is(err, sql.ErrNoRows) {
		return a, nil
	}
	if err != nil {
		return a, wrap("agent", err)
	}
	a.Watermark, a.State.SnapshotVersion, a.State.LastSeq, a.State.HLC = uint64(wm), uint64(sv), uint64(ls), uint64(hlc)
	if seen != 0 {
		a.SeenAt = time.UnixMicro(seen)
	}
	return a, nil
}

// RecordAgentState stores an agent's heartbeat.
func (l *Ledger) RecordAgentState(ctx context.Context, tenant protocol.TenantID, agent protocol.AgentID, st protocol.AgentState) error {
	if err := validateState(tenant, agent, st); err != nil {
		return err
	}
	_, err := l.db.ExecContext(ctx, upAgentState,
		string(tenant), string(agent), int64(st.SnapshotVersion), int64(st.LastSeq), st.OutboxDepth, int64(st.HLC), micros(l.now()))
	return wrap("agent state", err)
}
