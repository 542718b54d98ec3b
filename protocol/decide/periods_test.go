package decide_test

import (
	"context"
	"testing"
	"time"

	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/protocol/decide"
	"github.com/punchcard/punchcard/protocol/rules"
)

func periodRules(t *testing.T) *decide.Rules {
	t.Helper()
	var cs []rules.Campaign
	for _, doc := range []string{
		`{"schema":1,"id":"club","tenant":"acme","status":"active","trigger":"auto","currency":"EUR","reward":{"kind":"points","points":{"earn":[
			{"id":"spend","on":"spend","per_amount":100,"milli_points":1000,"period_cap":10,"period":"day"},
			{"id":"news","on":"event","event":"newsletter_signup","milli_points":25000,"period_cap":25,"period":"year"}]}}}`,
		`{"schema":1,"id":"weekly","tenant":"acme","status":"active","currency":"EUR","reward":{"kind":"percent_off","percent_bp":1000},
			"limits":{"per_customer_period":1,"customer_period":"week"}}`,
	} {
		c, err := rules.ParseCampaignJSON([]byte(doc))
		if err != nil {
			t.Fatal(err)
		}
		cs = append(cs, c)
	}
	rs, err := decide.Compile(cs)
	if err != nil {
		t.Fatal(err)
	}
	return rs
}

// TestPeriodCaps: the pipeline asks its Source for the customer's period
// totals, the engine caps with them, and each capped earn or limited
// redeem names its period (Redemption.Cap, in the store's calendar).
func TestPeriodCaps(t *testing.T) {
	rs := periodRules(t)
	ctx := context.Background()
	st, err := rules.NewStore("berlin-1", "", "Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 23, 23, 30, 0, 0, time.UTC) // 00:30 on Tuesday 24 November in Berlin
	in := decide.Request{Tenant: "acme", Where: decide.Where{Store: st}, Now: now, Customer: &protocol.Customer{ID: "c1"},
		Order: protocol.Order{ID: "o1", Currency: "EUR", Lines: []protocol.Line{{SKU: "shirt", Quantity: 1, UnitPrice: 42_00}}},
	}
	src := &decide.Mem{PeriodEarned: map[rules.EarnKey]int64{{Campaign: "club", Rule: "spend"}: 4}}
	out, err := decide.Decide(ctx, src, rs, in)
	if err != nil {
		t.Fatal(err)
	}
	if out.Decision.PointsEarned != 6 {
		t.Fatalf("earned %d, want 6 (cap 10, 4 earned already)", out.Decision.PointsEarned)
	}
	effs := out.Effects()
	if len(effs) != 1 || effs[0].Redemption.Cap == nil {
		t.Fatalf("effects %+v", effs)
	}
	day := time.Date(2026, 11, 24, 0, 0, 0, 0, st.Location).Unix()
	if c := effs[0].Redemption.Cap; c.Rule != "spend" || c.Period != "day" || c.Start != day || c.Limit != 10 {
		t.Fatalf("cap %+v, want the Berlin day from %d", c, day)
	}
	if got := out.NeedsHub(); len(got) != 1 || got[0] != decide.HubEarnCap {
		t.Fatalf("needs hub %v, want earn_cap", got)
	}
	if se := out.SaleEarned(); len(se) != 2 || se[0] != (protocol.SaleEarned{Campaign: "club", Rule: "spend", Points: 4}) {
		t.Fatalf("sale earned %+v", se)
	}
	// The redemption limit per week.
	in.Presented = []decide.Presented{{Code: "WEEKLY"}}
	src.Codes = map[protocol.CodeID]decide.Code{"WEEKLY": {Key: "WEEKLY", Campaign: "weekly"}}
	src.PeriodEarned[rules.EarnKey{Campaign: "weekly"}] = 1
	out, err = decide.Decide(ctx, src, rs, in)
	if err != nil {
		t.Fatal(err)
	}
	if r := out.Decision.Results[0]; r.Applied || r.Reason != protocol.CodeCustomerLimit {
		t.Fatalf("weekly limit reached: %+v", r)
	}
	src.PeriodEarned[rules.EarnKey{Campaign: "weekly"}] = 0
	out, err = decide.Decide(ctx, src, rs, in)
	if err != nil {
		t.Fatal(err)
	}
	week := time.Date(2026, 11, 23, 0, 0, 0, 0, st.Location).Unix() // Monday
	if e := out.Effects()[0].Redemption; e.Kind != protocol.KindRedeem || e.Cap == nil || e.Cap.Rule != "" || e.Cap.Start != week || e.Cap.Limit != 1 {
		t.Fatalf("redeem %+v cap %+v", e, e.Cap)
	}
	// Events: the yearly cap.
	src.PeriodEarned[rules.EarnKey{Campaign: "club", Rule: "news"}] = 20
	reds, es, err := decide.EarnEvent(ctx, src, rs, decide.Event{Tenant: "acme", Where: decide.Where{Store: st}, Customer: protocol.Customer{ID: "c1"},
		Type: "newsletter_signup", Now: now})
	if err != nil || len(reds) != 1 || reds[0].Points != 5 || !es[0].Capped || reds[0].Cap == nil || reds[0].Cap.Period != "year" {
		t.Fatalf("event: %v %+v %+v", err, reds, es)
	}
	if _, _, err := decide.EarnEvent(ctx, src, rs, decide.Event{Tenant: "acme", Where: decide.Where{Store: st}, Type: "x", Now: now}); protocol.ErrorCode(err) != protocol.CodeInvalidInput && protocol.ErrorCode(err) != protocol.CodeCustomerRequired {
		t.Fatalf("event without a customer: %v", err)
	}
}
