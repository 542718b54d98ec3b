package api_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/store/catalog"
)

// Issue 12, defects of item 3, through the hub's online API.

// capProgram is a points program: 1 point per euro, at most 10 points a
// day per customer; 25 points per newsletter sign-up, at most 25 a year.
const capProgram = `{"kind":"points","points":{"earn":[
	{"id":"spend","on":"spend","per_amount":100,"milli_points":1000,"period_cap":10,"period":"day"},
	{"id":"news","on":"event","event":"newsletter_signup","milli_points":25000,"period_cap":25,"period":"year"}]}}`

func earned(out onlineOut) int64 {
	var n int64
	for _, r := range out.Redemptions {
		if r.Kind == protocol.KindEarn {
			n += r.Points
		}
	}
	return n
}

// TestPeriodCapAcrossOrders: "a rule capped at 10 points a day gave 10 on
// each of two orders the same day". The second order of the day earns
// nothing, the next day's earns again, and the ledger's period totals
// verify against the journal.
func TestPeriodCapAcrossOrders(t *testing.T) {
	e := newEnv(t)
	mk, sup := e.keys[catalog.RoleMarketer], e.keys[catalog.RoleSupport]
	doc := campaignDoc("club", "active", capProgram, "")
	doc["trigger"] = "auto"
	e.wantJSON(e.do("POST", "/v1/tenants/acme/campaigns", mk, doc), 201, nil)
	e.wantJSON(e.do("POST", "/v1/tenants/acme/customers", sup, map[string]any{"id": "c1"}), 201, nil)
	earn := func(key string) onlineOut {
		var out onlineOut
		e.wantJSON(e.do("POST", "/v1/tenants/acme/earn", sup, map[string]any{"store": web, "order": order(42_00), "customer": "c1"}, "Idempotency-Key", key), 200, &out)
		return out
	}
	if got := earned(earn("o1")); got != 10 {
		t.Fatalf("first order of the day earned %d, want 10 (capped)", got)
	}
	if out := earn("o2"); earned(out) != 0 || out.Decision.PointsEarned != 0 {
		t.Fatalf("second order of the day earned %d (decision %d), want 0: the cap is per day, across orders", earned(out), out.Decision.PointsEarned)
	}
	// A retry of the first order answers the same, recording nothing.
	if got := earned(earn("o1")); got != 10 {
		t.Fatalf("retry of the first order: %d", got)
	}
	e.clk.Add(24 * time.Hour)
	o3 := earn("o3")
	if got := earned(o3); got != 10 {
		t.Fatalf("next day: %d, want 10", got)
	}
	// A rollback of the day's earn gives its points back to the period.
	e.wantJSON(e.do("POST", "/v1/tenants/acme/rollback", sup, map[string]any{"redemption": o3.Redemptions[0].ID}, "Idempotency-Key", "rb3"), 200, nil)
	if got := earned(earn("o4")); got != 10 {
		t.Fatalf("after the rollback: %d, want 10", got)
	}
	ctx := context.Background()
	if p, _ := e.led.Points(ctx, "acme", "c1"); p != 20 {
		t.Fatalf("balance %d, want 20", p)
	}
	rep, err := e.led.Verify(ctx)
	if err != nil || len(rep.Diffs) > 0 {
		t.Fatalf("verify: %v %+v", err, rep.Diffs)
	}
}

