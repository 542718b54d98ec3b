package ledger

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

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
// A zero grant carries grant number 0: it is no grant.
//
// Reason codes: invalid_input, campaign_unknown, campaign_stopped,
// budget_exhausted (nothing left to grant).
func (l *Ledger) GrantAllowance(ctx context.Context, tenant protocol.TenantID, agent protocol.AgentID, campaign protocol.CampaignID) (protocol.Allowance, error) {
	return l.GrantAllowanceFor(ctx, tenant, agent, campaign, "")
}

// DefaultRequestRetention is how long a recorded grant answers a retry
// of its request id (Options.RequestRetention). A till retries a lost
// answer within seconds, or after a restart within its next allowance
// top-up; a week covers a till switched off over a long weekend. A retry
// after that is a new request; the till still adopts any grant it missed
// from its snapshot's cumulative granted_count and granted_amount.
const DefaultRequestRetention = 7 * 24 * time.Hour

// MaxRequestIDLen bounds an allowance request id.
const MaxRequestIDLen = 64

// GrantAllowanceFor is GrantAllowance under the till's request id: the
// first request with an id that is granted something records the grant,
// and every later request with the same id (a retry after a lost answer)
// gets that same grant back, whatever the campaign's state since. An
// empty id is not recorded. The answer carries the agent's cumulative
// grants (GrantedCount, GrantedAmount), so that a till that missed an
// earlier answer adds what it never received.
func (l *Ledger) GrantAllowanceFor(ctx context.Context, tenant protocol.TenantID, agent protocol.AgentID, campaign protocol.CampaignID, requestID string) (protocol.Allowance, error) {
	a := protocol.Allowance{Tenant: tenant, Agent: agent, Campaign: campaign, Count: -1, Amount: -1}
	if err := validateAllowanceIDs(tenant, agent, campaign); err != nil {
		return a, err
	}
	if len(requestID) > MaxRequestIDLen {
		return a, protocol.FieldError("request_id", "at most 64 characters")
	}
	if requestID != "" {
		if prev, ok, err := l.grantOf(ctx, tenant, agent, requestID); err != nil || ok {
			if ok && prev.Campaign != campaign {
				return a, protocol.NewError(protocol.CodeIdempotencyReuse)
			}
			return prev, err
		}
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
	// Decided and recorded under the write lock, in a group commit with
	// the other requests of the moment (grantgroup.go).
	r := &grantReq{ctx: ctx, tenant: tenant, agent: agent, campaign: campaign, requestID: requestID, cf: cf}
	l.grant(r)
	if r.err != nil && r.a.Tenant == "" {
		return a, r.err
	}
	return r.a, r.err
}

// grantIn decides r in the group's transaction and records it there,
// setting r.a and r.err (a reason code); a returned error is the
// database's and fails the group.
func (l *Ledger) grantIn(s *state, r *grantReq) error {
	tenant, agent, campaign, requestID, cf, a := r.tenant, r.agent, r.campaign, r.requestID, r.cf, &r.a
	if requestID != "" {
		prev, ok, err := grantOfTx(s, r)
		if err != nil {
			return err
		}
		if ok {
			if prev.Campaign != campaign {
				r.err = protocol.NewError(protocol.CodeIdempotencyReuse)
				return nil
			}
			r.a = prev
			return nil
		}
	}
	now := l.now()
	used, err := s.campaign(tenant, campaign)
	if err != nil {
		return wrap("grant", err)
	}
	resCount, resAmount, err := s.reserved(tenant, campaign)
	if err != nil {
		return wrap("grant", err)
	}
	mine, err := s.allowance(tenant, agent, campaign)
	if err != nil {
		return wrap("grant", err)
	}
	var recentCount, recentAmount int64
	if err := s.queryRow(qGrantRate, []any{&recentCount, &recentAmount},
		string(tenant), string(agent), string(campaign), micros(now.Add(-l.policy.Window))); err != nil {
		return wrap("grant: rate", err)
	}
	p := l.policy
	first := mine.v.grants == 0
	exhausted := false
	if cf.MaxCount > 0 {
		avail := cf.MaxCount - used.v.count - resCount
		target := clamp(scale(recentCount, p.Horizon.Microseconds(), p.Window.Microseconds()), p.MinCount, p.MaxCount)
		if first {
			target = max(target, firstTarget(avail, p.FirstShare, p.MinCount, p.MaxCount))
		}
		a.Count = max(0, min(target-max(0, mine.v.outstandingCount()), avail))
		exhausted = avail <= 0
	}
	if cf.MaxDiscount > 0 {
		avail := cf.MaxDiscount - used.v.discount - resAmount
		target := clamp(scale(recentAmount, p.Horizon.Microseconds(), p.Window.Microseconds()), p.MinAmount, p.MaxAmount)
		if first {
			target = max(target, firstTarget(avail, p.FirstShare, p.MinAmount, p.MaxAmount))
		}
		a.Amount = max(0, min(target-max(0, mine.v.outstandingAmount()), avail))
		exhausted = exhausted || avail <= 0
	}
	if a.Count <= 0 && a.Amount <= 0 {
		if exhausted {
			r.err = protocol.NewError(protocol.CodeBudgetExhausted)
		}
		return nil // no grant: no number (the till keeps what it holds)
	}
	mine.v.grants++
	mine.v.grantedCount += max(0, a.Count)
	mine.v.grantedAmount += max(0, a.Amount)
	a.Grant = uint64(mine.v.grants)
	a.GrantedCount, a.GrantedAmount = granted(cf.MaxCount, mine.v.grantedCount), granted(cf.MaxDiscount, mine.v.grantedAmount)
	if requestID != "" {
		// The agent's requests recorded more than the retention ago are
		// dropped here, with its next recorded grant: the table holds at
		// most one retention period of grants per agent, plus the last
		// ones of an agent that asked nothing since.
		if _, err := s.exec(delGrantRequests, string(tenant), string(agent), micros(now.Add(-l.reqRetention))); err != nil {
			return wrap("grant: prune requests", err)
		}
		if _, err := s.exec(insGrantRequest, string(tenant), string(agent), requestID, string(campaign), int64(a.Grant), a.Count, a.Amount,
			a.GrantedCount, a.GrantedAmount, string(cf.Currency), micros(now)); err != nil {
			return wrap("grant: request", err)
		}
	}
	if _, err := s.exec(insGrantJournal, string(tenant), string(agent), string(campaign), string(cf.Currency),
		max(0, a.Count), max(0, a.Amount), micros(now)); err != nil {
		return wrap("grant", err)
	}
	return nil
}

// The statements of a grant.
const (
	// qGrantRate counts the agent's redemptions of the campaign received
	// in the window (?4 on). It reads only the agent's journal rows from
	// the window on, by seq: the subquery walks the agent's seqs down from
	// its last to the first received before the window (a till sends in
	// seq order, so received_at rises with seq but for the few seqs a
	// resend reorders), and the count reads from there up. Before, it
	// read every row the agent ever made, inside the write gate, on every
	// grant: a cost growing with the till's age.
	qGrantRate = `SELECT COUNT(*), COALESCE(SUM(discount), 0) FROM ledger_journal
		WHERE tenant = ?1 AND agent = ?2 AND seq > COALESCE((SELECT seq FROM ledger_journal
			WHERE tenant = ?1 AND agent = ?2 AND seq IS NOT NULL AND received_at < ?4 ORDER BY seq DESC LIMIT 1), -1)
		AND campaign = ?3 AND entry = 'redeem' AND received_at >= ?4`
	qGrantOf = `SELECT campaign, grant_no, count, amount, granted_count, granted_amount, currency FROM ledger_allowance_requests
		WHERE tenant = ? AND agent = ? AND request_id = ?`
	delGrantRequests = `DELETE FROM ledger_allowance_requests WHERE tenant = ? AND agent = ? AND created_at < ?`
	insGrantRequest  = `INSERT INTO ledger_allowance_requests (tenant, agent, request_id, campaign, grant_no, count, amount, granted_count, granted_amount, currency, created_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
	insGrantJournal = `INSERT INTO ledger_journal (tenant, entry, agent, campaign, currency, count, discount, received_at)
		VALUES (?, 'allowance_grant', ?, ?, ?, ?, ?, ?)`
)

// grantStatements are a grant's statements, prepared once on the pool
// (hotStatements) like ingest's: a group's transaction binds them
// instead of preparing them again, and the request id's check before
// the group uses the pool's. Prepared in each group's transaction (under
// the write gate), a wave of top-ups (BenchmarkGrantTopUps: 2,000 tills
// topped up after 4 sales; 3 alternated rounds, medians) took 453 µs of
// CPU a grant in groups of ~2.5 grants and 188 µs in groups of ~40;
// prepared once, 328 and 164 µs (0.72× and 0.87×).
var grantStatements = []string{qGrantOf, qGrantRate, delGrantRequests, insGrantRequest, insGrantJournal}

// granted is a cumulative grant as answered: -1 for a dimension the
// campaign does not limit.
func granted(limit, v int64) int64 {
	if limit == 0 {
		return -1
	}
	return v
}

func (l *Ledger) grantOf(ctx context.Context, tenant protocol.TenantID, agent protocol.AgentID, requestID string) (protocol.Allowance, bool, error) {
	a := protocol.Allowance{Tenant: tenant, Agent: agent}
	var c, cur string
	var g int64
	err := l.prepared[qGrantOf].QueryRowContext(ctx, string(tenant), string(agent), requestID).
		Scan(&c, &g, &a.Count, &a.Amount, &a.GrantedCount, &a.GrantedAmount, &cur)
	if errors.Is(err, sql.ErrNoRows) {
		return a, false, nil
	}
	if err != nil {
		return a, false, wrap("grant: request", err)
	}
	a.Campaign, a.Grant, a.Currency = protocol.CampaignID(c), uint64(g), protocol.Currency(cur)
	return a, true, nil
}

// Escrow is the hub's view of what agent holds of each campaign it was
// ever granted: the last grant number, everything granted
// (GrantedCount, GrantedAmount) and what is outstanding (Count, Amount:
// granted − returned − used and synced), by campaign. Snapshots carry it
// so that a till adopts grants whose answers it never received; the
// hub's API shows it.
func (l *Ledger) Escrow(ctx context.Context, tenant protocol.TenantID, agent protocol.AgentID) ([]protocol.Allowance, error) {
	rows, err := l.db.QueryContext(ctx, `SELECT campaign, grants, granted_count, granted_amount,
		granted_count - returned_count - used_count, granted_amount - returned_amount - used_amount
		FROM ledger_allowances WHERE tenant = ? AND agent = ? ORDER BY campaign`, string(tenant), string(agent))
	if err != nil {
		return nil, wrap("escrow", err)
	}
	defer rows.Close()
	var out []protocol.Allowance
	for rows.Next() {
		a := protocol.Allowance{Tenant: tenant, Agent: agent}
		var c string
		var g int64
		if err := rows.Scan(&c, &g, &a.GrantedCount, &a.GrantedAmount, &a.Count, &a.Amount); err != nil {
			return nil, wrap("escrow", err)
		}
		a.Campaign, a.Grant = protocol.CampaignID(c), uint64(g)
		out = append(out, a)
	}
	return out, wrap("escrow", rows.Err())
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
	l.gate.lock() // writegate.go
	defer l.gate.unlock()
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
	l.eventsCommitted() // events.go
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

// firstTarget is the least target of a till's first grant of a campaign
// (AllowancePolicy.FirstShare): what is left of the budget (avail)
// divided by share, within lo and hi; lo when share is not positive.
//
// A till's pace of a campaign it was never granted is unknown, and the
// rate formula sizes such a grant at the minimum: at a campaign's launch
// every till of a chain was granted Min and came back after Min−1 sales,
// all at once (at 10,000 tills, 10,000 grants within ~40 s), and a till
// cut off right after the launch could sell only Min of it offline.
// Where the budget is ample that minimum protects nothing, so a first
// grant takes a small share of what is left: beyond the minimum each
// takes at most 1/share of it, so n first grants escrow at most
// 1 − (1 − 1/share)^n of it (~10 % for 10,000 tills at the default
// share), and the escrow never exceeds what is left (the caller's min
// with avail). A scarce budget (avail < lo × share) keeps the minimum. Later grants follow the
// till's own pace (and a till holding more than its target gets none).
func firstTarget(avail, share, lo, hi int64) int64 {
	if share <= 0 || avail <= 0 {
		return lo
	}
	return clamp(avail/share, lo, hi)
}
