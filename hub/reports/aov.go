package reports

import (
	"context"
	"fmt"
	"time"

	"github.com/punchcard/punchcard/protocol"
	pledger "github.com/punchcard/punchcard/protocol/ledger"
)

// The aov report (issue 13, Deliver 3: "AOV with and without a reward").
// What the ledger can say honestly: the purchase history
// (ledger_purchases) has every order of a known customer that reached the
// hub as a fact, once per till transaction, with its subtotal; an order
// without a customer and without a reward sends no fact, so the hub never
// sees it. The report therefore covers the orders of known customers
// only, split by whether a reward was applied (docs/reports.md).

// PurchaseAOV is what the aov report reads of the ledger
// (store/ledger.Ledger).
type PurchaseAOV interface {
	PurchaseAOV(ctx context.Context, tenant protocol.TenantID, bs []pledger.Bucket) ([]pledger.AOVRow, error)
}

// AOVRow is one period's orders of known customers in one currency:
// with a reward (a redemption applied and not voided) and without, their
// subtotals and average values (rounded down; 0 without orders), in minor
// units.
type AOVRow struct {
	Period              string            `json:"period"`
	Start               time.Time         `json:"start"`
	End                 time.Time         `json:"end"`
	Currency            protocol.Currency `json:"currency"`
	OrdersWithReward    int64             `json:"orders_with_reward"`
	ValueWithReward     int64             `json:"value_with_reward"`
	AOVWithReward       int64             `json:"aov_with_reward"`
	OrdersWithoutReward int64             `json:"orders_without_reward"`
	ValueWithoutReward  int64             `json:"value_without_reward"`
	AOVWithoutReward    int64             `json:"aov_without_reward"`
}

func (s *Service) aov(ctx context.Context, tenant protocol.TenantID, q Query) ([]AOVRow, error) {
	pa, ok := s.led.(PurchaseAOV)
	if !ok {
		return nil, protocol.Errorf(protocol.CodeUnavailable, "this hub's ledger keeps no purchase history")
	}
	rows, err := pa.PurchaseAOV(ctx, tenant, q.Buckets)
	if err != nil {
		return nil, err
	}
	out := []AOVRow{}
	last := -1
	for _, r := range rows {
		if r.Bucket < 0 || r.Bucket >= len(q.Buckets) {
			return nil, fmt.Errorf("reports: the ledger answered period %d of %d", r.Bucket, len(q.Buckets))
		}
		if n := len(out); n == 0 || last != r.Bucket || out[n-1].Currency != r.Currency {
			b := q.Buckets[r.Bucket]
			out = append(out, AOVRow{Period: q.Labels[r.Bucket], Start: b.Start, End: b.End, Currency: r.Currency})
			last = r.Bucket
		}
		a := &out[len(out)-1]
		if r.Rewarded {
			a.OrdersWithReward, a.ValueWithReward = r.Orders, r.Value
			a.AOVWithReward = r.Value / r.Orders
		} else {
			a.OrdersWithoutReward, a.ValueWithoutReward = r.Orders, r.Value
			a.AOVWithoutReward = r.Value / r.Orders
		}
	}
	return out, nil
}
