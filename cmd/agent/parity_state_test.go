package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/protocol/rules"
	"github.com/punchcard/punchcard/protocol/snapshot"
	"github.com/punchcard/punchcard/store/catalog"
)

// The parity test's golden cases assume prior state: uses so far, budgets
// spent, a points balance, points already earned in a capped period, token
// dates. stager sets each up on the hub through the paths a chain uses
// (earlier redemptions and earns through the online API, codes, tokens and
// campaigns through the catalog's management operations), before any till
// of the file syncs, so that both sides start from the same state: the
// till learns it from its snapshot and, online first, from the hub.
//
// A state no product path can create is mapped to the nearest one that
// can, and the mapping is checked:
//   - a budget count on a campaign without a count budget: a copy of the
//     campaign with that budget (every budget case gets its own copy, so
//     spending it leaves the file's other cases alone);
//   - a gift card of a campaign that is not a gift card: the catalog
//     refuses to load its balance (invalid_input, checked); the code is
//     presented as a plain code with the amount asked;
//   - a redeemable kind no API has: sent as a "kind" field, which both
//     APIs refuse as invalid_input;
//   - a store with an unknown time zone: the hub's online API refuses the
//     question and the catalog refuses to register a till there, both
//     invalid_input (checked while staging);
//   - per-customer uses of a campaign the catalog does not hold: nothing
//     to set up (no campaign, no count);
//   - an expired token: issued while the catalog's clock (the test's only
//     hook, hub.Catalog.Now) runs behind.
type stager struct {
	p         *parityHub
	docs      map[protocol.CampaignID]json.RawMessage
	customers map[protocol.TenantID]bool
	n         int  // prior orders
	set       bool // the last case staged had prior state set up
}

