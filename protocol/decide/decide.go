// Package decide is the one decision path of the till and the hub:
// resolve what the customer presented (a token, a plain code, a gift card,
// points, the customer) → eligibility, including the token's store binding
// → the rules (protocol/rules) → limits (per code, per customer, per
// campaign, budget) → effects, the redemptions and points the sale records.
//
// Each side supplies only what it knows through Source: the till its
// snapshot, its own facts and allowances (agent); the hub its catalog and
// ledger (hub/online). Neither keeps a copy of any step, so the same input
// gets the same answer on both (guarantee 5). What differs is only what a
// side cannot know: a till offline does not know other tills' uses of a
// single-use code, a gift card's other spending, a customer's redemptions
// elsewhere or their points; Outcome.NeedsHub names exactly those, and a
// till online asks the hub for them (online first, docs/design.md
// "decision path").
//
// Points ride on the redeem: they are earned on the order after its
// discounts (rules.Decision.Earnings), recorded with the redemptions in one
// write, and a later earn call for the same transaction returns them
// rather than earning again.
package decide

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/protocol/codes"
	"github.com/punchcard/punchcard/protocol/rules"
	"github.com/punchcard/punchcard/protocol/token"
)

// Presented is one thing the customer hands over. Exactly one of Code,
// Token and Campaign is set. A Code that carries the token prefix and is
// not a known plain code is verified as a token, so a till's scanner field
// (which cannot tell) and the hub's explicit fields resolve alike.
type Presented struct {
	Code     string              // a plain code or gift card number, as typed or scanned
	Token    string              // a signed token's text
	Campaign protocol.CampaignID // points burned as payment in this points campaign
	// Amount is the gift card spend or points burn asked for; 0 = as much
	// as the order can use.
	Amount int64
}

// Code is a plain code or gift card as a side knows it.
type Code struct {
	Key      protocol.CodeID // codes.Normalize of the printed code
	Campaign protocol.CampaignID
	// MaxUses is the uses allowed in total; 0 or -1 = unlimited.
	MaxUses int64
	// GiftCard marks a gift card; Balance is then its loaded balance.
	GiftCard bool
	Balance  int64
	// Stores and Group bind the code: it is safe to redeem offline there.
	// A plain code's binding does not restrict where it is valid
	// (docs/design.md); a token's store claim does.
	Stores  []protocol.StoreID
	Group   string
	Revoked bool
}

// Use is what a side knows of a code's uses and a gift card's spending,
// net of rollbacks.
type Use struct {
	Uses  int64
	Spent int64
}

// Source is what one side supplies to the pipeline. The till answers from
// its snapshot, its own facts and its allowances; the hub from its catalog
// and ledger. Errors other than a *protocol.Error are internal and end the
// decision.
type Source interface {
	// Code looks up a plain code or gift card by its normalized key;
	// false when unknown.
	Code(ctx context.Context, key protocol.CodeID) (Code, bool, error)
	// Keys are the tenant's token verification keys.
	Keys(ctx context.Context) (token.KeySet, error)
	// TokenRevoked reports whether a token serial was revoked.
	TokenRevoked(ctx context.Context, serial protocol.CodeID) (bool, error)
	// Uses is the best known use of a code, token serial or gift card (c
	// is the zero Code for a token serial).
	Uses(ctx context.Context, key protocol.CodeID, c Code) (Use, error)
	// Customer resolves the customer presented (an ID, or the POS's full
	// profile) and returns the profile and spendable points (0 when this
	// side cannot know them). Reason codes: not_found (field "customer").
	Customer(ctx context.Context, c protocol.Customer) (protocol.Customer, int64, error)
	// CustomerUses is how many times the customer redeemed the campaign
	// (0 when this side cannot know).
	CustomerUses(ctx context.Context, customer protocol.CustomerID, campaign protocol.CampaignID) (int64, error)
	// Budget is what is left of a limited campaign's budgets for this
	// side: the hub's remaining budget, or the till's allowance.
	Budget(ctx context.Context, campaign protocol.CampaignID) (rules.Budget, error)
	// PeriodSource: what the customer earned in the current period of
	// each period-capped earning rule (periods.go).
	PeriodSource
}

// Rules is a tenant's compiled campaigns with what the pipeline needs of
// them besides the engine: which are limited, automatic, gift cards.
type Rules struct {
	Cat     *rules.Catalog
	camps   map[protocol.CampaignID]*rules.Campaign
	limited map[protocol.CampaignID]bool
	auto    []protocol.CampaignID // automatic campaigns with a budget or per-customer limit
	caps    map[rules.EarnKey]capRule
}

