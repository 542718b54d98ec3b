package api_test

import (
	"context"
	"testing"
	"time"

	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/store/catalog"
	"github.com/punchcard/punchcard/store/ledger"
)

// afterSaleEnv has a code campaign (10% off, WELCOME-1), an automatic
// campaign (5% off from 50 EUR), customer c1 and a till sale of c1 a day
// ago (till-1, txn t1, order pos-1, 100 EUR, its points earned).
func afterSaleEnv(t testing.TB) *env {
	e := newEnv(t)
	mk, sup := e.keys[catalog.RoleMarketer], e.keys[catalog.RoleSupport]
	e.wantJSON(e.do("POST", "/v1/tenants/acme/campaigns", mk, campaignDoc("welcome", "active", percent10, "")), 201, nil)
	e.wantJSON(e.do("POST", "/v1/tenants/acme/campaigns/welcome/codes/import", mk, map[string]any{"codes": []string{"WELCOME-1"}}), 201, nil)
	auto := campaignDoc("spring", "active", `{"kind":"percent_off","percent_bp":500}`, "")
	auto["trigger"] = "auto"
	auto["eligibility"] = map[string]any{"min_subtotal": 50_00}
	e.wantJSON(e.do("POST", "/v1/tenants/acme/campaigns", mk, auto), 201, nil)
	club := campaignDoc("club", "active", clubExpiring, "")
	club["trigger"] = "auto"
	e.wantJSON(e.do("POST", "/v1/tenants/acme/campaigns", mk, club), 201, nil)
	e.wantJSON(e.do("POST", "/v1/tenants/acme/customers", sup, map[string]any{"id": "c1"}), 201, nil)
	e.wantJSON(e.do("POST", "/v1/tenants/acme/customers", sup, map[string]any{"id": "c2"}), 201, nil)
	r := protocol.Redemption{ID: protocol.RedemptionID{Agent: "till-1", Seq: 1}, Kind: protocol.KindEarn, Tenant: "acme", Store: "berlin-1",
		TxnID: "t1", Campaign: "club", Customer: "c1", OrderID: "pos-1", Currency: "EUR", Points: 100, OrderTot: 100_00,
		HLC: ledger.HLCFromTime(e.clk.Now().Add(-24 * time.Hour)), Offline: true}
	if _, _, err := e.led.ApplyBatch(context.Background(), "acme", "till-1", []protocol.Redemption{r}); err != nil {
		t.Fatal(err)
	}
	return e
}

type afterSaleOut struct {
	Redemptions []protocol.Redemption `json:"redemptions"`
}

// TestRewardAfterSale is the defect of issue 12: "support cannot apply a
// reward after the sale". Through the HTTP API: a code the customer
// forgot at the till, and an automatic campaign the till missed, are
// applied to the recorded sale, decided again on it, recorded as online
// redemptions on the sale's order, once per key and once per sale.
func TestRewardAfterSale(t *testing.T) {
	e := afterSaleEnv(t)
	sup := e.keys[catalog.RoleSupport]
	const p = "/v1/tenants/acme/customers/c1/rewards-after-sale"
	sale := map[string]any{"agent": "till-1", "txn_id": "t1"}

	var a afterSaleOut
	e.wantJSON(e.do("POST", p, sup, map[string]any{"sale": sale, "code": "WELCOME-1"}, "Idempotency-Key", "s1"), 200, &a)
	if len(a.Redemptions) != 1 {
		t.Fatalf("after sale: %+v", a)
	}
	r := a.Redemptions[0]
	if r.Kind != protocol.KindRedeem || r.Campaign != "welcome" || r.Discount != 10_00 || r.OrderID != "pos-1" || r.Customer != "c1" ||
		r.TxnID != "after-sale:till-1/t1" || r.ID.Agent != protocol.HubSender || r.Points != 0 {
		t.Fatalf("the reward: %+v", r)
	}
	// The same key again: the same answer; the code again under another
	// key: used (a single-use code, checked as usual).
	rr := e.do("POST", p, sup, map[string]any{"sale": sale, "code": "WELCOME-1"}, "Idempotency-Key", "s1")
	if rr.status != 200 || rr.header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("replay: %d %s", rr.status, rr.body)
	}
	e.wantErr(e.do("POST", p, sup, map[string]any{"sale": sale, "code": "WELCOME-1"}, "Idempotency-Key", "s2"), 409, protocol.CodeCodeUsed, "code")

	// An automatic campaign the till missed, twice under two keys: one
	// redemption.
	var b1, b2 afterSaleOut
	e.wantJSON(e.do("POST", p, sup, map[string]any{"sale": sale, "campaign": "spring"}, "Idempotency-Key", "s3"), 200, &b1)
	e.wantJSON(e.do("POST", p, sup, map[string]any{"sale": sale, "campaign": "spring"}, "Idempotency-Key", "s4"), 200, &b2)
	if len(b1.Redemptions) != 1 || b1.Redemptions[0].Discount != 5_00 || len(b2.Redemptions) != 1 || b2.Redemptions[0].ID != b1.Redemptions[0].ID {
		t.Fatalf("automatic after sale: %+v / %+v", b1, b2)
	}
	// The order as on the receipt: lines that add up to the sale.
	e.wantJSON(e.do("POST", p, sup, map[string]any{"sale": sale, "campaign": "spring", "order": map[string]any{"id": "pos-1", "currency": "EUR",
		"lines": []any{map[string]any{"sku": "a", "quantity": 2, "unit_price": 30_00}, map[string]any{"sku": "b", "quantity": 1, "unit_price": 40_00}}}},
		"Idempotency-Key", "s5"), 200, nil)

	// An online sale is named by the hub and its Idempotency-Key.
	e.wantJSON(e.do("POST", "/v1/tenants/acme/earn", sup, map[string]any{"store": web, "order": order(80_00), "customer": "c1"}, "Idempotency-Key", "web-1"), 200, nil)
	var c afterSaleOut
	e.wantJSON(e.do("POST", p, sup, map[string]any{"sale": map[string]any{"agent": "hub", "txn_id": "web-1"}, "campaign": "spring"}, "Idempotency-Key", "s6"), 200, &c)
	if len(c.Redemptions) != 1 || c.Redemptions[0].Discount != 4_00 || c.Redemptions[0].OrderID != "o1" {
		t.Fatalf("online after sale: %+v", c)
	}

	// The history shows them on the sale's order.
	var h supportHistory
	e.wantJSON(e.do("GET", "/v1/tenants/acme/customers/c1/history", sup, nil), 200, &h)
	n := 0
	for _, x := range h.Activity {
		if x.Entry == "redeem" && x.OrderID == "pos-1" && x.Channel == "online" {
			n++
		}
	}
	if n != 2 {
		t.Fatalf("after-sale redemptions in the history: %d: %+v", n, h.Activity)
	}
	if rep, err := e.led.Verify(context.Background()); err != nil || !rep.OK() {
		t.Fatalf("verify: %v %v", err, rep.Diffs)
	}
}

