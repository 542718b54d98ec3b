package api

import (
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/punchcard/punchcard/hub/manage"
	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/protocol/segment"
)

// ExportFormat names the layout of a customer's data export.
const ExportFormat = manage.ExportFormat

// customerExport is everything the hub keeps about one customer (GDPR
// right of access): the profile, the tokens issued to them, their points
// and every ledger entry naming them, and the audit entries about them and
// their tokens. Token texts follow the same rule as GET /tokens: a
// read-only key does not get them.
type customerExport struct {
	Format     string                 `json:"format"`
	ExportedAt time.Time              `json:"exported_at"`
	Tenant     protocol.TenantID      `json:"tenant"`
	Customer   manage.Customer        `json:"customer"`
	Points     *int64                 `json:"points,omitempty"`
	Tokens     []tokenResponse        `json:"tokens"`
	Ledger     []manage.CustomerEntry `json:"ledger"`
	Audit      []manage.AuditEntry    `json:"audit"`
	Purchases  []segment.Purchase     `json:"purchases"`
	Segments   []string               `json:"segments"`
}

func (s *Server) exportCustomer(c *fiber.Ctx, k manage.Key) error {
	ctx, tenant, id := c.UserContext(), tenantOf(c), protocol.CustomerID(c.Params("customer"))
	x, err := s.mg.CustomerExport(ctx, tenant, id, s.cfg.Now())
	if err != nil {
		return err
	}
	out := customerExport{Format: x.Format, ExportedAt: x.ExportedAt, Tenant: x.Tenant, Customer: x.Customer, Points: x.Points,
		Tokens: make([]tokenResponse, 0, len(x.Tokens)), Ledger: x.Ledger, Audit: x.Audit,
		Purchases: append([]segment.Purchase{}, x.Purchases...), Segments: append([]string{}, x.Segments...)}
	for _, t := range x.Tokens {
		out.Tokens = append(out.Tokens, tokenOut(c, t, k))
	}
	c.Set(fiber.HeaderCacheControl, "private, no-store")
	c.Set(fiber.HeaderContentDisposition, `attachment; filename="customer-`+string(id)+`.json"`)
	return c.JSON(out)
}
