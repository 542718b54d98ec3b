package manage

import (
	"context"
	"time"

	"github.com/punchcard/punchcard/hub/segments"
	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/protocol/segment"
)

// SegmentCatalog is what segment management needs of the catalog
// (store/catalog; catalog_005).
type SegmentCatalog interface {
	segments.Catalog
	PutSegment(ctx context.Context, tenant protocol.TenantID, d segment.Definition) (bool, error)
	Segment(ctx context.Context, tenant protocol.TenantID, id string) (segment.Definition, error)
	DeleteSegment(ctx context.Context, tenant protocol.TenantID, id string) error
}

// PurchaseLedger is what segment and history answers need of the ledger
// (store/ledger; ledger_011).
type PurchaseLedger interface {
	segments.Ledger
	Purchases(ctx context.Context, tenant protocol.TenantID, customer protocol.CustomerID, limit int) ([]segment.Purchase, error)
	CustomerSegments(ctx context.Context, tenant protocol.TenantID, customer protocol.CustomerID) ([]string, error)
}

func (s *Service) segCatalog() (SegmentCatalog, error) {
	sc, ok := s.cat.(SegmentCatalog)
	if !ok {
		return nil, protocol.Errorf(protocol.CodeUnavailable, "segments are not available on this hub")
	}
	return sc, nil
}

func (s *Service) purchaseLedger() (PurchaseLedger, error) {
	pl, ok := s.opts.Ledger.(PurchaseLedger)
	if !ok {
		return nil, protocol.Errorf(protocol.CodeUnavailable, "the ledger is not available on this hub")
	}
	return pl, nil
}

// PutSegment creates or replaces a segment definition; created says
// which. Reason codes: invalid_input (field), not_found (tenant),
// unavailable.
func (s *Service) PutSegment(ctx context.Context, tenant protocol.TenantID, d segment.Definition) (bool, error) {
	sc, err := s.segCatalog()
	if err != nil {
		return false, err
	}
	return sc.PutSegment(ctx, tenant, d)
}

// Segment returns one definition. Reason codes: not_found, unavailable.
func (s *Service) Segment(ctx context.Context, tenant protocol.TenantID, id string) (segment.Definition, error) {
	sc, err := s.segCatalog()
	if err != nil {
		return segment.Definition{}, err
	}
	return sc.Segment(ctx, tenant, id)
}

// Segments lists the tenant's definitions. Reason codes: unavailable.
func (s *Service) Segments(ctx context.Context, tenant protocol.TenantID) ([]segment.Definition, error) {
	sc, err := s.segCatalog()
	if err != nil {
		return nil, err
	}
	return sc.SegmentDefs(ctx, tenant)
}

// DeleteSegment removes a definition. Reason codes: not_found, unavailable.
func (s *Service) DeleteSegment(ctx context.Context, tenant protocol.TenantID, id string) error {
	sc, err := s.segCatalog()
	if err != nil {
		return err
	}
	return sc.DeleteSegment(ctx, tenant, id)
}

// CustomerSegments is a customer's segments: as computed now from the
// purchase history (what online eligibility uses) and as stored (what the
// tills' snapshots carry, recomputed on each purchase and by the periodic
// run).
type CustomerSegments struct {
	Customer protocol.CustomerID `json:"customer"`
	Now      []string            `json:"segments"`
	Stored   []string            `json:"stored"`
}

// SegmentsOf answers CustomerSegments at now. Reason codes: not_found
// (customer), unavailable.
func (s *Service) SegmentsOf(ctx context.Context, tenant protocol.TenantID, customer protocol.CustomerID, now time.Time) (CustomerSegments, error) {
	sc, err := s.segCatalog()
	if err != nil {
		return CustomerSegments{}, err
	}
	pl, err := s.purchaseLedger()
	if err != nil {
		return CustomerSegments{}, err
	}
	cu, err := s.cat.Customer(ctx, tenant, customer)
	if err != nil {
		return CustomerSegments{}, err
	}
	out := CustomerSegments{Customer: customer, Now: []string{}, Stored: []string{}}
	cur, err := segments.New(sc, pl).Of(ctx, tenant, customer, cu.Attributes, now)
	if err != nil {
		return out, err
	}
	st, err := pl.CustomerSegments(ctx, tenant, customer)
	if err != nil {
		return out, err
	}
	out.Now, out.Stored = append(out.Now, cur...), append(out.Stored, st...)
	return out, nil
}

// Purchases is a customer's purchase history, newest first, at most limit
// (0: MaxListLimit): the orders the hub knows of from its online sales
// and the tills' facts. Reason codes: unavailable.
func (s *Service) Purchases(ctx context.Context, tenant protocol.TenantID, customer protocol.CustomerID, limit int64) ([]segment.Purchase, error) {
	pl, err := s.purchaseLedger()
	if err != nil {
		return nil, err
	}
	n := page(limit)
	if n == 0 {
		n = MaxListLimit
	}
	return pl.Purchases(ctx, tenant, customer, n) // n > 0: bounded
}
