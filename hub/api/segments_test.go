package api_test

import (
	"testing"
	"time"

	"github.com/punchcard/punchcard/store/catalog"
)

// Issue 12, item 5 "Segments from behaviour", through the hub's online
// API. Only HTTP: it runs (and fails) on a hub without segments too.

// TestSegmentFromPurchases pins the defect "a segment is one static
// string; no purchase history is kept to compute one": a campaign that
// admits only the segment "big" (spent €1,000+ in the last 365 days)
// does not apply to a new customer, applies once the customer's online
// orders add up to €1,000 within the window, and stops applying when the
// oldest order falls out of it.
func TestSegmentFromPurchases(t *testing.T) {
	e := newEnv(t)
	mk, sup := e.keys[catalog.RoleMarketer], e.keys[catalog.RoleSupport]
	e.wantJSON(e.do("PUT", "/v1/tenants/acme/segments/big", mk, map[string]any{
		"name": "big spenders", "time_zone": "Europe/Berlin",
		"rules": []any{map[string]any{"kind": "spend", "min_spend": 1000_00, "days": 365}}}), 201, nil)
	// points on every order, so that each order is a fact the hub keeps
	club := campaignDoc("club", "active", `{"kind":"points","points":{"earn":[{"id":"spend","on":"spend","per_amount":100,"milli_points":1000}]}}`, "")
	club["trigger"] = "auto"
	e.wantJSON(e.do("POST", "/v1/tenants/acme/campaigns", mk, club), 201, nil)
	vip := campaignDoc("vip", "active", percent10, "")
	vip["trigger"] = "auto"
	vip["eligibility"] = map[string]any{"segments": []string{"big"}}
	e.wantJSON(e.do("POST", "/v1/tenants/acme/campaigns", mk, vip), 201, nil)
	e.wantJSON(e.do("POST", "/v1/tenants/acme/customers", sup, map[string]any{"id": "c1"}), 201, nil)

	vipOff := func() int64 {
		t.Helper()
		var out onlineOut
		e.wantJSON(e.do("POST", "/v1/tenants/acme/validate", sup, map[string]any{"store": web, "order": order(100_00), "customer": "c1"}), 200, &out)
		return out.Decision.Discount
	}
	buy := func(key string, total int64) {
		t.Helper()
		var out onlineOut
		e.wantJSON(e.do("POST", "/v1/tenants/acme/earn", sup, map[string]any{"store": web, "order": order(total), "customer": "c1"}, "Idempotency-Key", key), 200, &out)
		if earned(out) == 0 {
			t.Fatalf("order %s earned nothing", key)
		}
	}
	if off := vipOff(); off != 0 {
		t.Fatalf("new customer got %d off: not yet in the segment", off)
	}
	buy("o1", 600_00)
	e.clk.Add(30 * 24 * time.Hour)
	if off := vipOff(); off != 0 {
		t.Fatalf("after €600: %d off, want 0", off)
	}
	buy("o2", 400_00)
	buy("o2", 400_00) // a retry is the same order
	if off := vipOff(); off != 10_00 {
		t.Fatalf("after €1,000 within 365 days: %d off, want 1000 (10%% of €100)", off)
	}
	var segs struct {
		Segments []string `json:"segments"`
	}
	e.wantJSON(e.do("GET", "/v1/tenants/acme/customers/c1/segments", sup, nil), 200, &segs)
	if len(segs.Segments) != 1 || segs.Segments[0] != "big" {
		t.Fatalf("customer segments %v, want [big]", segs.Segments)
	}
	var ps struct {
		Items []struct {
			Value int64 `json:"value"`
		} `json:"items"`
	}
	e.wantJSON(e.do("GET", "/v1/tenants/acme/customers/c1/purchases", sup, nil), 200, &ps)
	if len(ps.Items) != 2 || ps.Items[0].Value != 400_00 || ps.Items[1].Value != 600_00 {
		t.Fatalf("purchases %+v, want the two orders, newest first", ps.Items)
	}
	// 336 days later the first order (day 0) is past the 365-day window.
	e.clk.Add(336 * 24 * time.Hour)
	if off := vipOff(); off != 0 {
		t.Fatalf("after the first order left the window: %d off, want 0", off)
	}
}

// TestSegmentRoutes: definitions are managed through the API with stable
// reason codes.
func TestSegmentRoutes(t *testing.T) {
	e := newEnv(t)
	mk, ro := e.keys[catalog.RoleMarketer], e.keys[catalog.RoleReadOnly]
	lapsed := map[string]any{"rules": []any{map[string]any{"kind": "lapsed", "days": 90}}}
	e.wantJSON(e.do("PUT", "/v1/tenants/acme/segments/lapsed", mk, lapsed), 201, nil)
	e.wantJSON(e.do("PUT", "/v1/tenants/acme/segments/lapsed", mk, lapsed), 200, nil)
	e.wantJSON(e.do("PUT", "/v1/tenants/acme/segments/lapsed", ro, lapsed), 403, nil)
	var l struct {
		Items []map[string]any `json:"items"`
	}
	e.wantJSON(e.do("GET", "/v1/tenants/acme/segments", ro, nil), 200, &l)
	if len(l.Items) != 1 || l.Items[0]["id"] != "lapsed" {
		t.Fatalf("list %+v", l.Items)
	}
	for _, tc := range []struct {
		name  string
		body  map[string]any
		field string
	}{
		{"ErrKind", map[string]any{"rules": []any{map[string]any{"kind": "vibes"}}}, "rules[0].kind"},
		{"ErrDays", map[string]any{"rules": []any{map[string]any{"kind": "spend", "min_spend": 1}}}, "rules[0].days"},
		{"ErrZone", map[string]any{"time_zone": "Mars/Olympus", "rules": []any{map[string]any{"kind": "birthday_month"}}}, "time_zone"},
		{"ErrID", map[string]any{"id": "other", "rules": []any{map[string]any{"kind": "birthday_month"}}}, "id"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var pb struct {
				Code  string `json:"code"`
				Field string `json:"field"`
			}
			e.wantJSON(e.do("PUT", "/v1/tenants/acme/segments/x", mk, tc.body), 400, &pb)
			if pb.Code != "invalid_input" || pb.Field != tc.field {
				t.Fatalf("problem %+v, want invalid_input on %s", pb, tc.field)
			}
		})
	}
	e.wantJSON(e.do("DELETE", "/v1/tenants/acme/segments/lapsed", mk, nil), 204, nil)
	e.wantJSON(e.do("GET", "/v1/tenants/acme/segments/lapsed", ro, nil), 404, nil)
}