// Compile compiles campaigns for Decide.
func Compile(campaigns []rules.Campaign) (*Rules, error) {
	cat, err := rules.NewCatalog(campaigns)
	if err != nil {
		return nil, err
	}
	r := &Rules{Cat: cat, camps: make(map[protocol.CampaignID]*rules.Campaign, len(campaigns)), limited: map[protocol.CampaignID]bool{},
		caps: compileCaps(campaigns)}
	for i := range campaigns {
		c := &campaigns[i]
		r.camps[c.ID] = c
		l := c.Limits
		if l.MaxRedemptions > 0 || l.MaxDiscount > 0 {
			r.limited[c.ID] = true
		}
		if c.Trigger == rules.TriggerAuto && (r.limited[c.ID] || l.PerCustomer > 0) {
			r.auto = append(r.auto, c.ID)
		}
	}
	return r, nil
}

// Limited reports whether a campaign has a count or amount budget (the
// till holds an allowance of it).
func (r *Rules) Limited(id protocol.CampaignID) bool { return r.limited[id] }

// Campaign returns a campaign by ID.
func (r *Rules) Campaign(id protocol.CampaignID) (*rules.Campaign, bool) {
	c, ok := r.camps[id]
	return c, ok
}

// AutoLimited are the automatic campaigns with a budget or per-customer
// limit, whose counts every decision looks up.
func (r *Rules) AutoLimited() []protocol.CampaignID { return r.auto }

// Where is the store the sale happens in.
type Where struct {
	Store rules.Store
	Group string // the store's group, for group-bound codes and tokens
}

// Request is one question to the pipeline.
type Request struct {
	Tenant protocol.TenantID
	Where  Where
	Order  protocol.Order
	// Customer is who is buying (an ID, or the POS's profile); nil when
	// anonymous. A token's customer claims stand in when nil.
	Customer  *protocol.Customer
	Presented []Presented
	Now       time.Time
	// NoEarn skips points earning.
	NoEarn bool
}

// Item is one presented thing as resolved.
type Item struct {
	Kind     rules.RedeemableKind
	Code     protocol.CodeID
	Campaign protocol.CampaignID
	// Refused is the reason it never reached the engine (unknown, revoked,
	// bad token, wrong store); nil when it did.
	Refused *protocol.Error
	// Single: one use in total (a single-use code or token) or a gift card
	// balance, which two tills could spend at once.
	Single bool
	// Bound: bound to this store or group, so that no other till can
	// spend it (safe offline).
	Bound bool
	// MaxUses is the uses allowed (0 = unlimited); Known is what Source
	// reported of uses and spending; Balance the gift card's loaded
	// balance, -1 when not a gift card.
	MaxUses int64
	Known   Use
	Balance int64
	// Engine is the item's index among the engine's redeemables, -1 when
	// refused.
	Engine int
	// Referral: a referral code (referrals.go).
	Referral bool
}

// Outcome is a decision with everything the caller records or answers.
type Outcome struct {
	// Decision is the engine's, with one result per presented thing in
	// request order (Index = its position in Request.Presented; a thing
	// refused before the engine carries its reason), then the automatic
	// campaigns (Index -1).
	Decision rules.Decision
	// Request is what the engine was asked (a till's fact carries it as
	// its Sale for the hub to re-derive).
	Request rules.Request
	Items   []Item
	// Customer is the resolved customer, nil when anonymous.
	Customer *protocol.Customer
	// Budgeted are the limited campaigns whose budget the decision used.
	Budgeted []protocol.CampaignID
	rules    *Rules
	// periods are the capped rules' period keys the decision counted.
	periods map[rules.EarnKey]protocol.PeriodKey
}

