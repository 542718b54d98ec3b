package api

import (
	"context"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/store/catalog"
	"github.com/punchcard/punchcard/store/ledger"
)

// customerLedger is what the data export needs of the ledger beyond
// Ledger: the journal entries naming a customer.
type customerLedger interface {
	CustomerEntries(ctx context.Context, tenant protocol.TenantID, customer protocol.CustomerID, after int64, limit int) ([]ledger.CustomerEntry, error)
}

var _ customerLedger = (*ledger.Ledger)(nil)

// ExportFormat names the layout of a customer's data export.
const ExportFormat = "punchcard.customer-export.v1"

// customerExport is everything the hub keeps about one customer (GDPR
// right of access): the profile, the tokens issued to them, their points
// and every ledger entry naming them, and the audit entries about them and
// their tokens. Token texts follow the same rule as GET /tokens: a
// read-only key does not get them.
type customerExport struct {
	Format     string                 `json:"format"`
	ExportedAt time.Time              `json:"exported_at"`
	Tenant     protocol.TenantID      `json:"tenant"`
	Customer   catalog.Customer       `json:"customer"`
	Points     *int64                 `json:"points,omitempty"`
	Tokens     []tokenResponse        `json:"tokens"`
	Ledger     []ledger.CustomerEntry `json:"ledger"`
	Audit      []catalog.AuditEntry   `json:"audit"`
}

func (s *Server) exportCustomer(c *fiber.Ctx, k catalog.Key) error {
	ctx, tenant, id := c.UserContext(), tenantOf(c), protocol.CustomerID(c.Params("customer"))
	data, err := s.cat.CustomerData(ctx, tenant, id)
	if err != nil {
		return err
	}
	out := customerExport{Format: ExportFormat, ExportedAt: s.cfg.Now().UTC(), Tenant: tenant, Customer: data.Customer,
		Tokens: make([]tokenResponse, 0, len(data.Tokens)), Ledger: []ledger.CustomerEntry{}, Audit: data.Audit}
	for _, t := range data.Tokens {
		out.Tokens = append(out.Tokens, tokenOut(c, t, k))
	}
	if s.cfg.Ledger != nil {
		p, err := s.cfg.Ledger.Points(ctx, tenant, id)
		if err != nil {
			return err
		}
		out.Points = &p
		if cl, ok := s.cfg.Ledger.(customerLedger); ok {
			for after := int64(0); ; {
				es, err := cl.CustomerEntries(ctx, tenant, id, after, catalog.MaxListLimit)
				if err != nil {
					return err
				}
				out.Ledger = append(out.Ledger, es...)
				if len(es) < catalog.MaxListLimit {
					break
				}
				after = es[len(es)-1].ID
			}
		}
	}
	c.Set(fiber.HeaderCacheControl, "private, no-store")
	c.Set(fiber.HeaderContentDisposition, `attachment; filename="customer-`+string(id)+`.json"`)
	return c.JSON(out)
}
