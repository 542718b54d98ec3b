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
	"github.com/punchcard/punchcard/store/ledger"
)

// Issue 12, item 3, at the tills (real hub, in-process tills over their
// POS APIs): a per-period earning cap holds across orders and tills while
// they are online, is bounded offline (one cap per till per period), and
// the hub flags an offline overshoot on ingest.
func TestPeriodCapTills(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the hub and tills")
	}
	ctx := context.Background()
	p := startParityHub(t)
	c := p.h.Catalog
	for _, doc := range []string{
		`{"schema":1,"id":"club","tenant":"acme","status":"active","trigger":"auto","currency":"EUR","reward":{"kind":"points","points":{"earn":[
			{"id":"spend","on":"spend","per_amount":100,"milli_points":1000,"period_cap":10,"period":"day"}]}}}`,
	} {
		if _, err := c.CreateCampaign(ctx, catalog.System, parityTenant, []byte(doc)); err != nil {
			t.Fatal(err)
		}
	}
	for _, id := range []protocol.CustomerID{"c1", "c2"} {
		if _, err := c.CreateCustomer(ctx, catalog.System, parityTenant, catalog.Customer{ID: id}); err != nil {
			t.Fatal(err)
		}
	}
	storeA := snapshot.Store{ID: "store-a", TimeZone: "Europe/Berlin"}
	a1 := p.register(t, parityTenant, "till-a1", storeA)
	a2 := p.register(t, parityTenant, "till-a2", storeA)
	p.start(t, a1, true)
	p.start(t, a2, true)
	order := func(id string) protocol.Order {
		return protocol.Order{ID: id, Currency: "EUR", Lines: []protocol.Line{{SKU: "shirt", Quantity: 1, UnitPrice: 42_00}}}
	}
	earn := func(t *testing.T, tl *till, txn string, cust protocol.CustomerID) (int64, bool) {
		t.Helper()
		st, body := tl.post(t, "/v1/earn", agent.EarnRequest{TxnID: txn, Order: order(txn), Customer: &protocol.Customer{ID: cust}})
		if st != 200 {
			if strings.Contains(string(body), string(protocol.CodeNoEffect)) {
				return 0, false
			}
			t.Fatalf("earn %s: %d %s", txn, st, body)
		}
		var rc agent.Receipt
		json.Unmarshal(body, &rc)
		return rc.Points, rc.Offline
	}
	waitSynced := func(t *testing.T, agents ...protocol.AgentID) {
		t.Helper()
		for _, a := range agents {
			waitFor(t, "facts of "+string(a)+" at the hub", func() bool {
				var n int
				p.h.Ledger.DB().QueryRow(`SELECT COUNT(*) FROM ledger_journal WHERE tenant = 'acme' AND agent = ?`, string(a)).Scan(&n)
				return n > 0
			})
		}
	}

	t.Run("OnlineAcrossTills", func(t *testing.T) {
		// "a rule capped at 10 points a day gave 10 on each of two
		// orders the same day ... at the till".
		if pts, off := earn(t, a1, "a1-1", "c1"); pts != 10 || off {
			t.Fatalf("first order at till a1: %d points (offline %v), want 10 online", pts, off)
		}
		if pts, _ := earn(t, a1, "a1-2", "c1"); pts != 0 {
			t.Fatalf("second order at the same till: %d points, want 0", pts)
		}
		if pts, _ := earn(t, a2, "a2-1", "c1"); pts != 0 {
			t.Fatalf("third order at another online till: %d points, want 0", pts)
		}
		st, body := p.post(t, parityTenant, "/earn", map[string]any{"store": map[string]any{"id": "web", "time_zone": "Europe/Berlin"},
			"order": order("web-1"), "customer": "c1"}, "web-1")
		if st != 200 || strings.Contains(string(body), `"kind":"earn"`) {
			t.Fatalf("web order after the tills: %d %s, want no earn", st, body)
		}
	})
	t.Run("OfflineBound", func(t *testing.T) {
		// Offline each till counts its own earns: at most one cap per
		// till; the hub records the overshoot as earn_cap_exceeded.
		p.start(t, a1, false)
		p.start(t, a2, false)
		if pts, off := earn(t, a1, "off-1", "c2"); pts != 10 || !off {
			t.Fatalf("offline at a1: %d (offline %v)", pts, off)
		}
		if pts, _ := earn(t, a1, "off-2", "c2"); pts != 0 {
			t.Fatalf("offline, again at a1: %d, want 0 (own facts)", pts)
		}
		if pts, _ := earn(t, a2, "off-3", "c2"); pts != 10 {
			t.Fatalf("offline at a2: %d, want 10 (the offline bound)", pts)
		}
		p.start(t, a1, true)
		p.start(t, a2, true)
		var kinds map[ledger.ConflictKind]int
		waitFor(t, "conflicts of the offline overshoot", func() bool {
			cs, err := p.h.Ledger.Conflicts(ctx, parityTenant, 0, 1000)
			if err != nil {
				t.Fatal(err)
			}
			kinds = map[ledger.ConflictKind]int{}
			for _, c := range cs {
				kinds[c.Kind]++
			}
			return kinds["earn_cap_exceeded"] > 0
		})
		if kinds["earn_cap_exceeded"] != 1 || len(kinds) != 1 {
			t.Fatalf("conflicts %v, want one earn_cap_exceeded and nothing else (no effect_mismatch)", kinds)
		}
		waitSynced(t, "till-a1", "till-a2")
		if pts, _ := p.h.Ledger.Points(ctx, parityTenant, "c2"); pts != 20 {
			t.Fatalf("c2 has %d points, want 20 (both offline earns recorded)", pts)
		}
		// Online again: the customer is at the cap everywhere.
		if pts, _ := earn(t, a2, "on-4", "c2"); pts != 0 {
			t.Fatalf("online after the overshoot: %d", pts)
		}
		if rep, err := p.h.Ledger.Verify(ctx); err != nil || len(rep.Diffs) > 0 {
			t.Fatalf("verify: %v %+v", err, rep.Diffs)
		}
	})
}

