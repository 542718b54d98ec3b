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

// TestPointsStatementOfflineTill: points earned at the hub are spent at
// an offline till on a points statement (POST …/points-statement, POS
// points_statement) and reconciled when the till comes back: without a
// statement the offline till still refuses insufficient_points; another
// customer's statement is statement_wrong_customer; the till spends at
// most the statement's points against its serial; the hub's balance and
// lots are right with no conflict. When another channel spent the points
// meanwhile, the hub records the till's burn and flags points_overdrawn.
func TestPointsStatementOfflineTill(t *testing.T) {
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
	for _, id := range []protocol.CustomerID{"c1", "c2", "c3"} {
		if _, err := c.CreateCustomer(ctx, catalog.System, parityTenant, catalog.Customer{ID: id}); err != nil {
			t.Fatal(err)
		}
	}
	store := snapshot.Store{ID: "berlin-1", TimeZone: "Europe/Berlin"}
	st := &stager{p: p}
	if got := st.earnTo(t, parityTenant, store, "c1", 500); got != 500 {
		t.Fatalf("earned %d points, want 500", got)
	}
	for _, cu := range []protocol.CustomerID{"c2", "c3"} {
		if got := st.earnTo(t, parityTenant, store, cu, 300); got != 300 {
			t.Fatalf("earned %d points, want 300", got)
		}
	}
	statement := func(cu protocol.CustomerID, body any) (string, int64) {
		t.Helper()
		status, b := p.post(t, parityTenant, "/customers/"+string(cu)+"/points-statement", body, "")
		var out struct {
			Statement string `json:"statement"`
			Points    int64  `json:"points"`
			QR        string `json:"qr_png"`
		}
		if err := json.Unmarshal(b, &out); status != 201 || err != nil || out.Statement == "" || out.QR == "" {
			t.Fatalf("points statement: %d %s", status, b)
		}
		return out.Statement, out.Points
	}
	s1, n1 := statement("c1", map[string]any{"points": 400})
	s2, n2 := statement("c2", nil)
	if n1 != 400 || n2 != 300 {
		t.Fatalf("statements of %d and %d points, want 400 and 300", n1, n2)
	}

	s3, _ := statement("c3", nil)
	st.online(t, "/redeem", parityTenant, store, &protocol.Customer{ID: "c3"}, priorOrder(10_00), map[string]any{"campaign": "loyal", "amount": 2_50})

	tl := p.register(t, parityTenant, "till-1", store)
	p.start(t, tl, true) // the snapshot, with the tenant's keys
	// Online, the statement is not read: the hub's balance decides (c3
	// spent 250 of the 300 stated, so a burn of 200 is refused).
	{
		o := protocol.Order{ID: "online-c3", Currency: "EUR", Lines: []protocol.Line{{SKU: "shoe", Quantity: 1, UnitPrice: 80_00}}}
		status, body := tl.post(t, "/v1/redeem", agent.RedeemRequest{TxnID: "online-c3", Basket: agent.Basket{Order: o, Customer: &protocol.Customer{ID: "c3"},
			Statement: s3, Redeemables: []agent.Input{{Campaign: "loyal", Amount: 2_00}}}})
		if status == 200 || !strings.Contains(string(body), string(protocol.CodeInsufficientPts)) || !strings.Contains(string(body), `"offline":false`) {
			t.Fatalf("online burn above the hub's balance with a statement: %d %s, want insufficient_points online", status, body)
		}
	}
	p.start(t, tl, false)
	order := protocol.Order{Currency: "EUR", Lines: []protocol.Line{{SKU: "shoe", Quantity: 1, UnitPrice: 80_00}}}
	earned := map[protocol.CustomerID]int64{}
	redeem := func(txn string, cu protocol.CustomerID, stmt string, pts int64) (int, agent.Receipt, []byte) {
		t.Helper()
		o := order
		o.ID = txn
		b := agent.Basket{Order: o, Statement: stmt, Redeemables: []agent.Input{{Campaign: "loyal", Amount: pts}}}
		if cu != "" {
			b.Customer = &protocol.Customer{ID: cu}
		}
		status, body := tl.post(t, "/v1/redeem", agent.RedeemRequest{TxnID: txn, Basket: b})
		var rc agent.Receipt
		json.Unmarshal(body, &rc)
		if status == 200 {
			if cu == "" {
				cu = "c1"
			}
			earned[cu] += rc.Points
		}
		return status, rc, body
	}
	refused := func(what string, status int, body []byte, code protocol.Code) {
		t.Helper()
		if status == 200 || !strings.Contains(string(body), string(code)) {
			t.Fatalf("%s: %d %s, want %s", what, status, body, code)
		}
	}
	status, _, body := redeem("no-stmt", "c1", "", 1_00)
	refused("offline without a statement", status, body, protocol.CodeInsufficientPts)
	status, _, body = redeem("other-cust", "c2", s1, 1_00)
	refused("c1's statement for c2", status, body, protocol.CodeStatementCustomer)
	status, _, body = redeem("damaged", "c1", s1[:len(s1)-4], 1_00)
	refused("a damaged statement", status, body, protocol.CodeTokenTruncated)

	status, rc, body := redeem("burn-1", "c1", s1, 3_00)
	if status != 200 || !rc.Offline || rc.Quote == nil || rc.Quote.Paid != 3_00 {
		t.Fatalf("offline burn on a statement: %d %s", status, body)
	}
	status, _, body = redeem("burn-2", "c1", s1, 2_00)
	refused("past the statement", status, body, protocol.CodeInsufficientPts)
	status, rc, body = redeem("burn-3", "", s1, 1_00) // the statement names the customer
	if status != 200 || !rc.Offline {
		t.Fatalf("the rest of the statement: %d %s", status, body)
	}
	status, _, body = redeem("burn-4", "c1", s1, 1)
	refused("the statement spent", status, body, protocol.CodeInsufficientPts)

	// Meanwhile, c2 spends 200 of their 300 points online at the hub.
	hubEarned := st.online(t, "/redeem", parityTenant, store, &protocol.Customer{ID: "c2"}, priorOrder(10_00), map[string]any{"campaign": "loyal", "amount": 2_00}).Earned
	status, rc, body = redeem("burn-c2", "c2", s2, 3_00)
	if status != 200 || !rc.Offline {
		t.Fatalf("offline burn of c2's stated 300: %d %s", status, body)
	}

	p.start(t, tl, true)
	want1 := 500 - 400 + earned["c1"]
	want2 := 300 - 200 - 300 + earned["c2"] + hubEarned
	waitFor(t, "the burns in the hub's ledger", func() bool {
		n1, err1 := p.h.Ledger.Points(ctx, parityTenant, "c1")
		n2, err2 := p.h.Ledger.Points(ctx, parityTenant, "c2")
		return err1 == nil && err2 == nil && n1 == want1 && n2 == want2
	})
	cs, err := p.h.Ledger.Conflicts(ctx, parityTenant, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(cs) != 1 || cs[0].Kind != ledger.ConflictPointsOverdrawn || cs[0].Redemption.Agent != "till-1" {
		t.Fatalf("conflicts %+v, want one points_overdrawn of the till's burn for c2", cs)
	}
	lots, err := p.h.Ledger.PointsLots(ctx, parityTenant, "c1")
	if err != nil {
		t.Fatal(err)
	}
	var live int64
	for _, l := range lots {
		if l.Debt {
			t.Fatalf("c1 has a debt lot: %+v", lots)
		}
		live += l.Remaining
	}
	if live != want1 {
		t.Fatalf("c1's lots hold %d, balance %d", live, want1)
	}
	if rep, err := p.h.Ledger.Verify(ctx); err != nil || !rep.OK() {
		t.Fatalf("verify: %+v %v", rep, err)
	}
}