// TestCustomerEvents: "points for custom events cannot be earned: no route
// calls that part of the engine". The route earns an event's points once
// per Idempotency-Key, within the rule's period cap, through the ledger's
// earn path; bad input gets a stable reason code naming the field.
func TestCustomerEvents(t *testing.T) {
	e := newEnv(t)
	mk, sup := e.keys[catalog.RoleMarketer], e.keys[catalog.RoleSupport]
	doc := campaignDoc("club", "active", capProgram, "")
	doc["trigger"] = "auto"
	e.wantJSON(e.do("POST", "/v1/tenants/acme/campaigns", mk, doc), 201, nil)
	e.wantJSON(e.do("POST", "/v1/tenants/acme/customers", sup, map[string]any{"id": "c1"}), 201, nil)
	path := "/v1/tenants/acme/customers/c1/events"
	ev := map[string]any{"type": "newsletter_signup", "attributes": map[string]any{"list": "weekly"}}
	var out onlineOut
	first := e.do("POST", path, sup, ev, "Idempotency-Key", "ev-1")
	e.wantJSON(first, 200, &out)
	if !strings.Contains(string(first.body), `"cap":{"rule":"news","period":"year"`) {
		t.Fatalf("the earn names no period cap: %s", first.body)
	}
	if earned(out) != 25 || out.Decision.PointsEarned != 25 || len(out.Decision.Earnings) != 1 {
		t.Fatalf("event earned %d: %+v", earned(out), out)
	}
	r := out.Redemptions[0]
	if r.Kind != protocol.KindEarn || r.Customer != "c1" {
		t.Fatalf("recorded %+v", r)
	}
	// The same event id again: the same answer, nothing recorded twice.
	rep := e.do("POST", path, sup, ev, "Idempotency-Key", "ev-1")
	if rep.status != 200 || rep.header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("replay: %d %s", rep.status, rep.body)
	}
	// Another sign-up the same year: the yearly cap of 25 is spent.
	out = onlineOut{}
	e.wantJSON(e.do("POST", path, sup, ev, "Idempotency-Key", "ev-2"), 200, &out)
	if earned(out) != 0 {
		t.Fatalf("second sign-up in the year earned %d: %+v", earned(out), out)
	}
	// An event no rule earns from: no points, nothing recorded.
	out = onlineOut{}
	e.wantJSON(e.do("POST", path, sup, map[string]any{"type": "birthday"}, "Idempotency-Key", "ev-3"), 200, &out)
	if earned(out) != 0 || len(out.Redemptions) != 0 {
		t.Fatalf("unknown event type earned: %+v", out)
	}
	if p, _ := e.led.Points(context.Background(), "acme", "c1"); p != 25 {
		t.Fatalf("balance %d, want 25", p)
	}
	for _, c := range []struct {
		name  string
		path  string
		body  any
		key   string
		code  protocol.Code
		field string
		st    int
	}{
		{"NoType", path, map[string]any{}, "b1", protocol.CodeInvalidInput, "type", 400},
		{"BadType", path, map[string]any{"type": "news letter"}, "b2", protocol.CodeInvalidInput, "type", 400},
		{"Future", path, map[string]any{"type": "x", "at": e.clk.Now().Add(time.Hour).Format(time.RFC3339)}, "b3", protocol.CodeInvalidInput, "at", 400},
		{"TooOld", path, map[string]any{"type": "x", "at": e.clk.Now().Add(-40 * 24 * time.Hour).Format(time.RFC3339)}, "b4", protocol.CodeInvalidInput, "at", 400},
		{"UnknownField", path, map[string]any{"type": "x", "points": 1000}, "b5", protocol.CodeInvalidInput, "points", 400},
		{"NoKey", path, ev, "", protocol.CodeInvalidInput, "Idempotency-Key", 400},
		{"UnknownCustomer", "/v1/tenants/acme/customers/nobody/events", ev, "b6", protocol.CodeNotFound, "customer", 404},
		{"BadTimeZone", path, map[string]any{"type": "x", "store": map[string]any{"id": "s", "time_zone": "Mars/Base"}}, "b7", protocol.CodeInvalidInput, "store.time_zone", 400},
	} {
		t.Run(c.name, func(t *testing.T) {
			var hdr []string
			if c.key != "" {
				hdr = []string{"Idempotency-Key", c.key}
			}
			e.wantErr(e.do("POST", c.path, sup, c.body, hdr...), c.st, c.code, c.field)
		})
	}
	if rep, err := e.led.Verify(context.Background()); err != nil || len(rep.Diffs) > 0 {
		t.Fatalf("verify: %v %+v", err, rep.Diffs)
	}
}