// Decide runs the pipeline. Reason codes of the request as a whole:
// invalid_input (store, order, customer, redeemables), too_many_redeemables,
// not_found (customer); per presented thing, those of token.Verify and
// rules.Evaluate, code_unknown, code_revoked, token_revoked, wrong_store.
func Decide(ctx context.Context, src Source, rs *Rules, in Request) (*Outcome, error) {
	if len(in.Presented) > rules.MaxRedeemables {
		return nil, protocol.Errorf(protocol.CodeTooManyRedeemable, "at most %d rewards on one basket", rules.MaxRedeemables)
	}
	if err := in.Order.Validate(); err != nil {
		return nil, err
	}
	out := &Outcome{rules: rs}
	req := rules.Request{Tenant: in.Tenant, Order: in.Order, Store: in.Where.Store, Now: in.Now, NoEarn: in.NoEarn,
		Budgets: map[protocol.CampaignID]rules.Budget{}}
	if in.Customer != nil {
		if err := in.Customer.Validate(); err != nil {
			return nil, err
		}
		cu, pts, err := src.Customer(ctx, *in.Customer)
		if err != nil {
			return nil, err
		}
		req.Customer, req.Points = &cu, pts
	}
	var keys token.KeySet
	for i, p := range in.Presented {
		it, claims, err := resolve(ctx, src, rs, in, p, i, &keys)
		if err != nil {
			return nil, err
		}
		if err := rs.referral(ctx, src, req.Customer, in.Now.UnixMicro(), &it); err != nil { // referrals.go
			return nil, err
		}
		it.Engine = -1
		if it.Refused == nil {
			it.Engine = len(req.Redeemables)
			req.Redeemables = append(req.Redeemables, redeemable(it, p, claims))
			if req.Customer == nil && claims != nil && (claims.Customer != "" || claims.Tier != "" || claims.Segment != "") {
				req.Customer = &protocol.Customer{ID: claims.Customer, Tier: claims.Tier, Segment: claims.Segment}
			}
		}
		out.Items = append(out.Items, it)
	}
	// Limits: per-customer counts and budgets of every campaign the engine
	// may touch (the presented ones and the automatic limited ones).
	touched := func(id protocol.CampaignID) error {
		c, ok := rs.camps[id]
		if !ok {
			return nil
		}
		if req.Customer != nil && req.Customer.ID != "" && c.Limits.PerCustomer > 0 {
			if _, done := req.CustomerUses[id]; !done {
				n, err := src.CustomerUses(ctx, req.Customer.ID, id)
				if err != nil {
					return err
				}
				if req.CustomerUses == nil {
					req.CustomerUses = map[protocol.CampaignID]int64{}
				}
				req.CustomerUses[id] = n
			}
		}
		if rs.limited[id] {
			if _, done := req.Budgets[id]; !done {
				b, err := src.Budget(ctx, id)
				if err != nil {
					return err
				}
				req.Budgets[id] = b
				out.Budgeted = append(out.Budgeted, id)
			}
		}
		return nil
	}
	for _, r := range req.Redeemables {
		if err := touched(r.Campaign); err != nil {
			return nil, err
		}
	}
	for _, id := range rs.auto {
		if err := touched(id); err != nil {
			return nil, err
		}
	}
	periods, err := rs.periods(ctx, src, &req, false)
	if err != nil {
		return nil, err
	}
	out.periods = periods
	d := rules.Evaluate(rs.Cat, req)
	if d.Error != nil {
		return nil, d.Error
	}
	out.Request, out.Customer = req, req.Customer
	out.Decision = merge(d, out.Items)
	return out, nil
}

// merge puts the engine's results of presented things back in request
// order, with the refusals before the engine in their places.
func merge(d rules.Decision, items []Item) rules.Decision {
	results := make([]rules.Result, 0, len(d.Results)+len(items))
	n := 0
	for i, it := range items {
		if it.Refused != nil {
			results = append(results, rules.Result{Index: i, Kind: it.Kind, Code: it.Code, Campaign: it.Campaign,
				Reason: it.Refused.Code, Message: it.Refused.Message})
			continue
		}
		r := d.Results[it.Engine]
		r.Index = i
		results = append(results, r)
		n++
	}
	results = append(results, d.Results[n:]...)
	d.Results = results
	return d
}

func redeemable(it Item, p Presented, cl *token.Claims) rules.Redeemable {
	r := rules.Redeemable{Kind: it.Kind, Code: it.Code, Campaign: it.Campaign, Amount: p.Amount, Uses: it.Known.Uses, MaxUses: it.MaxUses}
	if it.Kind == rules.RedeemGiftCard {
		r.Balance = max(it.Balance-it.Known.Spent, 0)
	}
	if cl != nil {
		r.NotBefore, r.Expires = cl.NotBefore, cl.Expires
	}
	return r
}

