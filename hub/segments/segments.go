// Package segments is the hub's service for segments from behaviour: it
// computes which of a tenant's segments (catalog definitions,
// protocol/segment) a customer is in from the purchase history the ledger
// keeps (ledger_011) and the customer's attributes, for the online
// decisions (always current), and runs the periodic recomputation of the
// stored memberships that snapshots carry to the tills (time-based rules:
// "no purchase for 90 days", "birthday this month" change with the clock,
// not with a fact). The ledger recomputes a customer's stored segments on
// each of its new purchases itself, in the fact's transaction.
package segments

import (
	"context"
	"time"

	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/protocol/catalog"
	"github.com/punchcard/punchcard/protocol/segment"
)

// Catalog is what the service reads of the catalog.
type Catalog interface {
	SegmentDefs(ctx context.Context, tenant protocol.TenantID) ([]segment.Definition, error)
	Customers(ctx context.Context, tenant protocol.TenantID, after string, limit int) ([]catalog.Customer, error)
}

// Ledger is what the service needs of the ledger.
type Ledger interface {
	PurchaseHistory(ctx context.Context, tenant protocol.TenantID, customer protocol.CustomerID, q segment.Query) (segment.History, error)
	SetSegments(ctx context.Context, tenant protocol.TenantID, us []segment.Update, now time.Time) (int, error)
}

// DefaultChunk is how many customers one transaction of Run stores.
const DefaultChunk = 500

// Service computes segments. Safe for concurrent use.
type Service struct {
	cat Catalog
	led Ledger
}

// New returns the service.
func New(cat Catalog, led Ledger) *Service { return &Service{cat: cat, led: led} }

// Of is the segments the customer is in at now, computed from the ledger's
// history: a handful of indexed lookups per rule, whatever the history.
// A tenant without definitions costs one catalog read.
func (s *Service) Of(ctx context.Context, tenant protocol.TenantID, customer protocol.CustomerID, attrs map[string]string, now time.Time) ([]string, error) {
	defs, err := s.cat.SegmentDefs(ctx, tenant)
	if err != nil || len(defs) == 0 || customer == "" {
		return nil, err
	}
	q := segment.Need(defs, now)
	h, err := s.led.PurchaseHistory(ctx, tenant, customer, q)
	if err != nil {
		return nil, err
	}
	return segment.Of(defs, q, h, attrs, now), nil
}

// RunTenant recomputes the stored segments of every customer of the
// tenant's catalog at now and returns how many changed. Idempotent: a
// second run at the same moment changes nothing. Its cost grows with the
// tenant's customers (it is the periodic job, not a decision).
func (s *Service) RunTenant(ctx context.Context, tenant protocol.TenantID, now time.Time) (int, error) {
	defs, err := s.cat.SegmentDefs(ctx, tenant)
	if err != nil || len(defs) == 0 {
		return 0, err
	}
	q := segment.Need(defs, now)
	changed, after := 0, ""
	for {
		cs, err := s.cat.Customers(ctx, tenant, after, DefaultChunk)
		if err != nil {
			return changed, err
		}
		if len(cs) == 0 {
			return changed, nil
		}
		us := make([]segment.Update, 0, len(cs))
		for _, cu := range cs {
			h, err := s.led.PurchaseHistory(ctx, tenant, cu.ID, q)
			if err != nil {
				return changed, err
			}
			us = append(us, segment.Update{Customer: cu.ID, Segments: segment.Of(defs, q, h, cu.Attributes, now)})
		}
		n, err := s.led.SetSegments(ctx, tenant, us, now)
		changed += n
		if err != nil {
			return changed, err
		}
		after = string(cs[len(cs)-1].ID)
	}
}
