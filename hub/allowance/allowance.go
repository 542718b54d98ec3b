// Package allowance is the hub's allowance service: it grants each till
// its escrowed slice of a campaign's budget, idempotently per request id,
// takes unused allowance back, and tells what each till holds as the hub
// sees it (for the till's snapshot, which reconciles grants whose answers
// were lost, and for the hub's API). The HTTP API calls it; storage sits
// behind Store (store/ledger).
package allowance

import (
	"context"

	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/protocol/wire"
)

// Store keeps the allowances: store/ledger implements it.
type Store interface {
	// GrantAllowanceFor grants agent more of campaign under the till's
	// request id (a retry with the same id gets the same grant, also
	// one that arrives while the first is being decided). It answers
	// only after the grant's commit; concurrent requests may share one
	// (store/ledger group-commits them). Reason
	// codes: invalid_input, campaign_unknown, campaign_stopped,
	// budget_exhausted, idempotency_key_reused.
	GrantAllowanceFor(ctx context.Context, tenant protocol.TenantID, agent protocol.AgentID, campaign protocol.CampaignID, requestID string) (protocol.Allowance, error)
	// ReturnAllowance takes back unused allowance. Reason codes:
	// invalid_input.
	ReturnAllowance(ctx context.Context, ret protocol.Allowance) (protocol.Allowance, error)
	// Escrow is every campaign agent was granted: last grant number,
	// everything granted and what is outstanding.
	Escrow(ctx context.Context, tenant protocol.TenantID, agent protocol.AgentID) ([]protocol.Allowance, error)
}

// Service is the allowance service.
type Service struct {
	store Store
}

// New returns the service over st.
func New(st Store) *Service { return &Service{store: st} }

// Grant answers a till's request for more of a campaign's budget. A zero
// grant (nothing to add: the till holds its target) has grant number 0.
// Reason codes: invalid_input, campaign_unknown, campaign_stopped,
// budget_exhausted, idempotency_key_reused (a request id reused for
// another campaign).
func (s *Service) Grant(ctx context.Context, tenant protocol.TenantID, agent protocol.AgentID, req wire.AllowanceRequest) (protocol.Allowance, error) {
	if err := protocol.ValidateID("campaign", string(req.Campaign)); err != nil {
		return protocol.Allowance{}, protocol.WithField("campaign", err)
	}
	if req.RequestID != "" {
		if err := protocol.ValidateID("request_id", req.RequestID); err != nil {
			return protocol.Allowance{}, protocol.WithField("request_id", err)
		}
	}
	return s.store.GrantAllowanceFor(ctx, tenant, agent, req.Campaign, req.RequestID)
}

// Return takes back what a till reports unused. Reason codes:
// invalid_input.
func (s *Service) Return(ctx context.Context, tenant protocol.TenantID, agent protocol.AgentID, ret wire.AllowanceReturn) (protocol.Allowance, error) {
	if err := protocol.ValidateID("campaign", string(ret.Campaign)); err != nil {
		return protocol.Allowance{}, protocol.WithField("campaign", err)
	}
	if ret.Count < 0 || ret.Amount < 0 {
		return protocol.Allowance{}, protocol.FieldError("count", "count and amount must not be negative")
	}
	return s.store.ReturnAllowance(ctx, protocol.Allowance{Tenant: tenant, Agent: agent, Campaign: ret.Campaign, Count: ret.Count, Amount: ret.Amount})
}

// Escrow is what agent holds of every campaign it was ever granted, as
// the hub sees it: Grant is the last grant number, GrantedCount and
// GrantedAmount everything granted, Count and Amount what is outstanding
// (granted − returned − used and synced).
func (s *Service) Escrow(ctx context.Context, tenant protocol.TenantID, agent protocol.AgentID) ([]protocol.Allowance, error) {
	out, err := s.store.Escrow(ctx, tenant, agent)
	if out == nil {
		out = []protocol.Allowance{}
	}
	return out, err
}

// Limited is an active campaign with a budget, as the snapshot needs it.
type Limited struct {
	ID       protocol.CampaignID
	Currency protocol.Currency
	Count    bool // the campaign limits redemptions
	Amount   bool // the campaign limits the discount
}

// ForSnapshot is the allowances a till's snapshot carries, one per
// limited active campaign the till was granted something of or holds
// something of: what is outstanding (-1 for a dimension the campaign
// does not limit), the last grant number and everything granted. The
// till adopts a grant number above its own (agentdb.DB.Adopt): that is
// how a grant whose answer was lost reaches it.
func (s *Service) ForSnapshot(ctx context.Context, tenant protocol.TenantID, agent protocol.AgentID, camps []Limited) ([]protocol.Allowance, error) {
	held, err := s.store.Escrow(ctx, tenant, agent)
	if err != nil {
		return nil, err
	}
	by := make(map[protocol.CampaignID]protocol.Allowance, len(held))
	for _, h := range held {
		by[h.Campaign] = h
	}
	var out []protocol.Allowance
	for _, c := range camps {
		h, ok := by[c.ID]
		if !ok {
			continue
		}
		a := protocol.Allowance{Tenant: tenant, Agent: agent, Campaign: c.ID, Currency: c.Currency, Grant: h.Grant,
			Count: max(h.Count, 0), Amount: max(h.Amount, 0), GrantedCount: h.GrantedCount, GrantedAmount: h.GrantedAmount}
		if !c.Count {
			a.Count, a.GrantedCount = -1, -1
		}
		if !c.Amount {
			a.Amount, a.GrantedAmount = -1, -1
		}
		if a.Grant == 0 && (a.Count == 0 || a.Amount == 0) {
			continue // nothing granted, nothing to redeem offline
		}
		out = append(out, a)
	}
	return out, nil
}