// TestOrderValueTillFacts: a max_order_value budget is not escrowed to
// tills; what their facts spend past it is recorded and flagged
// (order_value_exceeded), and the hub's online API is then refused.
func TestOrderValueTillFacts(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the hub and tills")
	}
	ctx := context.Background()
	p := startParityHub(t)
	c := p.h.Catalog
	doc := `{"schema":1,"id":"ten","tenant":"acme","status":"active","currency":"EUR","reward":{"kind":"percent_off","percent_bp":1000},"limits":{"max_order_value":15000}}`
	if _, err := c.CreateCampaign(ctx, catalog.System, parityTenant, []byte(doc)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ImportCodes(ctx, catalog.System, parityTenant, "ten", []string{"TEN"}, catalog.CodeSpec{Uses: -1}); err != nil {
		t.Fatal(err)
	}
	a1 := p.register(t, parityTenant, "till-a1", snapshot.Store{ID: "store-a", TimeZone: "Europe/Berlin"})
	p.start(t, a1, true)
	p.start(t, a1, false)
	order := func(id string) protocol.Order {
		return protocol.Order{ID: id, Currency: "EUR", Lines: []protocol.Line{{SKU: "shirt", Quantity: 1, UnitPrice: 100_00}}}
	}
	for _, txn := range []string{"ov-1", "ov-2"} {
		b := agent.RedeemRequest{TxnID: txn, Basket: agent.Basket{Order: order(txn), Redeemables: []agent.Input{{Code: "TEN"}}}}
		if st, body := a1.post(t, "/v1/redeem", b); st != 200 {
			t.Fatalf("offline redeem %s: %d %s", txn, st, body)
		}
	}
	p.start(t, a1, true)
	var kinds map[ledger.ConflictKind]int
	waitFor(t, "the order value conflict", func() bool {
		cs, err := p.h.Ledger.Conflicts(ctx, parityTenant, 0, 1000)
		if err != nil {
			t.Fatal(err)
		}
		kinds = map[ledger.ConflictKind]int{}
		for _, c := range cs {
			kinds[c.Kind]++
		}
		return kinds["order_value_exceeded"] > 0
	})
	if kinds["order_value_exceeded"] != 1 || len(kinds) != 1 {
		t.Fatalf("conflicts %v, want one order_value_exceeded", kinds)
	}
	st, body := p.post(t, parityTenant, "/redeem", map[string]any{"store": map[string]any{"id": "web", "time_zone": "Europe/Berlin"},
		"order": order("web-1"), "redeemables": []any{map[string]any{"code": "TEN"}}}, "web-1")
	if st == 200 || !strings.Contains(string(body), string(protocol.CodeBudgetExhausted)) {
		t.Fatalf("online redeem past the order value budget: %d %s", st, body)
	}
	if rep, err := p.h.Ledger.Verify(ctx); err != nil || len(rep.Diffs) > 0 {
		t.Fatalf("verify: %v %+v", err, rep.Diffs)
	}
}

