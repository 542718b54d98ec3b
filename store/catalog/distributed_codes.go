package catalog

import (
	"context"
	"fmt"
	"time"

	"github.com/punchcard/punchcard/protocol"
)

// DistributedPage is how many distributed codes EachDistributedCode reads
// per statement: no read transaction is held between pages.
const DistributedPage = 2000

// EachDistributedCode calls fn with a page of the codes and tokens of
// campaign that distributions gave out in [from, to) (when each was
// made; a zero from or to leaves that end open), in the order they were
// made, DistributedPage at a time (keyset paging on the
// catalog_distribution_items_campaign index): memory stays flat whatever
// the range holds. The slices are reused between calls. fn's error stops
// the walk and is returned.
func (c *Catalog) EachDistributedCode(ctx context.Context, tenant protocol.TenantID, campaign protocol.CampaignID, from, to time.Time,
	fn func(distributions []string, codes []protocol.CodeID) error) error {
	lo, hi := int64(0), int64(1<<62)
	if !from.IsZero() {
		lo = from.UnixMicro()
	}
	if !to.IsZero() {
		hi = to.UnixMicro()
	}
	lastAt, lastRow := lo, int64(-1)
	ds := make([]string, 0, DistributedPage)
	cs := make([]protocol.CodeID, 0, DistributedPage)
	for {
		rows, err := c.db.QueryContext(ctx, `SELECT rowid, at, distribution, code FROM catalog_distribution_items INDEXED BY catalog_distribution_items_campaign
			WHERE tenant = ? AND campaign = ? AND code IS NOT NULL AND (at, rowid) > (?, ?) AND at < ? ORDER BY at, rowid LIMIT ?`,
			string(tenant), string(campaign), lastAt, lastRow, hi, DistributedPage)
		if err != nil {
			return fmt.Errorf("catalog: distributed codes: %w", err)
		}
		ds, cs = ds[:0], cs[:0]
		for rows.Next() {
			var d, code string
			if err := rows.Scan(&lastRow, &lastAt, &d, &code); err != nil {
				rows.Close()
				return fmt.Errorf("catalog: distributed codes: %w", err)
			}
			ds, cs = append(ds, d), append(cs, protocol.CodeID(code))
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("catalog: distributed codes: %w", err)
		}
		if len(cs) > 0 {
			if err := fn(ds, cs); err != nil {
				return err
			}
		}
		if len(cs) < DistributedPage {
			return nil
		}
	}
}
