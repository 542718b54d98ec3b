package rules_test

import (
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/protocol/rules"
)

// gen makes random but valid campaigns, orders and requests from a small
// vocabulary, so that targets, stacking and limits collide often.
type gen struct{ r *rand.Rand }

func newGen(seed uint64) *gen { return &gen{rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))} }

var (
	genSKUs = []string{"A", "B", "C", "D", "E", "F", "G", "H"}
	genCats = []string{"shoes", "shirts", "food", "drinks"}
	genDays = []string{"mon", "tue", "wed", "thu", "fri", "sat", "sun"}
)

func (g *gen) pick(l []string) string { return l[g.r.IntN(len(l))] }

func (g *gen) target(nilOK bool) *rules.Target {
	switch g.r.IntN(4) {
	case 0:
		if nilOK {
			return nil
		}
		return &rules.Target{Categories: []string{g.pick(genCats)}}
	case 1:
		return &rules.Target{SKUs: []string{g.pick(genSKUs)}}
	case 2:
		return &rules.Target{Categories: []string{g.pick(genCats)}}
	default:
		a, b := g.pick(genSKUs), g.pick(genSKUs)
		if a == b {
			return &rules.Target{SKUs: []string{a}}
		}
		return &rules.Target{SKUs: []string{a, b}}
	}
}

func (g *gen) reward() rules.Reward {
	r := g.r
	maybeCap := func() int64 {
		if r.IntN(3) == 0 {
			return 1 + r.Int64N(3000)
		}
		return 0
	}
	pick := []rules.Pick{"", rules.PickCheapest, rules.PickMostExpensive}[r.IntN(3)]
	switch r.IntN(10) {
	case 0:
		return rules.Reward{Kind: rules.RewardPercentOff, PercentBP: 1 + r.Int64N(10000), MaxDiscount: maybeCap(), Target: g.target(true)}
	case 1:
		return rules.Reward{Kind: rules.RewardAmountOff, Amount: 1 + r.Int64N(5000), Target: g.target(true)}
	case 2:
		return rules.Reward{Kind: rules.RewardFixedPrice, Amount: r.Int64N(1000), Target: g.target(true), Pick: pick, MaxQuantity: r.Int64N(3), MaxDiscount: maybeCap()}
	case 3:
		return rules.Reward{Kind: rules.RewardFreeItem, Target: g.target(false), Get: r.Int64N(3), Pick: pick, GetPercentBP: r.Int64N(10001), MaxDiscount: maybeCap()}
	case 4:
		rw := rules.Reward{Kind: rules.RewardBuyXGetY, Buy: 1 + r.Int64N(3), Get: 1 + r.Int64N(2), Target: g.target(true), Pick: pick,
			GetPercentBP: r.Int64N(10001), MaxApplications: r.Int64N(3), MaxDiscount: maybeCap()}
		if r.IntN(2) == 0 {
			rw.GetTarget = g.target(false)
		}
		return rw
	case 5:
		return rules.Reward{Kind: rules.RewardSpendTiers, Target: g.target(true), MaxDiscount: maybeCap(),
			Tiers: []rules.Tier{{Min: 1000, Amount: 100 + r.Int64N(500)}, {Min: 5000, PercentBP: 1 + r.Int64N(3000)}}}
	case 6:
		return rules.Reward{Kind: rules.RewardQuantityTiers, Target: g.target(true), MaxDiscount: maybeCap(),
			Tiers: []rules.Tier{{Min: 2, Amount: 1 + r.Int64N(300)}, {Min: 4, PercentBP: 1 + r.Int64N(5000)}}}
	case 7:
		return rules.Reward{Kind: rules.RewardBundle, Amount: r.Int64N(3000), Pick: pick, MaxApplications: r.Int64N(3),
			Bundle: []rules.BundleItem{{Target: *g.target(false), Quantity: 1 + r.Int64N(2)}, {Target: *g.target(false), Quantity: 1}}}
	case 8:
		return rules.Reward{Kind: rules.RewardFreeShipping, MaxDiscount: maybeCap()}
	default:
		return rules.Reward{Kind: rules.RewardGiftCard, MultiUse: r.IntN(2) == 0}
	}
}

func (g *gen) campaign(tenant protocol.TenantID, i int) rules.Campaign {
	r := g.r
	c := rules.Campaign{Schema: 1, ID: protocol.CampaignID(fmt.Sprintf("c%04d", i)), Tenant: tenant, Status: rules.StatusActive,
		Currency: "EUR", Reward: g.reward()}
	if r.IntN(20) == 0 {
		c.Status = rules.StatusStopped
	}
	if r.IntN(10) == 0 {
		c.Currency = "USD"
	}
	if c.Reward.Kind != rules.RewardGiftCard && r.IntN(8) == 0 {
		c.Trigger = rules.TriggerAuto
	}
	c.Stacking.Mode = []rules.StackMode{"", "", rules.StackExclusive, rules.StackJoint}[r.IntN(4)]
	if c.Reward.Kind == rules.RewardGiftCard {
		c.Stacking.Mode = ""
	}
	c.Stacking.Category = []string{"", "a", "b", "c"}[r.IntN(4)]
	if r.IntN(5) == 0 {
		c.Stacking.Forbid = []string{[]string{"a", "b", "c"}[r.IntN(3)]}
	}
	if r.IntN(5) == 0 && c.Stacking.Mode != rules.StackJoint {
		c.Stacking.Allow = []string{[]string{"a", "b", "c"}[r.IntN(3)]}
		if len(c.Stacking.Forbid) > 0 && c.Stacking.Forbid[0] == c.Stacking.Allow[0] {
			c.Stacking.Forbid = nil
		}
	}
	c.Stacking.Priority = int32(r.IntN(3))
	if r.IntN(3) == 0 {
		c.Stacking.Base = rules.BaseInitial
	}
	if r.IntN(4) == 0 {
		c.Limits.MaxDiscount = 1 + r.Int64N(2000)
	}
	if r.IntN(6) == 0 {
		c.Eligibility.MinSubtotal = r.Int64N(10000)
	}
	if r.IntN(6) == 0 {
		c.Eligibility.Days = []string{g.pick(genDays)}
	}
	if r.IntN(6) == 0 {
		c.Eligibility.Hours = []rules.HourWindow{{From: "10:00", To: "14:00"}, {From: "22:00", To: "02:00"}}
	}
	if r.IntN(8) == 0 {
		c.Eligibility.Tiers = []string{"gold"}
	}
	return c
}

