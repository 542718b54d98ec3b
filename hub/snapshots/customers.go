package snapshots

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

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
// MaxCustomerChanges; else the whole lists (kept per tenant and
// positions, wholeCustomers). The lists are read after head, so they are
// at or after it (a change listed twice costs nothing).
func (s *Service) customerState(ctx context.Context, req Request, version, head uint64, deltaOK bool, now time.Time) (customerState, error) {
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
	w, err := s.wholeCustomers(ctx, req.Tenant, version, head, now)
	if err != nil {
		return customerState{}, err
	}
	cs.tiers, cs.segs = w.tiers, w.segs
	return cs, nil
}

// wholeLists are a tenant's whole customer lists, every tier and the
// memberships of the segments its active campaigns name, read at or after
// catalog version and customer-state position head. A tier or membership
// the ledger sets moves head (ledger_017's triggers) and one a person sets
// in the catalog (a profile's tier, an erasure) moves the version, so
// lists read at or after (version, head) serve every request that read
// those two positions, as the lists it would read itself would: after a
// catalog change every till's fetch takes the whole lists (its catalog
// part is not current), 10,000 reads of the same lists in the seconds of
// the fetch wave, where one does.
type wholeLists struct {
	version, head uint64
	at            time.Time
	tiers         []snapshot.CustomerTier     // sorted by customer, read only
	segs          []snapshot.CustomerSegments // read only
}

// wholeCustomers returns the tenant's whole customer lists for a request
// that read catalog version and customer-state position head: the ones
// kept for the tenant when read at those positions less than
// Options.BuildMaxAge ago, else read now (concurrent requests at the same
// positions share one read).
func (s *Service) wholeCustomers(ctx context.Context, tenant protocol.TenantID, version, head uint64, now time.Time) (*wholeLists, error) {
	if v, ok := s.wholes.Load(tenant); ok {
		if w := v.(*wholeLists); w.version == version && w.head == head && now.Sub(w.at) < s.opts.BuildMaxAge {
			return w, nil
		}
	}
	name := fmt.Sprintf("%s\x00%d\x00%d", tenant, version, head)
	ch := s.wholeReads.DoChan(name, func() (any, error) {
		// Detached from the first caller's request: the others wait on it.
		ctx := context.WithoutCancel(ctx)
		tiers, err := s.tierCat.AllCustomerTiers(ctx, tenant)
		if err != nil {
			return nil, err
		}
		segs, err := s.segments(ctx, tenant, version)
		if err != nil {
			return nil, err
		}
		// Sorted here, so that the shared list is never sorted in place
		// (snapshot.Normalize sorts an unsorted one).
		slices.SortFunc(tiers, func(a, b snapshot.CustomerTier) int { return strings.Compare(string(a.Customer), string(b.Customer)) })
		w := &wholeLists{version: version, head: head, at: now, tiers: tiers, segs: segs}
		if s.opts.BuildMaxAge > 0 {
			s.wholes.Store(tenant, w)
		}
		return w, nil
	})
	select {
	case r := <-ch:
		if r.Err != nil {
			return nil, r.Err
		}
		return r.Val.(*wholeLists), nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (s *Service) campsOf(tenant protocol.TenantID) limitedCampaigns {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.camps[tenant]
}