// stage turns a golden case into a question with its prior state set up.
// done reports a case checked while staging; why is set only when the
// case cannot be staged (the test then fails).
func (s *stager) stage(t *testing.T, ci int, name string, r rules.Request, earned json.RawMessage) (q question, done bool, why string) {
	t.Helper()
	ctx, c := context.Background(), s.p.h.Catalog
	st := snapshot.Store{ID: r.Store.ID, Region: r.Store.Region, TimeZone: r.Store.TimeZone}
	q = question{name: name, order: r.Order}
	s.set = len(r.CustomerUses) > 0 || len(r.Budgets) > 0 || r.Points > 0 || len(earned) > 0 && string(earned) != "null"
	for _, rd := range r.Redeemables {
		if rd.Uses > 0 || !rd.NotBefore.IsZero() || !rd.Expires.IsZero() || rd.Kind == rules.RedeemGiftCard && rd.Balance == 0 {
			s.set = true
		}
		if _, _, ok := s.campaign(r.Tenant, rd.Campaign); !ok && rd.Kind != rules.RedeemPoints {
			s.set = true
		}
	}
	if r.Store.TimeZone != "" && !validZone(r.Store.TimeZone) {
		s.unknownZone(t, ci, r, st)
		return q, true, ""
	}
	if r.Customer != nil {
		// One customer per case: the hub decides with the profile it
		// holds, the till with the one the POS presents; the test makes
		// them the same.
		cu := *r.Customer
		cu.ID = protocol.CustomerID(fmt.Sprintf("%scust-%d", cu.ID, ci))
		if !s.customers[r.Tenant+"/"+protocol.TenantID(cu.ID)] {
			if _, err := c.CreateCustomer(ctx, catalog.System, r.Tenant, catalog.Customer{ID: cu.ID, Segment: cu.Segment, Tier: cu.Tier, Attributes: cu.Attributes}); err != nil {
				t.Fatal(err)
			}
			s.customers[r.Tenant+"/"+protocol.TenantID(cu.ID)] = true
		}
		q.customer = &cu
	}
	// Points already earned in a capped period, then the balance.
	if len(earned) > 0 && string(earned) != "null" {
		if q.customer == nil {
			return q, false, "earned points without a customer"
		}
		var es []struct {
			Points int64 `json:"points"`
		}
		if err := json.Unmarshal(earned, &es); err != nil {
			t.Fatal(err)
		}
		var sum int64
		for _, e := range es {
			sum += e.Points
		}
		q.earnedBefore = sum > 0
		if got := s.earnTo(t, r.Tenant, st, q.customer.ID, sum); got != sum {
			t.Logf("%s: earned %d points in the period before the case (golden %d)", name, got, sum)
		}
	}
	if r.Points > 0 && q.customer != nil {
		if got := s.earnTo(t, r.Tenant, st, q.customer.ID, r.Points); got != r.Points {
			t.Logf("%s: points balance %d before the case (golden %d)", name, got, r.Points)
		}
	}
	for i, rd := range r.Redeemables {
		q.burns, q.kinds = append(q.burns, ""), append(q.kinds, "")
		switch rd.Kind {
		case rules.RedeemPoints:
			q.codes, q.amounts = append(q.codes, ""), append(q.amounts, rd.Amount)
			q.burns[i] = rd.Campaign
			continue
		case rules.RedeemToken:
			text, w := s.token(t, r, rd)
			if w != "" {
				return q, false, w
			}
			q.codes, q.amounts = append(q.codes, text), append(q.amounts, rd.Amount)
			continue
		case rules.RedeemCode, rules.RedeemGiftCard:
		default:
			// No API has a kind field: both refuse it as invalid input.
			q.kinds[i] = string(rd.Kind)
		}
		code := fmt.Sprintf("P%dX%d", ci, i)
		camp, tenant, ok := s.campaign(r.Tenant, rd.Campaign)
		if !ok {
			// Unknown here: presented, never imported.
			q.codes, q.amounts = append(q.codes, code), append(q.amounts, rd.Amount)
			continue
		}
		if b, ok := r.Budgets[rd.Campaign]; ok && tenant == r.Tenant {
			camp = s.budget(t, ci, r, rd.Campaign, b)
		}
		spec := catalog.CodeSpec{Uses: -1}
		if rd.MaxUses > 0 {
			spec.Uses = rd.MaxUses
		}
		amount := rd.Amount
		const each = 100 // a prior gift card spend
		uses := rd.Uses
		if rd.Kind == rules.RedeemGiftCard {
			if !s.giftCard(camp) {
				// The catalog refuses a balance on a campaign that is
				// not a gift card (checked), so no such card exists;
				// the code is presented as a plain code with the
				// amount asked.
				_, err := c.ImportCodes(ctx, catalog.System, tenant, camp, []string{code + "G"}, catalog.CodeSpec{Uses: 1, Balance: max(rd.Balance, 1)})
				if pe := protocol.PublicError(err); err == nil || pe.Code != protocol.CodeInvalidInput {
					t.Fatalf("%s: a gift card balance on campaign %s: %v, want invalid_input", name, camp, err)
				}
				if amount == 0 {
					amount = rd.Balance
				}
			} else {
				if rd.Balance == 0 && uses == 0 {
					uses = 1 // an empty card was spent
				}
				spec.Balance = rd.Balance + uses*each
			}
		}
		if _, err := c.ImportCodes(ctx, catalog.System, tenant, camp, []string{code}, spec); err != nil {
			return q, false, "code not importable: " + err.Error()
		}
		for range uses {
			if spec.Balance > 0 {
				s.prior(t, r.Tenant, st, nil, priorOrder(each), map[string]any{"code": code, "amount": each})
			} else {
				s.prior(t, r.Tenant, st, nil, r.Order, map[string]any{"code": code})
			}
		}
		q.codes, q.amounts = append(q.codes, code), append(q.amounts, amount)
	}
	// The customer's earlier redemptions of each campaign.
	for camp, n := range r.CustomerUses {
		id, tenant, ok := s.campaign(r.Tenant, camp)
		if !ok || tenant != r.Tenant {
			t.Logf("%s: %d uses of campaign %s, which tenant %s does not hold: nothing to set up", name, n, camp, r.Tenant)
			continue
		}
		if q.customer == nil {
			return q, false, "per-customer uses without a customer"
		}
		code := fmt.Sprintf("P%dU%s", ci, camp)
		if _, err := c.ImportCodes(ctx, catalog.System, tenant, id, []string{code}, catalog.CodeSpec{Uses: -1}); err != nil {
			t.Fatal(err)
		}
		for range n {
			s.prior(t, r.Tenant, st, q.customer, r.Order, map[string]any{"code": code})
		}
	}
	return q, false, ""
}

