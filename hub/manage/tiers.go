package manage

import (
	"context"

	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/protocol/tiers"
)

// The tier programme's types (protocol/tiers).
type (
	TierProgram = tiers.Program
	TierState   = tiers.State
	TierChange  = tiers.Change
)

// TierCatalog is what the service needs of a catalog that keeps tier
// programmes.
type TierCatalog interface {
	TierProgram(ctx context.Context, tenant protocol.TenantID) (tiers.Program, bool, error)
	SetTierProgram(ctx context.Context, actor Actor, tenant protocol.TenantID, p tiers.Program) (tiers.Program, error)
}

// TiersLedger is what the service reads of a ledger that keeps tiers: a
// customer's current tier and its history of changes.
type TiersLedger interface {
	CustomerTier(ctx context.Context, tenant protocol.TenantID, customer protocol.CustomerID) (tiers.State, error)
	TierHistory(ctx context.Context, tenant protocol.TenantID, customer protocol.CustomerID, limit int) ([]tiers.Change, error)
}

// CustomerTierStatus is a customer's current tier and every change of it,
// newest first (for the customer API and support's history).
type CustomerTierStatus struct {
	Current TierState    `json:"current"`
	History []TierChange `json:"history"`
}

func (s *Service) tierCatalog() (TierCatalog, error) {
	tc, ok := s.cat.(TierCatalog)
	if !ok {
		return nil, protocol.Errorf(protocol.CodeNotFound, "this hub keeps no tier programmes")
	}
	return tc, nil
}

// TierProgram is the tenant's tier programme. Reason codes: not_found
// (none set).
func (s *Service) TierProgram(ctx context.Context, tenant protocol.TenantID) (TierProgram, error) {
	tc, err := s.tierCatalog()
	if err != nil {
		return TierProgram{}, err
	}
	p, found, err := tc.TierProgram(ctx, tenant)
	if err != nil {
		return TierProgram{}, err
	}
	if !found {
		return TierProgram{}, &protocol.Error{Code: protocol.CodeNotFound, Message: "the tenant has no tier programme", Field: "tiers"}
	}
	return p, nil
}

// SetTierProgram sets (or replaces) the tenant's tier programme; customers'
// tiers follow it from their next fact (upgrades) and their next review
// (downgrades). Reason codes: invalid_input, not_found (tenant).
func (s *Service) SetTierProgram(ctx context.Context, actor Actor, tenant protocol.TenantID, p TierProgram) (TierProgram, error) {
	tc, err := s.tierCatalog()
	if err != nil {
		return TierProgram{}, err
	}
	return change(ctx, s, tenant, func() (TierProgram, error) { return tc.SetTierProgram(ctx, actor, tenant, p) })
}

// CustomerTiers is the customer's current tier and tier history (an empty
// status when the ledger keeps no tiers). Support's customer history can
// show it as is. Reason codes: not_found (customer).
func (s *Service) CustomerTiers(ctx context.Context, tenant protocol.TenantID, id protocol.CustomerID) (CustomerTierStatus, error) {
	out := CustomerTierStatus{History: []TierChange{}}
	if _, err := s.cat.Customer(ctx, tenant, id); err != nil {
		return out, err
	}
	tl, ok := s.opts.Ledger.(TiersLedger)
	if !ok {
		return out, nil
	}
	var err error
	if out.Current, err = tl.CustomerTier(ctx, tenant, id); err != nil {
		return out, err
	}
	out.History, err = tl.TierHistory(ctx, tenant, id, 0)
	return out, err
}