// TestMaxOrderValue: "a total-order-value budget cannot be set: the ledger
// checks it, the campaign schema refuses max_order_value". It is accepted,
// shown, and the ledger refuses an online redemption past it.
func TestMaxOrderValue(t *testing.T) {
	e := newEnv(t)
	mk, sup := e.keys[catalog.RoleMarketer], e.keys[catalog.RoleSupport]
	e.wantJSON(e.do("POST", "/v1/tenants/acme/campaigns", mk, campaignDoc("summer", "active", percent10, `{"max_order_value":150000}`)), 201, nil)
	e.wantJSON(e.do("POST", "/v1/tenants/acme/campaigns/summer/codes/import", mk, map[string]any{"codes": []string{"SUMMER"}, "uses": -1}), 201, nil)
	var got map[string]any
	e.wantJSON(e.do("GET", "/v1/tenants/acme/campaigns/summer", mk, nil), 200, &got)
	rs, _ := got["rules"].(map[string]any)
	if lim, _ := rs["limits"].(map[string]any); lim == nil || lim["max_order_value"] != float64(150000) {
		t.Fatalf("campaign as stored: %v", got)
	}
	body := map[string]any{"store": web, "order": order(1000_00), "redeemables": []any{map[string]any{"code": "SUMMER"}}}
	e.wantJSON(e.do("POST", "/v1/tenants/acme/redeem", sup, body, "Idempotency-Key", "m1"), 200, nil)
	// 1,000.00 used of 1,500.00: another 1,000.00 order is past it.
	e.wantErr(e.do("POST", "/v1/tenants/acme/redeem", sup, body, "Idempotency-Key", "m2"), 409, protocol.CodeBudgetExhausted, "redeemables[0]")
	body["order"] = order(500_00)
	e.wantJSON(e.do("POST", "/v1/tenants/acme/redeem", sup, body, "Idempotency-Key", "m3"), 200, nil)
	e.wantErr(e.do("PUT", "/v1/tenants/acme/campaigns/summer", mk, campaignDoc("summer", "active", percent10, `{"max_order_value":-1}`)), 400, protocol.CodeInvalidInput, "limits.max_order_value")
}

// TestRedemptionsPerPeriod: limits.per_customer_period bounds a customer's
// redemptions of a campaign per calendar period, across orders.
func TestRedemptionsPerPeriod(t *testing.T) {
	e := newEnv(t)
	mk, sup := e.keys[catalog.RoleMarketer], e.keys[catalog.RoleSupport]
	e.wantJSON(e.do("POST", "/v1/tenants/acme/campaigns", mk, campaignDoc("weekly", "active", percent10, `{"per_customer_period":1,"customer_period":"week"}`)), 201, nil)
	e.wantJSON(e.do("POST", "/v1/tenants/acme/campaigns/weekly/codes/import", mk, map[string]any{"codes": []string{"WEEKLY"}, "uses": -1}), 201, nil)
	for _, id := range []string{"c1", "c2"} {
		e.wantJSON(e.do("POST", "/v1/tenants/acme/customers", sup, map[string]any{"id": id}), 201, nil)
	}
	body := func(cust string) map[string]any {
		return map[string]any{"store": web, "order": order(50_00), "customer": cust, "redeemables": []any{map[string]any{"code": "WEEKLY"}}}
	}
	e.wantJSON(e.do("POST", "/v1/tenants/acme/redeem", sup, body("c1"), "Idempotency-Key", "w1"), 200, nil)
	e.wantErr(e.do("POST", "/v1/tenants/acme/redeem", sup, body("c1"), "Idempotency-Key", "w2"), 422, protocol.CodeCustomerLimit, "redeemables[0]")
	e.wantJSON(e.do("POST", "/v1/tenants/acme/redeem", sup, body("c2"), "Idempotency-Key", "w3"), 200, nil)
	anon := body("")
	delete(anon, "customer")
	e.wantErr(e.do("POST", "/v1/tenants/acme/redeem", sup, anon, "Idempotency-Key", "w4"), 422, protocol.CodeCustomerRequired, "redeemables[0]")
	e.clk.Add(7 * 24 * time.Hour)
	var out onlineOut
	e.wantJSON(e.do("POST", "/v1/tenants/acme/redeem", sup, body("c1"), "Idempotency-Key", "w5"), 200, &out)
	// A rollback gives the redemption back to the period.
	if r := e.do("POST", "/v1/tenants/acme/rollback", sup, map[string]any{"redemption": out.Redemptions[0].ID}, "Idempotency-Key", "w6"); r.status != 200 {
		t.Fatalf("%d %s\n%s", r.status, r.body, e.log)
	}
	e.wantJSON(e.do("POST", "/v1/tenants/acme/redeem", sup, body("c1"), "Idempotency-Key", "w7"), 200, nil)
	e.wantErr(e.do("POST", "/v1/tenants/acme/redeem", sup, body("c1"), "Idempotency-Key", "w8"), 422, protocol.CodeCustomerLimit, "redeemables[0]")
	e.wantErr(e.do("PUT", "/v1/tenants/acme/campaigns/weekly", mk, campaignDoc("weekly", "active", percent10, `{"per_customer_period":1}`)), 400, protocol.CodeInvalidInput, "limits.customer_period")
	if rep, err := e.led.Verify(context.Background()); err != nil || len(rep.Diffs) > 0 {
		t.Fatalf("verify: %v %+v", err, rep.Diffs)
	}
}
