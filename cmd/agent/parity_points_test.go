package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/punchcard/punchcard/agent"
	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/protocol/snapshot"
	"github.com/punchcard/punchcard/store/catalog"
)

// TestPointsBurnAtTill pins the POS API's points burn as payment
// (redeemable {"campaign": ...}, docs/agent.md), which the parity test's
// points cases need: an online till asks the hub (the customer's points
// are the hub's), records the burn as its fact, and the hub's ledger
// debits the points and re-derives the fact without a conflict. Offline
// the till refuses it (insufficient_points, a documented difference), and
// a redeemable naming both a code and a campaign is invalid_input.
func TestPointsBurnAtTill(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the hub and a till")
	}
	ctx := context.Background()
	p := startParityHub(t)
	c := p.h.Catalog
	doc := `{"schema":1,"id":"loyal","tenant":"acme","status":"active","currency":"EUR","trigger":"auto",
		"reward":{"kind":"points","points":{"earn":[{"id":"spend","on":"spend","per_amount":100,"milli_points":1000}],"burn_points":100,"burn_value":100}}}`
	if _, err := c.CreateCampaign(ctx, catalog.System, parityTenant, []byte(doc)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateCustomer(ctx, catalog.System, parityTenant, catalog.Customer{ID: "c1"}); err != nil {
		t.Fatal(err)
	}
	store := snapshot.Store{ID: "berlin-1", TimeZone: "Europe/Berlin"}
	st := &stager{p: p}
	if got := st.earnTo(t, parityTenant, store, "c1", 500); got != 500 {
		t.Fatalf("earned %d points, want 500", got)
	}
	tl := p.register(t, parityTenant, "till-1", store)
	p.start(t, tl, true)
	order := protocol.Order{ID: "o1", Currency: "EUR", Lines: []protocol.Line{{SKU: "shoe", Quantity: 1, UnitPrice: 80_00}}}
	cust := &protocol.Customer{ID: "c1"}
	redeem := func(txn string, in ...agent.Input) (int, agent.Receipt, []byte) {
		t.Helper()
		o := order
		o.ID = txn
		status, body := tl.post(t, "/v1/redeem", agent.RedeemRequest{TxnID: txn, Basket: agent.Basket{Order: o, Customer: cust, Redeemables: in}})
		var rc agent.Receipt
		json.Unmarshal(body, &rc)
		return status, rc, body
	}

	status, body := tl.post(t, "/v1/redeem", map[string]any{"txn_id": "bad", "order": order, "customer": cust,
		"redeemables": []any{map[string]any{"code": "X", "campaign": "loyal"}}})
	if status != 400 || !strings.Contains(string(body), string(protocol.CodeInvalidInput)) || !strings.Contains(string(body), "redeemables[0]") {
		t.Fatalf("a code and a campaign: %d %s, want 400 invalid_input redeemables[0]", status, body)
	}

	status, rc, body := redeem("burn-1", agent.Input{Campaign: "loyal", Amount: 3_00})
	if status != 200 || rc.Offline || rc.Quote == nil || rc.Quote.HubRef == "" {
		t.Fatalf("points burn at an online till: %d %s, want it asked online first and recorded", status, body)
	}
	if rc.Quote.Paid != 3_00 || rc.Quote.Decision.PointsBurned != 300 {
		t.Fatalf("paid %d burned %d, want 300 and 300: %s", rc.Quote.Paid, rc.Quote.Decision.PointsBurned, body)
	}
	want := int64(500 - 300 + rc.Points)
	waitFor(t, "the burn in the hub's ledger", func() bool {
		n, err := p.h.Ledger.Points(ctx, parityTenant, "c1")
		return err == nil && n == want
	})
	cs, err := p.h.Ledger.Conflicts(ctx, parityTenant, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(cs) != 0 {
		t.Fatalf("conflicts after a till's points burn: %+v", cs)
	}
	// More than the customer has left: refused, online, as at the hub.
	status, _, body = redeem("burn-2", agent.Input{Campaign: "loyal", Amount: 5_00})
	if status == 200 || !strings.Contains(string(body), string(protocol.CodeInsufficientPts)) {
		t.Fatalf("a burn above the balance: %d %s, want insufficient_points", status, body)
	}

	p.start(t, tl, false)
	status, _, body = redeem("burn-3", agent.Input{Campaign: "loyal", Amount: 1_00})
	if status == 200 || !strings.Contains(string(body), string(protocol.CodeInsufficientPts)) {
		t.Fatalf("a burn at an offline till: %d %s, want insufficient_points", status, body)
	}
}