func (g *gen) campaigns(tenant protocol.TenantID, n int) []rules.Campaign {
	out := make([]rules.Campaign, 0, n)
	for i := range n {
		c := g.campaign(tenant, i)
		if c.Validate() != nil {
			continue // the generator does not aim at validity for every mix
		}
		out = append(out, c)
	}
	return append(out, g.program(tenant))
}

// program is a random points program "loyalty".
func (g *gen) program(tenant protocol.TenantID) rules.Campaign {
	r := g.r
	pp := &rules.PointsProgram{
		Earn: []rules.EarnRule{
			{ID: "spend", On: rules.EarnSpend, PerAmount: 1 + r.Int64N(200), MilliPoints: 1 + r.Int64N(3000), MaxPoints: r.Int64N(100)},
			{ID: "item", On: rules.EarnItem, Target: g.target(true), MilliPoints: 1 + r.Int64N(5000), PeriodCap: 1 + r.Int64N(50), Period: rules.PeriodMonth},
			{ID: "order", On: rules.EarnOrder, MilliPoints: 1 + r.Int64N(20000), MinSubtotal: r.Int64N(5000)},
		},
		TierRates:   []rules.TierRate{{Tier: "gold", MultiplierBP: 10000 + r.Int64N(10000)}},
		Multipliers: []rules.Multiplier{{Days: []string{g.pick(genDays)}, MultiplierBP: 10000 + r.Int64N(20000)}},
		BurnPoints:  1 + r.Int64N(200), BurnValue: 1 + r.Int64N(200),
		Expiry: rules.Expiry{Kind: rules.ExpiryBucketed, Bucket: rules.PeriodQuarter, Years: 2},
	}
	return rules.Campaign{Schema: 1, ID: "loyalty", Tenant: tenant, Status: rules.StatusActive, Currency: "EUR",
		Reward: rules.Reward{Kind: rules.RewardPoints, Points: pp}}
}

func (g *gen) order(lines int) protocol.Order {
	r := g.r
	o := protocol.Order{Currency: "EUR"}
	if r.IntN(2) == 0 {
		o.Shipping = r.Int64N(1000)
	}
	for range lines {
		sku := g.pick(genSKUs)
		o.Lines = append(o.Lines, protocol.Line{SKU: sku, Category: genCats[int(sku[0]-'A')%len(genCats)],
			Quantity: 1 + r.Int64N(4), UnitPrice: r.Int64N(5000) + r.Int64N(2)})
	}
	return o
}

func (g *gen) request(cs []rules.Campaign, lines, redeemables int, store rules.Store) rules.Request {
	r := g.r
	req := rules.Request{Tenant: "acme", Order: g.order(lines), Store: store,
		Now:    time.Date(2026, 11, 23+r.IntN(7), r.IntN(24), r.IntN(60), 0, 0, time.UTC),
		Points: r.Int64N(3000)}
	if r.IntN(2) == 0 {
		req.Customer = &protocol.Customer{ID: "c-1", Tier: []string{"", "gold"}[r.IntN(2)]}
	}
	for i := range redeemables {
		c := cs[r.IntN(len(cs))]
		rd := rules.Redeemable{Kind: rules.RedeemCode, Code: protocol.CodeID(fmt.Sprintf("K%d", r.IntN(redeemables*2))), Campaign: c.ID}
		if c.Reward.Kind == rules.RewardPoints {
			rd = rules.Redeemable{Kind: rules.RedeemPoints, Campaign: c.ID, Amount: r.Int64N(2) * r.Int64N(req.Points+1)}
		}
		if c.Reward.Kind == rules.RewardGiftCard {
			rd.Kind = rules.RedeemGiftCard
			rd.Code = protocol.CodeID(fmt.Sprintf("G%d", i))
			rd.Balance = r.Int64N(10000)
			if r.IntN(3) == 0 {
				rd.Amount = r.Int64N(rd.Balance + 1)
			}
		}
		req.Redeemables = append(req.Redeemables, rd)
	}
	if r.IntN(3) == 0 && len(cs) > 0 {
		req.Budgets = map[protocol.CampaignID]rules.Budget{cs[r.IntN(len(cs))].ID: {Count: -1, Amount: r.Int64N(500)}}
	}
	return req
}