// campaign finds the tenant holding a campaign of the file: the request's
// own, or another tenant's (a code of another tenant is unknown here).
func (s *stager) campaign(tenant protocol.TenantID, id protocol.CampaignID) (protocol.CampaignID, protocol.TenantID, bool) {
	doc, ok := s.docs[id]
	if !ok {
		return "", "", false
	}
	var head struct {
		Tenant protocol.TenantID `json:"tenant"`
	}
	json.Unmarshal(doc, &head)
	return id, head.Tenant, true
}

func (s *stager) giftCard(id protocol.CampaignID) bool {
	var c struct {
		Reward struct {
			Kind string `json:"kind"`
		} `json:"reward"`
	}
	json.Unmarshal(s.docs[id], &c)
	return c.Reward.Kind == string(rules.RewardGiftCard)
}

// priorOrder is an order of one line worth amount.
func priorOrder(amount int64) protocol.Order {
	return protocol.Order{Currency: "EUR", Lines: []protocol.Line{{SKU: "PRIOR", Category: "prior", Quantity: 1, UnitPrice: amount}}}
}

// prior redeems at the hub's online API, before the case: every
// redeemable must apply. It returns the decision.
func (s *stager) prior(t *testing.T, tenant protocol.TenantID, st snapshot.Store, cu *protocol.Customer, o protocol.Order, rs ...map[string]any) sideView {
	t.Helper()
	return s.online(t, "/redeem", tenant, st, cu, o, rs...)
}

func (s *stager) online(t *testing.T, path string, tenant protocol.TenantID, st snapshot.Store, cu *protocol.Customer, o protocol.Order, rs ...map[string]any) sideView {
	t.Helper()
	s.n++
	o.ID = fmt.Sprintf("prior-%d", s.n)
	b := map[string]any{"store": map[string]any{"id": st.ID, "region": st.Region, "time_zone": st.TimeZone}, "order": o, "redeemables": rs}
	if cu != nil {
		b["customer"] = cu.ID
	}
	idem := ""
	if path != "/validate" {
		idem = o.ID
	}
	status, body := s.p.post(t, tenant, path, b, idem)
	v := hubSide(t, status, body)
	if v.Error != "" {
		t.Fatalf("prior %s %s: %s", path, b, body)
	}
	for _, r := range v.Results {
		if len(rs) > 0 && !strings.Contains(r, "applied=true") {
			t.Fatalf("prior %s %v: not applied: %s", path, b, body)
		}
	}
	return v
}

// earnTo earns points for a customer through the hub's /earn until it has
// earned target (or the nearest below it that whole orders can earn): it
// asks /validate what an order earns, then records it.
func (s *stager) earnTo(t *testing.T, tenant protocol.TenantID, st snapshot.Store, cu protocol.CustomerID, target int64) int64 {
	t.Helper()
	who := &protocol.Customer{ID: cu}
	var got int64
	for range 40 {
		rem := target - got
		if rem <= 0 {
			break
		}
		price := rem * 100
		for {
			e := s.online(t, "/validate", tenant, st, who, priorOrder(price)).Earned
			if e <= rem && e > 0 {
				break
			}
			if e == 0 || price <= 100 {
				return got
			}
			price = max(price*rem/e, 100) // strictly less: e > rem
		}
		got += s.online(t, "/earn", tenant, st, who, priorOrder(price)).Earned
	}
	return got
}

