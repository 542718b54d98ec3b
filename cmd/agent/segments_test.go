package main

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/punchcard/punchcard/agent"
	"github.com/punchcard/punchcard/hub/snapshots"
	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/protocol/segment"
	"github.com/punchcard/punchcard/protocol/snapshot"
	"github.com/punchcard/punchcard/store/catalog"
)

// TestSegmentAtTill: issue 12, item 5, at a till (real hub, in-process
// till over its POS API). A customer's purchase at the till reaches the
// hub as a fact; the hub keeps it in the purchase history and computes
// the customer's segment in the fact's transaction; the till's next
// snapshot carries it, and offline the till applies a campaign that
// admits only that segment to that customer, not to another; the hub
// re-derives the offline sale without a conflict.
func TestSegmentAtTill(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the hub and a till")
	}
	ctx := context.Background()
	p := startParityHub(t)
	c := p.h.Catalog
	if _, err := c.PutSegment(ctx, parityTenant, segment.Definition{ID: "big", TimeZone: "Europe/Berlin",
		Rules: []segment.Rule{{Kind: segment.KindSpend, MinSpend: 150_00, Days: 365}}}); err != nil {
		t.Fatal(err)
	}
	for _, doc := range []string{
		`{"schema":1,"id":"club","tenant":"acme","status":"active","trigger":"auto","currency":"EUR","reward":{"kind":"points","points":{"earn":[
			{"id":"spend","on":"spend","per_amount":100,"milli_points":1000}]}}}`,
		`{"schema":1,"id":"vip","tenant":"acme","status":"active","trigger":"auto","currency":"EUR","reward":{"kind":"percent_off","percent_bp":1000},
			"eligibility":{"segments":["big"]}}`,
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
	a1 := p.register(t, parityTenant, "till-a1", snapshot.Store{ID: "store-a", TimeZone: "Europe/Berlin"})
	p.start(t, a1, true)
	p.start(t, a1, false)
	order := func(id string, total int64) protocol.Order {
		return protocol.Order{ID: id, Currency: "EUR", Lines: []protocol.Line{{SKU: "shirt", Quantity: 1, UnitPrice: total}}}
	}
	quote := func(cust protocol.CustomerID) agent.Quote {
		t.Helper()
		st, body := a1.post(t, "/v1/validate", agent.Basket{Order: order("q", 100_00), Customer: &protocol.Customer{ID: cust}})
		if st != 200 {
			t.Fatalf("validate: %d %s", st, body)
		}
		var q agent.Quote
		json.Unmarshal(body, &q)
		return q
	}
	if q := quote("c1"); q.Discount != 0 {
		t.Fatalf("before any purchase: %d off", q.Discount)
	}
	// A purchase of €200 at the till (offline), synced to the hub.
	st, body := a1.post(t, "/v1/earn", agent.EarnRequest{TxnID: "buy-1", Order: order("buy-1", 200_00), Customer: &protocol.Customer{ID: "c1"}})
	if st != 200 {
		t.Fatalf("earn: %d %s", st, body)
	}
	p.start(t, a1, true)
	waitFor(t, "the hub's stored segment of c1", func() bool {
		gs, err := p.h.Ledger.CustomerSegments(ctx, parityTenant, "c1")
		return err == nil && len(gs) == 1 && gs[0] == "big"
	})
	// A catalog change makes the till fetch its snapshot again.
	if st, body := p.post(t, parityTenant, "/customers", map[string]any{"id": "c9"}, ""); st != 201 {
		t.Fatalf("create customer: %d %s", st, body)
	}
	p.resync(t, a1)
	an, err := p.h.Snapshots.Snapshot(ctx, snapshots.Request{Tenant: parityTenant, Agent: "till-a1"})
	if err != nil || an.Snapshot == nil || len(an.Snapshot.Segments) != 1 || an.Snapshot.Segments[0].Customer != "c1" {
		t.Fatalf("the hub's snapshot segments: %+v %v", an, err)
	}
	p.start(t, a1, false)
	if q := quote("c1"); !q.Offline || q.Discount != 10_00 {
		t.Fatalf("offline, c1 in the segment per the snapshot: offline %v, %d off, want 1000", q.Offline, q.Discount)
	}
	if q := quote("c2"); q.Discount != 0 {
		t.Fatalf("offline, c2 not in the segment: %d off", q.Discount)
	}
	st, body = a1.post(t, "/v1/redeem", agent.RedeemRequest{TxnID: "vip-1", Basket: agent.Basket{Order: order("vip-1", 100_00), Customer: &protocol.Customer{ID: "c1"}}})
	if st != 200 {
		t.Fatalf("offline redeem: %d %s", st, body)
	}
	p.start(t, a1, true)
	waitFor(t, "the vip redemption at the hub", func() bool {
		var n int
		p.h.Ledger.DB().QueryRow(`SELECT COUNT(*) FROM ledger_journal WHERE tenant = 'acme' AND campaign = 'vip'`).Scan(&n)
		return n == 1
	})
	cs, err := p.h.Ledger.Conflicts(ctx, parityTenant, 0, 100)
	if err != nil || len(cs) != 0 {
		t.Fatalf("conflicts %+v %v, want none (the hub re-derives with the segments the till saw)", cs, err)
	}
	if ps, _ := p.h.Ledger.Purchases(ctx, parityTenant, "c1", 0); len(ps) != 2 {
		t.Fatalf("c1's purchases: %+v, want 2", ps)
	}
}