// resolve resolves one presented thing: a refusal is an Item with Refused
// set; an error ends the decision.
func resolve(ctx context.Context, src Source, rs *Rules, in Request, p Presented, i int, keys *token.KeySet) (Item, *token.Claims, error) {
	field := fmt.Sprintf("redeemables[%d]", i)
	n := 0
	for _, set := range []bool{p.Code != "", p.Token != "", p.Campaign != ""} {
		if set {
			n++
		}
	}
	if n != 1 {
		return Item{}, nil, protocol.FieldError(field, "give exactly one of code, token or campaign (points)")
	}
	if p.Amount < 0 {
		return Item{}, nil, protocol.FieldError(field+".amount", "amount must not be negative")
	}
	it := Item{Balance: -1}
	refuse := func(err error) (Item, *token.Claims, error) {
		pe := protocol.PublicError(err)
		if pe.Code == protocol.CodeInternal {
			return Item{}, nil, err
		}
		it.Refused = pe
		return it, nil, nil
	}
	if p.Campaign != "" {
		if err := protocol.ValidateID(field+".campaign", string(p.Campaign)); err != nil {
			return Item{}, nil, err
		}
		it.Kind, it.Campaign = rules.RedeemPoints, p.Campaign
		return it, nil, nil
	}
	text := strings.TrimSpace(p.Code + p.Token)
	if text == "" {
		it.Kind = rules.RedeemCode
		return refuse(protocol.NewError(protocol.CodeTokenEmpty))
	}
	if p.Code != "" {
		key := protocol.CodeID(codes.Normalize(text))
		c, ok, err := src.Code(ctx, key)
		if err != nil {
			return Item{}, nil, err
		}
		if !ok && !isToken(text) {
			it.Kind, it.Code = rules.RedeemCode, key
			return refuse(protocol.NewError(protocol.CodeUnknownCode))
		}
		if ok {
			return resolveCode(ctx, src, rs, in, c, it)
		}
	}
	// A token.
	it.Kind = rules.RedeemToken
	if *keys == nil {
		ks, err := src.Keys(ctx)
		if err != nil {
			return Item{}, nil, err
		}
		*keys = ks
	}
	cl, err := token.Verify(*keys, in.Tenant, text, in.Now)
	if err != nil {
		return refuse(err)
	}
	it.Code, it.Campaign = cl.Serial, cl.Campaign
	revoked, err := src.TokenRevoked(ctx, cl.Serial)
	if err != nil {
		return Item{}, nil, err
	}
	if revoked {
		return refuse(protocol.NewError(protocol.CodeTokenRevoked))
	}
	// A token's store claim limits where it is valid, at the hub and at
	// every till alike.
	w := in.Where
	if (cl.Store != "" && cl.Store != w.Store.ID) || (cl.StoreGroup != "" && cl.StoreGroup != w.Group) {
		return refuse(protocol.NewError(protocol.CodeWrongStore))
	}
	it.Bound = (cl.Store != "" && cl.Store == w.Store.ID) || (cl.StoreGroup != "" && cl.StoreGroup == w.Group)
	it.MaxUses = int64(cl.Uses)
	it.Single = cl.Uses == 1
	if it.Known, err = src.Uses(ctx, cl.Serial, Code{}); err != nil {
		return Item{}, nil, err
	}
	return it, &cl, nil
}

func resolveCode(ctx context.Context, src Source, rs *Rules, in Request, c Code, it Item) (Item, *token.Claims, error) {
	it.Kind, it.Code, it.Campaign = rules.RedeemCode, c.Key, c.Campaign
	if cp, ok := rs.camps[c.Campaign]; c.GiftCard || (ok && cp.Reward.Kind == rules.RewardGiftCard) {
		it.Kind = rules.RedeemGiftCard
	}
	if c.Revoked {
		it.Refused = protocol.NewError(protocol.CodeCodeRevoked)
		return it, nil, nil
	}
	it.Bound = bound(c, in.Where)
	if c.MaxUses > 0 {
		it.MaxUses = c.MaxUses
	}
	it.Single = c.MaxUses == 1
	var err error
	if it.Known, err = src.Uses(ctx, c.Key, c); err != nil {
		return Item{}, nil, err
	}
	if it.Kind == rules.RedeemGiftCard {
		it.Balance = c.Balance
		it.Single = true // a balance can be spent at two tills at once
	}
	return it, nil, nil
}

// bound reports whether a code is bound to the store w (by ID or group).
func bound(c Code, w Where) bool {
	if c.Group != "" && c.Group == w.Group {
		return true
	}
	for _, id := range c.Stores {
		if id == w.Store.ID {
			return true
		}
	}
	return false
}

// isToken reports whether text carries the token prefix (any case).
func isToken(text string) bool {
	return len(text) >= len(token.Prefix) && strings.EqualFold(text[:len(token.Prefix)], token.Prefix)
}