// budget makes this case's copy of a limited campaign with what the case
// says is left of its budgets, by redeeming the rest at the hub: a copy,
// so that the file's other cases keep the whole budget, and because a
// count budget needs a campaign that has one. It returns the copy's ID.
func (s *stager) budget(t *testing.T, ci int, r rules.Request, id protocol.CampaignID, b rules.Budget) protocol.CampaignID {
	t.Helper()
	var doc map[string]any
	if err := json.Unmarshal(s.docs[id], &doc); err != nil {
		t.Fatal(err)
	}
	limits, _ := doc["limits"].(map[string]any)
	if limits == nil {
		limits = map[string]any{}
	}
	maxD, _ := limits["max_discount"].(float64)
	var spend int64 // the discount redeemed before the case
	if b.Amount >= 0 {
		if maxD == 0 {
			t.Fatalf("campaign %s: an amount budget left on a campaign without one", id)
		}
		spend = int64(maxD) - b.Amount
	}
	n := int64(0)
	if spend > 0 {
		n = 1
	}
	if b.Count >= 0 {
		if b.Count == 0 {
			n = max(n, 1)
		}
		limits["max_redemptions"] = b.Count + n
	}
	doc["limits"] = limits
	cp := protocol.CampaignID(fmt.Sprintf("%s-p%d", id, ci))
	doc["id"] = cp
	raw, _ := json.Marshal(doc)
	if _, err := s.p.h.Catalog.CreateCampaign(context.Background(), catalog.System, r.Tenant, raw); err != nil {
		t.Fatalf("campaign %s: %v", raw, err)
	}
	s.docs[cp] = raw
	pct := 0.0
	if rw, ok := doc["reward"].(map[string]any); ok {
		pct, _ = rw["percent_bp"].(float64)
	}
	if n > 0 && pct == 0 {
		t.Fatalf("campaign %s: budgets are set up for percent_off campaigns only", id)
	}
	st := snapshot.Store{ID: r.Store.ID, Region: r.Store.Region, TimeZone: r.Store.TimeZone}
	for k := range n {
		d := spend / n
		if k == 0 {
			d += spend % n
		}
		code := fmt.Sprintf("P%dB%d", ci, k)
		if _, err := s.p.h.Catalog.ImportCodes(context.Background(), catalog.System, r.Tenant, cp, []string{code}, catalog.CodeSpec{Uses: 1}); err != nil {
			t.Fatal(err)
		}
		price := max(d*10000/int64(pct), 1)
		if got := s.prior(t, r.Tenant, st, nil, priorOrder(price), map[string]any{"code": code}); got.Discount != d && d > 0 {
			t.Fatalf("campaign %s: the prior redemption got %d off, want %d", cp, got.Discount, d)
		}
	}
	return cp
}

// token issues a case's token, with its dates and uses, and redeems it as
// often as the case says it was used.
func (s *stager) token(t *testing.T, r rules.Request, rd rules.Redeemable) (string, string) {
	t.Helper()
	ctx, c := context.Background(), s.p.h.Catalog
	req := catalog.TokenRequest{Campaign: rd.Campaign, Uses: uint32(max(rd.MaxUses, 0))}
	now := time.Now()
	if !rd.NotBefore.IsZero() {
		req.NotBefore = now.Add(rd.NotBefore.Sub(r.Now)).Add(time.Second)
	}
	if !rd.Expires.IsZero() {
		rel := rd.Expires.Sub(r.Now)
		req.Expires = now.Add(rel)
		if rel <= 0 {
			// Expired: issued while the catalog's clock ran behind.
			s.p.skew.Store(int64(rel - time.Hour))
			defer s.p.skew.Store(0)
		}
	}
	tok, err := c.IssueToken(ctx, catalog.System, r.Tenant, req)
	if err != nil {
		var pe *protocol.Error
		if errors.As(err, &pe) {
			return "", "token not issuable: " + pe.Error()
		}
		t.Fatal(err)
	}
	s.p.skew.Store(0)
	st := snapshot.Store{ID: r.Store.ID, Region: r.Store.Region, TimeZone: r.Store.TimeZone}
	for range rd.Uses {
		s.prior(t, r.Tenant, st, nil, r.Order, map[string]any{"token": tok.Text})
	}
	return tok.Text, ""
}

// unknownZone checks a store with an unknown time zone: the hub's online
// API refuses the question, and no till can be registered there (the
// catalog refuses), both invalid_input naming store.time_zone.
func (s *stager) unknownZone(t *testing.T, ci int, r rules.Request, st snapshot.Store) {
	t.Helper()
	q := question{name: "zone", order: r.Order}
	status, body := s.p.post(t, r.Tenant, "/validate", q.hubBody(st), "")
	var pe protocol.Error
	json.Unmarshal(body, &pe)
	if status != 400 || pe.Code != protocol.CodeInvalidInput || pe.Field != "store.time_zone" {
		t.Fatalf("hub: a store in time zone %q: %d %s, want 400 invalid_input store.time_zone", st.TimeZone, status, body)
	}
	_, _, err := s.p.h.Catalog.RegisterAgent(context.Background(), catalog.System, catalog.Agent{Tenant: r.Tenant, ID: protocol.AgentID(fmt.Sprintf("zone-%d", ci)), Store: st})
	if pe := protocol.PublicError(err); err == nil || pe.Code != protocol.CodeInvalidInput || pe.Field != "store.time_zone" {
		t.Fatalf("catalog: a till in time zone %q: %v, want invalid_input store.time_zone", st.TimeZone, err)
	}
}