// TestRewardAfterSaleBadInput: each bad request is refused with a stable
// reason code and the field at fault.
func TestRewardAfterSaleBadInput(t *testing.T) {
	e := afterSaleEnv(t)
	sup, ro := e.keys[catalog.RoleSupport], e.keys[catalog.RoleReadOnly]
	const p = "/v1/tenants/acme/customers/c1/rewards-after-sale"
	sale := map[string]any{"agent": "till-1", "txn_id": "t1"}
	for _, c := range []struct {
		name   string
		path   string
		key    string
		body   map[string]any
		status int
		code   protocol.Code
		field  string
	}{
		{"ErrNoAgent", p, sup, map[string]any{"sale": map[string]any{"txn_id": "t1"}, "code": "WELCOME-1"}, 400, protocol.CodeInvalidInput, "sale.agent"},
		{"ErrNoTxn", p, sup, map[string]any{"sale": map[string]any{"agent": "till-1"}, "code": "WELCOME-1"}, 400, protocol.CodeInvalidInput, "sale.txn_id"},
		{"ErrNeither", p, sup, map[string]any{"sale": sale}, 400, protocol.CodeInvalidInput, "code"},
		{"ErrBoth", p, sup, map[string]any{"sale": sale, "code": "WELCOME-1", "campaign": "spring"}, 400, protocol.CodeInvalidInput, "code"},
		{"ErrBadCampaign", p, sup, map[string]any{"sale": sale, "campaign": "no such"}, 400, protocol.CodeInvalidInput, "campaign"},
		{"ErrUnknownSale", p, sup, map[string]any{"sale": map[string]any{"agent": "till-1", "txn_id": "t9"}, "code": "WELCOME-1"}, 404, protocol.CodeNotFound, "sale"},
		{"ErrOtherCustomer", "/v1/tenants/acme/customers/c2/rewards-after-sale", sup, map[string]any{"sale": sale, "code": "WELCOME-1"}, 400, protocol.CodeInvalidInput, "sale"},
		{"ErrUnknownCustomer", "/v1/tenants/acme/customers/c9/rewards-after-sale", sup, map[string]any{"sale": sale, "code": "WELCOME-1"}, 404, protocol.CodeNotFound, ""},
		{"ErrOrderMismatch", p, sup, map[string]any{"sale": sale, "campaign": "spring", "order": order(99_00)}, 400, protocol.CodeInvalidInput, "order"},
		{"ErrBadOrder", p, sup, map[string]any{"sale": sale, "campaign": "spring", "order": map[string]any{"currency": "EUR", "lines": []any{map[string]any{"quantity": 1}}}}, 400, protocol.CodeInvalidInput, "order.lines[0].sku"},
		{"ErrUnknownCode", p, sup, map[string]any{"sale": sale, "code": "NOPE"}, 422, protocol.CodeUnknownCode, "code"},
		{"ErrNoEffect", p, sup, map[string]any{"sale": sale, "campaign": "welcome"}, 422, protocol.CodeNoEffect, "campaign"},
		{"ErrReadOnly", p, ro, map[string]any{"sale": sale, "code": "WELCOME-1"}, 403, protocol.CodeForbidden, ""},
	} {
		t.Log(c.name)
		e.wantErr(e.do("POST", c.path, c.key, c.body, "Idempotency-Key", "k-"+c.name), c.status, c.code, c.field)
	}
	e.wantErr(e.do("POST", p, sup, map[string]any{"sale": sale, "code": "WELCOME-1"}), 400, protocol.CodeInvalidInput, "Idempotency-Key")
}
