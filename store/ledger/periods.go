package ledger

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/punchcard/punchcard/protocol"
)

// ConflictEarnCapExceeded flags a till's earn that took a customer past a
// period-capped earning rule's cap (ledger_007): the till decided offline
// with only its own facts (or a hub figure that other tills' facts have
// since passed). The earn is recorded as the till gave it, the customer's
// period total with it, and the conflict names the overshoot.
const ConflictEarnCapExceeded ConflictKind = "earn_cap_exceeded"

// ConflictOrderValueExceeded flags a till's redemption that took a
// campaign past its max_order_value budget, which is not escrowed to tills
// (the hub refuses an online one with budget_exhausted).
const ConflictOrderValueExceeded ConflictKind = "order_value_exceeded"

// The period statements: every one a primary-key lookup or write, so the
// cost does not grow with the history.
const (
	qPeriod  = `SELECT points FROM ledger_customer_periods WHERE tenant = ? AND customer = ? AND campaign = ? AND rule = ? AND period = ? AND start = ?`
	upPeriod = `INSERT INTO ledger_customer_periods (tenant, customer, campaign, rule, period, start, points) VALUES (?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (tenant, customer, campaign, rule, period, start) DO UPDATE SET points = points + excluded.points RETURNING points`
	insEarnP = `INSERT INTO ledger_earn_periods (tenant, agent, seq, customer, campaign, rule, period, start, points) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`
	qEarnP   = `SELECT customer, campaign, rule, period, start, points FROM ledger_earn_periods WHERE tenant = ? AND agent = ? AND seq = ?`
)

// PeriodEarned is what a customer earned in each period named (one figure
// per key, in order), net of rollbacks: the hub's decisions pass it to
// the engine as rules.Request.Earned.
func (l *Ledger) PeriodEarned(ctx context.Context, tenant protocol.TenantID, customer protocol.CustomerID, keys []protocol.PeriodKey) ([]int64, error) {
	out := make([]int64, len(keys))
	for i, k := range keys {
		v, err := l.scalar(ctx, qPeriod, string(tenant), string(customer), string(k.Campaign), k.Rule, k.Period, k.Start)
		if err != nil {
			return nil, err
		}
		out[i] = v
	}
	return out, nil
}

// periodTotal reads a customer's period total inside the write
// transaction.
func periodTotal(s *state, t protocol.TenantID, cu protocol.CustomerID, ca protocol.CampaignID, c *protocol.EarnCap) (int64, error) {
	var v int64
	err := s.queryRow(qPeriod, []any{&v}, string(t), string(cu), string(ca), c.Rule, c.Period, c.Start)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	return v, err
}

// clampEarn cuts a hub earn to what is left of its period cap under the
// write lock: two online orders of one customer decided at once cannot
// both fill the cap. The recorded redemption carries the cut points.
func clampEarn(s *state, r protocol.Redemption) (protocol.Redemption, error) {
	if r.Kind != protocol.KindEarn || r.Cap == nil || r.Customer == "" || r.Points <= 0 {
		return r, nil
	}
	total, err := periodTotal(s, r.Tenant, r.Customer, r.Campaign, r.Cap)
	if err != nil {
		return r, err
	}
	if room := max(r.Cap.Limit-total, 0); r.Points > room {
		r.Points = room
	}
	return r, nil
}

// applyPeriod keeps the customer's period total of an earn of a capped
// rule (points), of a redeem of a campaign limited per customer and period
// (one), and of a rollback of either, in the same transaction as the fact.
// It returns the conflict a till's fact past the cap makes, if any.
func applyPeriod(s *state, r protocol.Redemption, sign, psign int64) (ConflictKind, string, error) {
	if r.Customer == "" {
		return "", "", nil
	}
	var cu, ca string
	var c protocol.EarnCap
	var delta int64
	switch {
	case r.Kind == protocol.KindEarn && r.Cap != nil && psign != 0 && r.Points != 0:
		c, delta = *r.Cap, psign*r.Points
	case r.Kind == protocol.KindRedeem && r.Cap != nil && sign != 0:
		c, delta = *r.Cap, sign
	case r.Kind == protocol.KindRollback && r.Ref != nil && (sign != 0 || psign != 0):
		var amount int64
		err := s.queryRow(qEarnP, []any{&cu, &ca, &c.Rule, &c.Period, &c.Start, &amount}, string(r.Tenant), string(r.Ref.Agent), int64(r.Ref.Seq))
		if errors.Is(err, sql.ErrNoRows) {
			return "", "", nil
		}
		if err != nil {
			return "", "", fmt.Errorf("period: %w", err)
		}
		if c.Rule == "" {
			delta = sign * amount
		} else {
			delta = psign * amount
		}
		if delta == 0 {
			return "", "", nil
		}
		if err := s.savepoint(); err != nil {
			return "", "", err
		}
	default:
		return "", "", nil
	}
	if r.Kind != protocol.KindRollback {
		cu, ca = string(r.Customer), string(r.Campaign)
		if err := s.savepoint(); err != nil {
			return "", "", err
		}
		if _, err := s.exec(insEarnP, string(r.Tenant), string(r.ID.Agent), int64(r.ID.Seq), cu, ca, c.Rule, c.Period, c.Start, max(delta, -delta)); err != nil {
			return "", "", fmt.Errorf("period: %w", err)
		}
	}
	var total int64
	if err := s.queryRow(upPeriod, []any{&total}, string(r.Tenant), cu, ca, c.Rule, c.Period, c.Start, delta); err != nil {
		return "", "", fmt.Errorf("period total: %w", err)
	}
	if r.Kind == protocol.KindRollback || delta <= 0 || r.ID.Agent == protocol.HubSender || c.Limit <= 0 || total <= c.Limit {
		return "", "", nil
	}
	if r.Kind == protocol.KindRedeem {
		return ConflictCustomerLimit, fmt.Sprintf("the campaign allows %d redemptions per customer and %s; this is redemption %d in the %s from %d",
			c.Limit, c.Period, total, c.Period, c.Start), nil
	}
	return ConflictEarnCapExceeded, fmt.Sprintf("rule %s caps %d points per %s; the customer now has %d in the %s from %d",
		c.Rule, c.Limit, c.Period, total, c.Period, c.Start), nil
}

// checkPeriod refuses a hub redeem past its campaign's limit of
// redemptions per customer and period (customer_limit_reached), under the
// write lock.
func checkPeriod(s *state, r protocol.Redemption) error {
	if r.Kind != protocol.KindRedeem || r.Cap == nil || r.Customer == "" {
		return nil
	}
	total, err := periodTotal(s, r.Tenant, r.Customer, r.Campaign, r.Cap)
	if err != nil {
		return wrap("redeem", err)
	}
	if total+1 > r.Cap.Limit {
		return protocol.NewError(protocol.CodeCustomerLimit)
	}
	return nil
}
