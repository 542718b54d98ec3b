package manage

import (
	"context"
	"time"

	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/protocol/segment"
)

// Customers lists the tenant's customers after the ID after, at most
// limit (MaxListLimit). Reason codes: not_found (the tenant).
func (s *Service) Customers(ctx context.Context, tenant protocol.TenantID, after string, limit int64) ([]Customer, error) {
	if _, err := s.cat.Tenant(ctx, tenant); err != nil {
		return nil, err
	}
	return s.cat.Customers(ctx, tenant, after, page(limit))
}

// Customer returns one customer. Reason codes: not_found.
func (s *Service) Customer(ctx context.Context, tenant protocol.TenantID, id protocol.CustomerID) (Customer, error) {
	return s.cat.Customer(ctx, tenant, id)
}

// CreateCustomer creates a customer. Reason codes: invalid_input,
// conflict, not_found.
func (s *Service) CreateCustomer(ctx context.Context, actor Actor, tenant protocol.TenantID, cu Customer) (Customer, error) {
	return change(ctx, s, tenant, func() (Customer, error) { return s.cat.CreateCustomer(ctx, actor, tenant, cu) })
}

// UpdateCustomer replaces a customer's profile. Reason codes:
// invalid_input, not_found.
func (s *Service) UpdateCustomer(ctx context.Context, actor Actor, tenant protocol.TenantID, cu Customer) (Customer, error) {
	return change(ctx, s, tenant, func() (Customer, error) { return s.cat.UpdateCustomer(ctx, actor, tenant, cu) })
}

// EraseCustomer erases a customer's personal data (GDPR right to
// erasure); the ID and every ledger amount stay. Reason codes: not_found.
func (s *Service) EraseCustomer(ctx context.Context, actor Actor, tenant protocol.TenantID, id protocol.CustomerID) (Customer, error) {
	return change(ctx, s, tenant, func() (Customer, error) { return s.cat.EraseCustomer(ctx, actor, tenant, id) })
}

// History is a customer with their points (nil without a ledger), the
// tokens issued to them and the changes made to them.
type History struct {
	Customer Customer
	Points   *int64
	Tokens   []Token
	Changes  []AuditEntry
	// Lots are the customer's points lots still holding points, soonest
	// expiry first, and Expiring sums them by expiry (lots.go); nil
	// without a ledger that keeps lots.
	Lots     []PointsLot
	Expiring []Expiring
}

// CustomerHistory returns a customer's history. Reason codes: not_found.
func (s *Service) CustomerHistory(ctx context.Context, tenant protocol.TenantID, id protocol.CustomerID) (History, error) {
	cu, err := s.cat.Customer(ctx, tenant, id)
	if err != nil {
		return History{}, err
	}
	out := History{Customer: cu}
	if out.Tokens, err = s.cat.CustomerTokens(ctx, tenant, id, 0); err != nil {
		return out, err
	}
	if out.Changes, err = s.cat.CustomerHistory(ctx, tenant, id, 0); err != nil {
		return out, err
	}
	if s.opts.Ledger != nil {
		p, err := s.opts.Ledger.Points(ctx, tenant, id)
		if err != nil {
			return out, err
		}
		out.Points = &p
		if err := s.customerLots(ctx, tenant, id, &out); err != nil {
			return out, err
		}
	}
	return out, nil
}

// ExportFormat names the layout of a customer's data export.
const ExportFormat = "punchcard.customer-export.v1"

// Export is everything the hub keeps about one customer (GDPR right of
// access): the profile, the tokens issued to them, their points and every
// ledger entry naming them, and the audit entries about them and their
// tokens.
type Export struct {
	Format     string
	ExportedAt time.Time
	Tenant     protocol.TenantID
	Customer   Customer
	Points     *int64
	Tokens     []Token
	Ledger     []CustomerEntry
	Audit      []AuditEntry
	// Purchases is the customer's purchase history, newest first, and
	// Segments the segments stored for them (segments from behaviour;
	// empty without a ledger that keeps them).
	Purchases []segment.Purchase
	Segments  []string
}

// CustomerExport collects a customer's data as of now. Reason codes:
// not_found.
func (s *Service) CustomerExport(ctx context.Context, tenant protocol.TenantID, id protocol.CustomerID, now time.Time) (Export, error) {
	data, err := s.cat.CustomerData(ctx, tenant, id)
	if err != nil {
		return Export{}, err
	}
	out := Export{Format: ExportFormat, ExportedAt: protocol.APITime(now), Tenant: tenant, Customer: data.Customer,
		Tokens: data.Tokens, Ledger: []CustomerEntry{}, Audit: data.Audit}
	if s.opts.Ledger == nil {
		return out, nil
	}
	p, err := s.opts.Ledger.Points(ctx, tenant, id)
	if err != nil {
		return out, err
	}
	out.Points = &p
	if pl, ok := s.opts.Ledger.(PurchaseLedger); ok {
		if out.Purchases, err = pl.Purchases(ctx, tenant, id, 0); err != nil {
			return out, err
		}
		if out.Segments, err = pl.CustomerSegments(ctx, tenant, id); err != nil {
			return out, err
		}
	}
	for after := int64(0); ; {
		es, err := s.opts.Ledger.CustomerEntries(ctx, tenant, id, after, MaxListLimit)
		if err != nil {
			return out, err
		}
		out.Ledger = append(out.Ledger, es...)
		if len(es) < MaxListLimit {
			return out, nil
		}
		after = es[len(es)-1].ID
	}
}
