package api_test

import (
	"context"
	"testing"
	"time"

	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/store/catalog"
)

// clubExpiring is a points program of 1 point per euro, 1 point = 0.10 to
// spend, with a one-month rolling expiry.
const clubExpiring = `{"kind":"points","points":{"earn":[{"id":"spend","on":"spend","per_amount":100,"milli_points":1000}],
	"burn_points":1,"burn_value":10,"expiry":{"kind":"rolling","months":1}}}`

// TestPointsExpire pins issue 12's first defect: "Points never expire. The
// engine computes expiry dates; the ledger keeps one running total per
// customer. After a test expiry passed, the balance stayed at 100 and 50
// of them were still spent." Points earned online with a one-month
// rolling expiry are gone after it: the balance is 0 and a burn of 50 is
// refused. (It uses only routes that existed before lots, so it runs, and
// fails, on the old code.)
func TestPointsExpire(t *testing.T) {
	e := newEnv(t)
	mk, sup := e.keys[catalog.RoleMarketer], e.keys[catalog.RoleSupport]
	doc := campaignDoc("club", "active", clubExpiring, "")
	doc["trigger"] = "auto"
	e.wantJSON(e.do("POST", "/v1/tenants/acme/campaigns", mk, doc), 201, nil)
	e.wantJSON(e.do("POST", "/v1/tenants/acme/customers", sup, map[string]any{"id": "c1"}), 201, nil)
	e.wantJSON(e.do("POST", "/v1/tenants/acme/earn", sup, map[string]any{"store": web, "order": order(100_00), "customer": "c1"}, "Idempotency-Key", "e1"), 200, nil)
	var h struct {
		Points int64 `json:"points"`
	}
	e.wantJSON(e.do("GET", "/v1/tenants/acme/customers/c1/history", sup, nil), 200, &h)
	if h.Points != 100 {
		t.Fatalf("points %d, want 100", h.Points)
	}

	e.clk.Add(40 * 24 * time.Hour)
	e.wantJSON(e.do("GET", "/v1/tenants/acme/customers/c1/history", sup, nil), 200, &h)
	if h.Points != 0 {
		t.Fatalf("points after the expiry: %d, want 0", h.Points)
	}
	burn := map[string]any{"store": web, "order": order(100_00), "customer": "c1", "redeemables": []map[string]any{{"campaign": "club", "amount": 50}}}
	r := e.do("POST", "/v1/tenants/acme/redeem", sup, burn, "Idempotency-Key", "b1")
	if r.status == 200 {
		t.Fatalf("50 expired points spent: %s", r.body)
	}
	e.wantErr(r, 422, protocol.CodeInsufficientPts, "redeemables[0]")
	if p, err := e.led.Points(context.Background(), "acme", "c1"); err != nil || p != 0 {
		t.Fatalf("ledger points %d, %v; want 0", p, err)
	}
}
