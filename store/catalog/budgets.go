package catalog

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/punchcard/punchcard/protocol"
)

// LimitedCampaign is an active campaign with a budget (a total redemption
// or discount limit), for the hub's budget gauges (hub/metrics.go).
type LimitedCampaign struct {
	Tenant         protocol.TenantID
	Campaign       protocol.CampaignID
	MaxRedemptions int64 // 0 = no limit on the count
	MaxDiscount    int64 // minor units of Currency, 0 = no limit
	Currency       protocol.Currency
}

// LimitedCampaigns lists at most limit active campaigns that have a
// budget, across tenants, ordered by tenant and id, in one statement.
// Drafts, stopped campaigns and those without a limit are left out: only
// these can run out. The limit bounds what a metrics scrape exports.
func (c *Catalog) LimitedCampaigns(ctx context.Context, limit int) ([]LimitedCampaign, error) {
	var out []LimitedCampaign
	err := c.read(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT tenant, id,
			COALESCE(json_extract(doc, '$.limits.max_redemptions'), 0),
			COALESCE(json_extract(doc, '$.limits.max_discount'), 0),
			COALESCE(json_extract(doc, '$.currency'), '')
			FROM catalog_campaigns
			WHERE status = 'active' AND stopped_at IS NULL
			AND (COALESCE(json_extract(doc, '$.limits.max_redemptions'), 0) > 0 OR COALESCE(json_extract(doc, '$.limits.max_discount'), 0) > 0)
			ORDER BY tenant, id LIMIT ?`, limit)
		if err != nil {
			return fmt.Errorf("catalog: limited campaigns: %w", err)
		}
		defer rows.Close()
		for rows.Next() {
			var lc LimitedCampaign
			var tenant, id, cur string
			if err := rows.Scan(&tenant, &id, &lc.MaxRedemptions, &lc.MaxDiscount, &cur); err != nil {
				return fmt.Errorf("catalog: limited campaigns: %w", err)
			}
			lc.Tenant, lc.Campaign, lc.Currency = protocol.TenantID(tenant), protocol.CampaignID(id), protocol.Currency(cur)
			out = append(out, lc)
		}
		return rows.Err()
	})
	return out, err
}
