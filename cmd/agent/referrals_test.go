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

// TestReferralTills (issue 12, Deliver 6, at the till; real hub,
// in-process tills over their POS APIs): an online till asks the hub about
// a referral code (the hub's guard refuses a self-referral there); an
// offline till accepts referral codes within its envelope, and the hub's
// ingest rewards the referrer once for a new referee and records a
// referral_refused conflict (no reward) for a self-referral the till could
// not see; a re-sent fact rewards nobody twice.
func TestReferralTills(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the hub and tills")
	}
	ctx := context.Background()
	p := startParityHub(t)
	c := p.h.Catalog
	doc := `{"schema":1,"id":"refer","tenant":"acme","status":"active","trigger":"code","currency":"EUR",
		"reward":{"kind":"amount_off","amount":1000},"eligibility":{"min_subtotal":5000},
		"referral":{"referrer_points":500,"max_referees":5}}`
	if _, err := c.CreateCampaign(ctx, catalog.System, parityTenant, []byte(doc)); err != nil {
		t.Fatal(err)
	}
	for _, id := range []protocol.CustomerID{"alice", "bob", "carol"} {
		if _, err := c.CreateCustomer(ctx, catalog.System, parityTenant, catalog.Customer{ID: id}); err != nil {
			t.Fatal(err)
		}
	}
	rc, err := p.h.Manage.ReferralCode(ctx, catalog.System, parityTenant, "alice", "")
	if err != nil {
		t.Fatal(err)
	}
	a1 := p.register(t, parityTenant, "till-a1", snapshot.Store{ID: "store-a", TimeZone: "Europe/Berlin"})
	p.start(t, a1, true)
	redeem := func(t *testing.T, txn string, cust protocol.CustomerID) (agent.Receipt, int, string) {
		t.Helper()
		st, body := a1.post(t, "/v1/redeem", agent.RedeemRequest{TxnID: txn, Basket: agent.Basket{
			Order:       protocol.Order{ID: txn, Currency: "EUR", Lines: []protocol.Line{{SKU: "shirt", Quantity: 1, UnitPrice: 60_00}}},
			Customer:    &protocol.Customer{ID: cust},
			Redeemables: []agent.Input{{Code: rc.Code}},
		}})
		var r agent.Receipt
		json.Unmarshal(body, &r)
		return r, st, string(body)
	}
	points := func(cu protocol.CustomerID) int64 {
		pts, err := p.h.Ledger.Points(ctx, parityTenant, cu)
		if err != nil {
			t.Fatal(err)
		}
		return pts
	}

	// Online: the hub's guard refuses alice's own code at the till.
	if _, st, body := redeem(t, "on-1", "alice"); st != 422 || !strings.Contains(body, string(protocol.CodeSelfReferral)) {
		t.Fatalf("self-referral online: %d %s", st, body)
	}
	// Offline: bob (new) and alice (her own code) are both accepted.
	p.start(t, a1, false)
	for _, c := range []struct {
		txn string
		cu  protocol.CustomerID
	}{{"off-1", "bob"}, {"off-2", "alice"}} {
		if r, st, body := redeem(t, c.txn, c.cu); st != 200 || !r.Offline {
			t.Fatalf("offline %s: %d %s", c.cu, st, body)
		}
	}
	p.start(t, a1, true)
	var kinds map[ledger.ConflictKind]int
	var refused []ledger.Conflict
	waitFor(t, "the offline facts at the hub", func() bool {
		var n int
		p.h.Ledger.DB().QueryRow(`SELECT COUNT(*) FROM ledger_journal WHERE tenant = 'acme' AND agent = 'till-a1' AND entry = 'redeem'`).Scan(&n)
		return n == 2
	})
	cs, err := p.h.Ledger.Conflicts(ctx, parityTenant, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	kinds = map[ledger.ConflictKind]int{}
	for _, c := range cs {
		kinds[c.Kind]++
		if c.Kind == ledger.ConflictReferralRefused {
			refused = append(refused, c)
		}
	}
	if len(kinds) != 1 || len(refused) != 1 || refused[0].Customer != "alice" || !strings.HasPrefix(refused[0].Detail, string(protocol.CodeSelfReferral)) {
		t.Fatalf("conflicts %+v, want one referral_refused (self_referral) of alice and nothing else (no effect_mismatch)", cs)
	}
	if got := points("alice"); got != 500 {
		t.Fatalf("alice has %d points, want 500 (bob's referral only)", got)
	}
	// The till's fact arrives again (a lost ack): nothing changes.
	var r protocol.Redemption
	var agentID, tenant, store, camp, code, cust string
	var seq int64
	if err := p.h.Ledger.DB().QueryRow(`SELECT tenant, agent, seq, store, txn_id, campaign, code, customer, discount, order_total, hlc FROM ledger_journal
		WHERE tenant = 'acme' AND agent = 'till-a1' AND entry = 'redeem' AND customer = 'bob'`).
		Scan(&tenant, &agentID, &seq, &store, &r.TxnID, &camp, &code, &cust, &r.Discount, &r.OrderTot, &r.HLC); err != nil {
		t.Fatal(err)
	}
	r.ID, r.Kind, r.Tenant, r.Store = protocol.RedemptionID{Agent: protocol.AgentID(agentID), Seq: uint64(seq)}, protocol.KindRedeem, protocol.TenantID(tenant), protocol.StoreID(store)
	r.Campaign, r.Code, r.Customer, r.Currency, r.Offline = protocol.CampaignID(camp), protocol.CodeID(code), protocol.CustomerID(cust), "EUR", true
	if _, cs, err := p.h.Ledger.ApplyBatch(ctx, parityTenant, "till-a1", []protocol.Redemption{r}); err != nil || len(cs) != 0 {
		t.Fatalf("re-sent fact: %v %v", cs, err)
	}
	if got := points("alice"); got != 500 {
		t.Fatalf("alice has %d points after the re-sent fact, want 500", got)
	}
	if rep, err := p.h.Ledger.Verify(ctx); err != nil || len(rep.Diffs) > 0 {
		t.Fatalf("verify: %v %+v", err, rep.Diffs)
	}
}
