package decide

import (
	"context"
	"time"

	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/protocol/rules"
)

// Period caps across orders. A points program's earning rule with a
// period_cap caps what one customer earns from it per calendar period.
// The engine applies the cap to what the caller says was already earned
// (rules.Request.Earned); this step asks the side's Source for it, for
// every capped rule of the tenant, and marks each earn it records with
// the rule and period (protocol.Redemption.Cap) so that the ledger keeps
// the customer's total. The period is computed in the store's time zone.

// capRule is one period-capped earning rule, or (rule "", redeem) a
// campaign's limit of redemptions per customer and period
// (limits.per_customer_period): both are a customer's total per period,
// kept and asked for alike.
type capRule struct {
	campaign protocol.CampaignID
	on       rules.EarnOn // the earning rule's trigger; "" for a redemption limit
	period   rules.Period
	limit    int64
	redeem   bool
}

// compileCaps lists the period caps of campaigns.
func compileCaps(campaigns []rules.Campaign) map[rules.EarnKey]capRule {
	out := map[rules.EarnKey]capRule{}
	for i := range campaigns {
		c := &campaigns[i]
		if l := c.Limits; l.PerCustomerPeriod > 0 && l.CustomerPeriod != "" {
			out[rules.EarnKey{Campaign: c.ID}] = capRule{campaign: c.ID, period: l.CustomerPeriod, limit: l.PerCustomerPeriod, redeem: true}
		}
		if c.Reward.Kind != rules.RewardPoints || c.Reward.Points == nil {
			continue
		}
		for j := range c.Reward.Points.Earn {
			r := &c.Reward.Points.Earn[j]
			if r.PeriodCap <= 0 || r.Period == "" {
				continue
			}
			out[rules.EarnKey{Campaign: c.ID, Rule: r.ID}] = capRule{campaign: c.ID, on: r.On, period: r.Period, limit: r.PeriodCap}
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// PeriodSource is the part of Source that answers period totals: what the
// customer earned in each named period (one figure per key, in order).
// The hub answers from its ledger (and the holds of online-first tills);
// a till from the hub's answer when it asked online first, plus its own
// facts the hub does not count yet, or from its own facts alone offline.
type PeriodSource interface {
	Earned(ctx context.Context, customer protocol.CustomerID, keys []protocol.PeriodKey) ([]int64, error)
}

// periods fills req.Earned (and, for a sale, req.CustomerPeriodUses) for
// the period caps of kind event (true: the custom event rules; false: the
// sale's earning rules and redemption limits) and returns their keys.
func (rs *Rules) periods(ctx context.Context, src PeriodSource, req *rules.Request, event bool) (map[rules.EarnKey]protocol.PeriodKey, error) {
	if len(rs.caps) == 0 || req.Customer == nil || req.Customer.ID == "" {
		return nil, nil
	}
	loc, err := rs.Cat.Location(req.Store)
	if err != nil {
		return nil, nil // the engine refuses the store with the same error
	}
	var eks []rules.EarnKey
	var keys []protocol.PeriodKey
	for ek, cr := range rs.caps {
		if (cr.on == rules.EarnEvent) != event || (event && cr.redeem) || (!cr.redeem && req.NoEarn && !event) {
			continue
		}
		eks = append(eks, ek)
		keys = append(keys, PeriodKeyOf(ek, cr.period, req.Now, loc))
	}
	if len(keys) == 0 {
		return nil, nil
	}
	got, err := src.Earned(ctx, req.Customer.ID, keys)
	if err != nil {
		return nil, err
	}
	out := make(map[rules.EarnKey]protocol.PeriodKey, len(keys))
	for i, ek := range eks {
		out[ek] = keys[i]
		var n int64
		if i < len(got) {
			n = got[i]
		}
		if rs.caps[ek].redeem {
			if req.CustomerPeriodUses == nil {
				req.CustomerPeriodUses = map[protocol.CampaignID]int64{}
			}
			req.CustomerPeriodUses[ek.Campaign] = n
			continue
		}
		if req.Earned == nil {
			req.Earned = map[rules.EarnKey]int64{}
		}
		req.Earned[ek] = n
	}
	return out, nil
}

// PeriodKeyOf is the key of the period of rule ek holding now, on the
// calendar of loc.
func PeriodKeyOf(ek rules.EarnKey, p rules.Period, now time.Time, loc *time.Location) protocol.PeriodKey {
	return protocol.PeriodKey{Campaign: ek.Campaign, Rule: ek.Rule, Period: string(p), Start: rules.PeriodStart(p, now, loc).Unix()}
}

// capOf is the Cap an earning of rule ek carries, nil when not capped.
func (rs *Rules) capOf(keys map[rules.EarnKey]protocol.PeriodKey, ek rules.EarnKey) *protocol.EarnCap {
	k, ok := keys[ek]
	if !ok {
		return nil
	}
	return &protocol.EarnCap{Rule: k.Rule, Period: k.Period, Start: k.Start, Limit: rs.caps[ek].limit}
}

// Periods are the period keys the decision counted, with what the Source
// said was already earned in each: a till's fact carries them
// (protocol.Sale.Earned) for the hub to re-derive the same points, and
// the hub's authorize answer sends them to the till.
func (o *Outcome) Periods() []PeriodFigure {
	out := make([]PeriodFigure, 0, len(o.periods))
	for ek, k := range o.periods {
		n := o.Request.Earned[ek]
		if ek.Rule == "" {
			n = o.Request.CustomerPeriodUses[ek.Campaign]
		}
		out = append(out, PeriodFigure{PeriodKey: k, Points: n})
	}
	sortFigures(out)
	return out
}

// PeriodFigure is what a customer earned in one capped rule's period (or,
// for Rule "", how many times they redeemed the campaign in it).
type PeriodFigure struct {
	protocol.PeriodKey
	Points int64 `json:"points"`
}

func sortFigures(fs []PeriodFigure) {
	for i := 1; i < len(fs); i++ {
		for j := i; j > 0 && less(fs[j].PeriodKey, fs[j-1].PeriodKey); j-- {
			fs[j], fs[j-1] = fs[j-1], fs[j]
		}
	}
}

func less(a, b protocol.PeriodKey) bool {
	if a.Campaign != b.Campaign {
		return a.Campaign < b.Campaign
	}
	return a.Rule < b.Rule
}

// SaleEarned is Periods as a till's sale carries them.
func (o *Outcome) SaleEarned() []protocol.SaleEarned {
	var out []protocol.SaleEarned
	for _, f := range o.Periods() {
		out = append(out, protocol.SaleEarned{Campaign: f.Campaign, Rule: f.Rule, Points: f.Points})
	}
	return out
}

// Event is a custom event (newsletter sign-up, review, birthday) that may
// earn points.
type Event struct {
	Tenant   protocol.TenantID
	Where    Where
	Customer protocol.Customer // needs an ID
	Type     string
	Now      time.Time
}

// EarnEvent runs the event-earning part of the engine (rules.EarnForEvent)
// with the customer's period totals from src, and returns the earns to
// record (Kind earn, Campaign, Points, Cap; the caller fills the
// identity) with the engine's earnings. Reason codes: customer_required,
// invalid_input (event, time, store), not_found (customer).
func EarnEvent(ctx context.Context, src Source, rs *Rules, ev Event) ([]protocol.Redemption, []rules.Earning, error) {
	if err := ev.Customer.Validate(); err != nil {
		return nil, nil, err
	}
	cu, _, err := src.Customer(ctx, ev.Customer)
	if err != nil {
		return nil, nil, err
	}
	req := rules.Request{Tenant: ev.Tenant, Customer: &cu, Store: ev.Where.Store, Now: ev.Now}
	keys, err := rs.periods(ctx, src, &req, true)
	if err != nil {
		return nil, nil, err
	}
	es, err := rules.EarnForEvent(rs.Cat, rules.EventRequest{Tenant: ev.Tenant, Customer: &cu, Store: ev.Where.Store, Now: ev.Now, Event: ev.Type, Earned: req.Earned})
	if err != nil {
		return nil, nil, err
	}
	var out []protocol.Redemption
	for _, e := range es {
		if e.Points <= 0 {
			continue
		}
		out = append(out, protocol.Redemption{Kind: protocol.KindEarn, Campaign: e.Campaign, Points: e.Points, Customer: cu.ID,
			Cap: rs.capOf(keys, rules.EarnKey{Campaign: e.Campaign, Rule: e.Rule})})
	}
	return out, es, nil
}
