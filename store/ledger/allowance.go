package ledger

import (
	"context"
	"fmt"

	"github.com/punchcard/punchcard/protocol"
)

// GrantAllowance tops up an agent's escrowed slice of a campaign's budget,
// sized by the Options.Policy formula from the agent's recent rate. A grant
// is additive: the returned Allowance's Count and Amount are what this
// grant adds to what the agent already holds (-1 for a dimension the
// campaign does not limit). Under the write lock it keeps
//
//	used + Σ max(0, outstanding of every agent) ≤ budget
//
// for both the count and the discount budget, so the budget holds while
// any set of agents is offline. A zero grant (Count and Amount 0) means the
// agent already holds its target.
//
// Reason codes: invalid_input, campaign_unknown, campaign_stopped,
// budget_exhausted (nothing left to grant).
func (l *Ledger) GrantAllowance(ctx context.Context, tenant protocol.TenantID, agent protocol.AgentID, campaign protocol.CampaignID) (protocol.Allowance, error) {
	a := protocol.Allowance{Tenant: tenant, Agent: agent, Campaign: campaign, Count: -1, Amount: -1}
	if err := validateAllowanceIDs(tenant, agent, campaign); err != nil {
		return a, err
	}
	cf, ok, err := l.facts.CampaignFacts(ctx, tenant, campaign)
	if err != nil {
		return a, fmt.Errorf("ledger: campaign facts %s: %w", campaign, err)
	}
	if !ok {
		return a, protocol.NewError(protocol.CodeCampaignUnknown)
	}
	a.Currency = cf.Currency
	now := l.now()
	if !cf.StoppedAt.IsZero() && !now.Before(cf.StoppedAt) {
		return a, protocol.NewError(protocol.CodeCampaignStopped)
	}
	if !cf.Limited() {
		return a, nil // nothing to escrow
	}
	tx, err := l.db.BeginTx(ctx, nil)
	if err != nil {
		return a, wrap("grant: begin", err)
	}
	defer tx.Rollback()
	s := l.newState(ctx, tx)
	defer s.close()

	used, err := s.campaign(tenant, campaign)
	if err != nil {
		return a, wrap("grant", err)
	}
	resCount, resAmount, err := s.reserved(tenant, campaign)
	if err != nil {
		return a, wrap("grant", err)
	}
	mine, err := s.allowance(tenant, agent, campaign)
	if err != nil {
		return a, wrap("grant", err)
	}
	var recentCount, recentAmount int64
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*), COALESCE(SUM(discount), 0) FROM ledger_journal
		WHERE tenant = ? AND agent = ? AND campaign = ? AND entry = 'redeem' AND received_at >= ?`,
		string(tenant), string(agent), string(campaign), micros(now.Add(-l.policy.Window))).Scan(&recentCount, &recentAmount); err != nil {
		return a, wrap("grant: rate", err)
	}
	p := l.policy
	exhausted := false
	if cf.MaxCount > 0 {
		target := clamp(scale(recentCount, p.Horizon.Microseconds(), p.Window.Microseconds()), p.MinCount, p.MaxCount)
		avail := cf.MaxCount - used.v.count - resCount
		a.Count = max(0, min(target-max(0, mine.v.outstandingCount()), avail))
		exhausted = avail <= 0
	}
	if cf.MaxDiscount > 0 {
		target := clamp(scale(recentAmount, p.Horizon.Microseconds(), p.Window.Microseconds()), p.MinAmount, p.MaxAmount)
		avail := cf.MaxDiscount - used.v.discount - resAmount
		a.Amount = max(0, min(target-max(0, mine.v.outstandingAmount()), avail))
		exhausted = exhausted || avail <= 0
	}
	if a.Count <= 0 && a.Amount <= 0 {
		if exhausted {
			return a, protocol.NewError(protocol.CodeBudgetExhausted)
		}
		a.Grant = uint64(mine.v.grants)
		return a, nil
	}
	mine.v.grants++
	mine.v.grantedCount += max(0, a.Count)
	mine.v.grantedAmount += max(0, a.Amount)
	a.Grant = uint64(mine.v.grants)
	if _, err := tx.ExecContext(ctx, `INSERT INTO ledger_journal (tenant, entry, agent, campaign, currency, count, discount, received_at)
		VALUES (?, 'allowance_grant', ?, ?, ?, ?, ?, ?)`, string(tenant), string(agent), string(campaign), string(cf.Currency),
		max(0, a.Count), max(0, a.Amount), micros(now)); err != nil {
		return a, wrap("grant", err)
	}
	if err := s.flush(); err != nil {
		return a, wrap("grant", err)
	}
	if err := tx.Commit(); err != nil {
		return a, wrap("grant: commit", err)
	}
	return a, nil
}

// ReturnAllowance takes back what an agent reports unused of its allowance
// (ret.Count and ret.Amount; negative values count as 0). What the agent
// used but has not synced yet stays escrowed until its redemptions arrive.
// The hub never takes back more than is outstanding; the returned
// Allowance says what was accepted.
//
// Reason codes: invalid_input.
func (l *Ledger) ReturnAllowance(ctx context.Context, ret protocol.Allowance) (protocol.Allowance, error) {
	out := protocol.Allowance{Tenant: ret.Tenant, Agent: ret.Agent, Campaign: ret.Campaign, Currency: ret.Currency}
	if err := validateAllowanceIDs(ret.Tenant, ret.Agent, ret.Campaign); err != nil {
		return out, err
	}
	tx, err := l.db.BeginTx(ctx, nil)
	if err != nil {
		return out, wrap("return: begin", err)
	}
	defer tx.Rollback()
	s := l.newState(ctx, tx)
	defer s.close()
	mine, err := s.allowance(ret.Tenant, ret.Agent, ret.Campaign)
	if err != nil {
		return out, wrap("return", err)
	}
	out.Grant = uint64(mine.v.grants)
	out.Count = min(max(0, ret.Count), max(0, mine.v.outstandingCount()))
	out.Amount = min(max(0, ret.Amount), max(0, mine.v.outstandingAmount()))
	if out.Count == 0 && out.Amount == 0 {
		return out, nil
	}
	mine.v.returnedCount += out.Count
	mine.v.returnedAmount += out.Amount
	if _, err := tx.ExecContext(ctx, `INSERT INTO ledger_journal (tenant, entry, agent, campaign, currency, count, discount, received_at)
		VALUES (?, 'allowance_return', ?, ?, ?, ?, ?, ?)`, string(ret.Tenant), string(ret.Agent), string(ret.Campaign), string(ret.Currency),
		out.Count, out.Amount, micros(l.now())); err != nil {
		return out, wrap("return", err)
	}
	if err := s.flush(); err != nil {
		return out, wrap("return", err)
	}
	if err := tx.Commit(); err != nil {
		return out, wrap("return: commit", err)
	}
	return out, nil
}

func validateAllowanceIDs(t protocol.TenantID, a protocol.AgentID, c protocol.CampaignID) error {
	if err := protocol.ValidateID("tenant", string(t)); err != nil {
		return err
	}
	if err := protocol.ValidateID("agent", string(a)); err != nil {
		return err
	}
	if a == protocol.HubSender {
		return protocol.FieldError("agent", "the hub holds no allowance")
	}
	return protocol.ValidateID("campaign", string(c))
}

// scale is ceil(v × num / den) in 128-bit arithmetic, saturating at
// MaxInt64; 0 for non-positive inputs.
func scale(v, num, den int64) int64 { return protocol.MulDivCeil(v, num, den) }

func clamp(v, lo, hi int64) int64 { return min(max(v, lo), hi) }
