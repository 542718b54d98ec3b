package rules_test

import (
	"testing"

	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/protocol/rules"
)

// checkInvariants holds for every decision, whatever the rules: money is
// never negative, no discount exceeds the order or any cap, the parts add
// up to the totals.
func checkInvariants(t testing.TB, cat *rules.Catalog, req rules.Request, d rules.Decision) {
	t.Helper()
	if d.Error != nil {
		for i, r := range d.Results {
			if r.Applied || r.Reason == "" {
				t.Errorf("refused request: results[%d] = %+v", i, r)
			}
		}
		return
	}
	if len(d.Results) < len(req.Redeemables) {
		t.Fatalf("%d results for %d redeemables", len(d.Results), len(req.Redeemables))
	}
	for name, v := range map[string]int64{
		"discount": d.Discount, "shipping_discount": d.ShippingDiscount, "total": d.Total,
		"paid": d.Paid, "due": d.Due, "points_earned": d.PointsEarned, "points_burned": d.PointsBurned,
	} {
		if v < 0 {
			t.Errorf("%s = %d < 0", name, v)
		}
	}
	if d.Discount > d.Subtotal {
		t.Errorf("discount %d > subtotal %d", d.Discount, d.Subtotal)
	}
	if d.ShippingDiscount > d.Shipping {
		t.Errorf("shipping discount %d > shipping %d", d.ShippingDiscount, d.Shipping)
	}
	if d.Paid > d.Total {
		t.Errorf("paid %d > total %d", d.Paid, d.Total)
	}
	if d.PointsBurned > req.Points {
		t.Errorf("points burned %d > balance %d", d.PointsBurned, req.Points)
	}
	if got := d.Subtotal + d.Shipping - d.Discount - d.ShippingDiscount; got != d.Total {
		t.Errorf("total %d, want %d", d.Total, got)
	}
	perLine := make([]int64, len(req.Order.Lines))
	var disc, ship, paid, burned int64
	for i, r := range d.Results {
		if !r.Applied {
			if r.Reason == "" || r.Discount != 0 || r.ShippingDiscount != 0 || r.Spend != 0 || r.PointsBurned != 0 || r.Step != 0 {
				t.Errorf("results[%d] refused but %+v", i, r)
			}
			continue
		}
		if r.Reason != "" || r.Step <= 0 {
			t.Errorf("results[%d] applied but %+v", i, r)
		}
		if r.Discount < 0 || r.ShippingDiscount < 0 || r.Spend < 0 || r.PointsBurned < 0 {
			t.Errorf("results[%d] negative: %+v", i, r)
		}
		disc += r.Discount
		ship += r.ShippingDiscount
		paid += r.Spend
		burned += r.PointsBurned
		var lineSum int64
		for _, l := range r.Lines {
			if l.Discount <= 0 || l.Line < 0 || l.Line >= len(perLine) {
				t.Errorf("results[%d] bad line %+v", i, l)
				continue
			}
			perLine[l.Line] += l.Discount
			lineSum += l.Discount
		}
		if lineSum != r.Discount {
			t.Errorf("results[%d] lines sum to %d, discount %d", i, lineSum, r.Discount)
		}
		c, ok := cat.Campaign(req.Tenant, r.Campaign)
		if !ok {
			t.Errorf("results[%d] applied an unknown campaign %s", i, r.Campaign)
			continue
		}
		if c.Currency != req.Order.Currency {
			t.Errorf("results[%d] applied a %s campaign to a %s order", i, c.Currency, req.Order.Currency)
		}
		if m := c.Reward.MaxDiscount; m > 0 && r.Discount+r.ShippingDiscount > m {
			t.Errorf("results[%d] gives %d over the reward cap %d", i, r.Discount+r.ShippingDiscount, m)
		}
		if m := c.Limits.MaxDiscount; m > 0 && r.Discount+r.ShippingDiscount > m {
			t.Errorf("results[%d] gives %d over the budget %d", i, r.Discount+r.ShippingDiscount, m)
		}
		if b, ok := req.Budgets[c.ID]; ok && b.Amount >= 0 && r.Discount+r.ShippingDiscount > b.Amount {
			t.Errorf("results[%d] gives %d over the budget left %d", i, r.Discount+r.ShippingDiscount, b.Amount)
		}
		if c.Reward.Kind == rules.RewardPercentOff {
			var base int64
			for _, l := range req.Order.Lines {
				tot, _ := l.Total()
				base += tot
			}
			if lim := protocol.PercentOf(base, protocol.BasisPoints(c.Reward.PercentBP)); r.Discount > lim {
				t.Errorf("results[%d] percent discount %d > %d", i, r.Discount, lim)
			}
		}
		if r.Index >= 0 {
			rd := req.Redeemables[r.Index]
			if c.Reward.Kind == rules.RewardGiftCard && r.Spend > rd.Balance {
				t.Errorf("results[%d] spends %d of a %d balance", i, r.Spend, rd.Balance)
			}
		}
	}
	if disc != d.Discount || ship != d.ShippingDiscount || paid != d.Paid || burned != d.PointsBurned {
		t.Errorf("results sum to %d/%d/%d/%d, decision says %d/%d/%d/%d", disc, ship, paid, burned, d.Discount, d.ShippingDiscount, d.Paid, d.PointsBurned)
	}
	for i, l := range req.Order.Lines {
		tot, _ := l.Total()
		if d.LineTotals[i] < 0 || d.LineTotals[i] != tot-perLine[i] {
			t.Errorf("line %d total %d, want %d - %d", i, d.LineTotals[i], tot, perLine[i])
		}
	}
	var earned int64
	for _, e := range d.Earnings {
		if e.Points <= 0 {
			t.Errorf("earning %+v not positive", e)
		}
		var lp int64
		for _, l := range e.Lines {
			lp += l.Points
		}
		if len(e.Lines) > 0 && lp != e.Points {
			t.Errorf("earning %s lines sum to %d, points %d", e.Rule, lp, e.Points)
		}
		earned += e.Points
	}
	if earned != d.PointsEarned {
		t.Errorf("earnings sum to %d, decision says %d", earned, d.PointsEarned)
	}
}
