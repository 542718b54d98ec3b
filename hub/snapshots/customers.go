package snapshots

import (
	"context"

	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/protocol/snapshot"
)

// Customer state (tiers, segment memberships) travels like code uses: by
// the ledger's per-tenant customer-state sequence (ledger_017), not the
// catalog version. A snapshot carries the position its Tiers and Segments
// were read at (snapshot.Snapshot.Customers); an agent that sends it back
// (Request.HasCustomers) gets only the customers changed since
// (CustomersSince), which costs the changes, not every member; a poll
// when nothing changed reads the position alone.

// CustomerLedger is the ledger's customer-state sequence
// (store/ledger/customerseq.go). With it (and a TierCatalog), snapshots
// carry the customer-state position.
type CustomerLedger interface {
	CustomerHead(ctx context.Context, tenant protocol.TenantID) (uint64, error)
	CustomerChanges(ctx context.Context, tenant protocol.TenantID, after uint64, limit int) ([]protocol.CustomerID, uint64, bool, error)
	SegmentsOf(ctx context.Context, tenant protocol.TenantID, ids []protocol.CustomerID, segs []string) ([]snapshot.CustomerSegments, error)
}

// TierCatalog is the catalog's customer tiers read now (store/catalog).
type TierCatalog interface {
	CustomerTiers(ctx context.Context, tenant protocol.TenantID, ids []protocol.CustomerID) ([]snapshot.CustomerTier, error)
	AllCustomerTiers(ctx context.Context, tenant protocol.TenantID) ([]snapshot.CustomerTier, error)
}

// DefaultMaxCustomerChanges is Options.MaxCustomerChanges' default.
const DefaultMaxCustomerChanges = 5_000

// customerState is the customer state a snapshot carries.
type customerState struct {
	head, since uint64
	tiers       []snapshot.CustomerTier
	segs        []snapshot.CustomerSegments
}

// customerState reads the customer state for req at head (the position
// the request read first): the customers changed after req.Customers when
// the agent sent its position, its catalog part is current (a catalog
// change can name other segments) and the ledger has the changes within
// MaxCustomerChanges; else the whole lists. The lists are read after head,
// so they are at or after it (a change listed twice costs nothing).
func (s *Service) customerState(ctx context.Context, req Request, version, head uint64, deltaOK bool) (customerState, error) {
	cs := customerState{head: head}
	lc := s.campsOf(req.Tenant)
	named := lc.segs
	if lc.version != version {
		named = nil
	}
	if deltaOK && req.HasCustomers && req.Customers > 0 && req.Customers <= head {
		ids, h, ok, err := s.cust.CustomerChanges(ctx, req.Tenant, req.Customers, s.opts.MaxCustomerChanges)
		if err != nil {
			return customerState{}, err
		}
		if ok {
			cs.head, cs.since = h, req.Customers
			if len(ids) == 0 {
				return cs, nil
			}
			if cs.tiers, err = s.tierCat.CustomerTiers(ctx, req.Tenant, ids); err != nil {
				return customerState{}, err
			}
			if len(named) > 0 {
				if cs.segs, err = s.cust.SegmentsOf(ctx, req.Tenant, ids, named); err != nil {
					return customerState{}, err
				}
			}
			return cs, nil
		}
	}
	var err error
	if cs.tiers, err = s.tierCat.AllCustomerTiers(ctx, req.Tenant); err != nil {
		return customerState{}, err
	}
	if cs.segs, err = s.segments(ctx, req.Tenant, version); err != nil {
		return customerState{}, err
	}
	return cs, nil
}

func (s *Service) campsOf(tenant protocol.TenantID) limitedCampaigns {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.camps[tenant]
}
