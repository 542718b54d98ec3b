package decide

import (
	"strconv"

	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/protocol/rules"
)

// Effect is one redemption a decision records: a redeem per applied
// result, and an earn per earning of the sale's points (on the order after
// its discounts). The caller fills the identity (ID, tenant, store, txn,
// order, customer, currency, order total) of Redemption.
type Effect struct {
	Redemption protocol.Redemption
	// Index is the presented thing it came from, -1 for an automatic
	// campaign or an earn.
	Index int
	// Item is the presented thing's resolution, nil when Index is -1.
	Item *Item
	// Limited is set when the campaign has a budget.
	Limited bool
}

// Effects are the redemptions the outcome records, redeems first in
// application order, then earns. A redeem carries the discount (lines and
// shipping), the spend (gift card, points paid) and the points burned
// (negative); an earn the points earned. Earnings of one program stay one
// effect each, as the hub's re-derivation compares them.
func (o *Outcome) Effects() []Effect {
	out := make([]Effect, 0, len(o.Decision.Results)+len(o.Decision.Earnings))
	for _, res := range o.Decision.Results {
		if !res.Applied {
			continue
		}
		e := Effect{Index: res.Index, Limited: o.rules.limited[res.Campaign]}
		r := &e.Redemption
		r.Kind, r.Campaign, r.Code = protocol.KindRedeem, res.Campaign, res.Code
		r.Discount, r.Spend = res.Discount+res.ShippingDiscount, res.Spend
		if res.PointsBurned > 0 {
			r.Points = -res.PointsBurned
		}
		r.Cap = o.rules.capOf(o.periods, rules.EarnKey{Campaign: res.Campaign})
		if res.Index >= 0 && res.Index < len(o.Items) {
			e.Item = &o.Items[res.Index]
		}
		out = append(out, e)
	}
	for _, ea := range o.Decision.Earnings {
		if ea.Points <= 0 {
			continue
		}
		r := protocol.Redemption{Kind: protocol.KindEarn, Campaign: ea.Campaign, Points: ea.Points,
			Cap: o.rules.capOf(o.periods, rules.EarnKey{Campaign: ea.Campaign, Rule: ea.Rule})}
		if !ea.ExpiresAt.IsZero() {
			r.Expires = ea.ExpiresAt.UnixMicro() // the lot's expiry (protocol.Redemption.Expires)
		}
		out = append(out, Effect{Index: -1, Redemption: r})
	}
	return out
}

// Refusal is the first presented thing that does not apply, as an error
// naming its field (redeemables[i]); nil when every one applies. A
// presented thing that does not apply fails a redeem: the customer asked
// for it by name.
func (o *Outcome) Refusal() *protocol.Error {
	for _, r := range o.Decision.Results {
		if r.Index >= 0 && !r.Applied {
			msg := r.Message
			if msg == "" {
				msg = r.Reason.Message()
			}
			return &protocol.Error{Code: r.Reason, Message: msg, Field: fieldOf(r.Index)}
		}
	}
	return nil
}

func fieldOf(i int) string { return "redeemables[" + strconv.Itoa(i) + "]" }

// Hub reasons say why a decision needs the hub (NeedsHub): what a till
// cannot know from its snapshot and its own facts.
type HubReason string

// Hub reasons.
const (
	HubSingleUse   HubReason = "single_use"   // a single-use code or token: another till or channel may have used it
	HubGiftCard    HubReason = "gift_card"    // a gift card balance: spent elsewhere too
	HubPerCustomer HubReason = "per_customer" // a per-customer limit: the customer's redemptions elsewhere
	HubPoints      HubReason = "points"       // a points burn: the customer's balance is the hub's
	HubUnknown     HubReason = "unknown"      // a code not in the till's snapshot: new since, or of a campaign its store does not admit
	HubEarnCap     HubReason = "earn_cap"     // points of a period-capped earning rule: the customer's earnings elsewhere
	HubReferral    HubReason = "referral"     // a referral code: the referee's purchases and the referrer's referees (referrals.go)
)

// NeedsHub lists why the applied results depend on what only the hub
// knows: a single-use code or token, a gift card, a campaign with a
// per-customer limit, a points burn, or a code the side does not know. Empty: the till decides alone (a
// multi-use code, an automatic campaign, points earned). This is the rule
// of online first at the till (docs/design.md "decision path"). Refused
// results count too when the refusal is one the hub could lift (points).
func (o *Outcome) NeedsHub() []HubReason {
	var out []HubReason
	add := func(r HubReason) {
		for _, x := range out {
			if x == r {
				return
			}
		}
		out = append(out, r)
	}
	for _, it := range o.Items {
		if it.Refused != nil {
			if it.Refused.Code == protocol.CodeUnknownCode {
				add(HubUnknown)
			}
			continue
		}
		if it.Referral {
			add(HubReferral)
		}
		switch {
		case it.Kind == rules.RedeemPoints:
			add(HubPoints)
		case it.Kind == rules.RedeemGiftCard:
			add(HubGiftCard)
		case it.Single:
			add(HubSingleUse)
		}
	}
	cust := o.Customer != nil && o.Customer.ID != ""
	for _, e := range o.Decision.Earnings {
		if _, capped := o.periods[rules.EarnKey{Campaign: e.Campaign, Rule: e.Rule}]; capped && cust && e.Points > 0 {
			add(HubEarnCap)
		}
	}
	for _, res := range o.Decision.Results {
		if cust && !res.Applied && res.Reason == protocol.CodeInsufficientPts {
			// A catalog reward that costs more points than this side
			// knows of: the hub knows the customer's balance.
			add(HubPoints)
			continue
		}
		if !cust || (!res.Applied && res.Reason != protocol.CodeCustomerLimit) {
			continue
		}
		if c, ok := o.rules.camps[res.Campaign]; ok && (c.Limits.PerCustomer > 0 || c.Limits.PerCustomerPeriod > 0) {
			add(HubPerCustomer)
		}
		if res.PointsBurned > 0 {
			add(HubPoints)
		}
	}
	return out
}