// TestRedemptionsPerPeriodTills: limits.per_customer_period across online
// tills, bounded offline (one period's limit per till), and the hub's
// customer_limit conflict for the offline overshoot.
func TestRedemptionsPerPeriodTills(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the hub and tills")
	}
	ctx := context.Background()
	p := startParityHub(t)
	c := p.h.Catalog
	doc := `{"schema":1,"id":"weekly","tenant":"acme","status":"active","currency":"EUR","reward":{"kind":"percent_off","percent_bp":1000},"limits":{"per_customer_period":1,"customer_period":"week"}}`
	if _, err := c.CreateCampaign(ctx, catalog.System, parityTenant, []byte(doc)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ImportCodes(ctx, catalog.System, parityTenant, "weekly", []string{"WEEKLY"}, catalog.CodeSpec{Uses: -1}); err != nil {
		t.Fatal(err)
	}
	for _, id := range []protocol.CustomerID{"c1", "c2"} {
		if _, err := c.CreateCustomer(ctx, catalog.System, parityTenant, catalog.Customer{ID: id}); err != nil {
			t.Fatal(err)
		}
	}
	storeA := snapshot.Store{ID: "store-a", TimeZone: "Europe/Berlin"}
	a1 := p.register(t, parityTenant, "till-a1", storeA)
	a2 := p.register(t, parityTenant, "till-a2", storeA)
	p.start(t, a1, true)
	p.start(t, a2, true)
	redeem := func(t *testing.T, tl *till, txn string, cust protocol.CustomerID) (int, string) {
		t.Helper()
		b := agent.RedeemRequest{TxnID: txn, Basket: agent.Basket{Order: protocol.Order{ID: txn, Currency: "EUR",
			Lines: []protocol.Line{{SKU: "shirt", Quantity: 1, UnitPrice: 50_00}}}, Customer: &protocol.Customer{ID: cust}, Redeemables: []agent.Input{{Code: "WEEKLY"}}}}
		st, body := tl.post(t, "/v1/redeem", b)
		return st, string(body)
	}
	if st, body := redeem(t, a1, "r1", "c1"); st != 200 {
		t.Fatalf("first redeem: %d %s", st, body)
	}
	if st, body := redeem(t, a2, "r2", "c1"); st == 200 || !strings.Contains(body, string(protocol.CodeCustomerLimit)) {
		t.Fatalf("second redeem in the week at another online till: %d %s", st, body)
	}
	p.start(t, a1, false)
	p.start(t, a2, false)
	if st, body := redeem(t, a1, "r3", "c2"); st != 200 {
		t.Fatalf("offline at a1: %d %s", st, body)
	}
	if st, body := redeem(t, a1, "r4", "c2"); st == 200 || !strings.Contains(body, string(protocol.CodeCustomerLimit)) {
		t.Fatalf("offline, again at a1: %d %s", st, body)
	}
	if st, body := redeem(t, a2, "r5", "c2"); st != 200 {
		t.Fatalf("offline at a2 (the offline bound): %d %s", st, body)
	}
	p.start(t, a1, true)
	p.start(t, a2, true)
	var kinds map[ledger.ConflictKind]int
	waitFor(t, "the customer_limit conflict", func() bool {
		cs, err := p.h.Ledger.Conflicts(ctx, parityTenant, 0, 1000)
		if err != nil {
			t.Fatal(err)
		}
		kinds = map[ledger.ConflictKind]int{}
		for _, c := range cs {
			kinds[c.Kind]++
		}
		return kinds[ledger.ConflictCustomerLimit] > 0
	})
	if kinds[ledger.ConflictCustomerLimit] != 1 || len(kinds) != 1 {
		t.Fatalf("conflicts %v, want one customer_limit", kinds)
	}
	if rep, err := p.h.Ledger.Verify(ctx); err != nil || len(rep.Diffs) > 0 {
		t.Fatalf("verify: %v %+v", err, rep.Diffs)
	}
}
