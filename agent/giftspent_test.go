package agent_test

import (
	"context"
	"testing"

	"github.com/punchcard/punchcard/agent"
	"github.com/punchcard/punchcard/agent/agenttest"
	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/protocol/snapshot"
)

// The hub's snapshot says how much of a gift card other tills already
// spent (Code.Spent); the till must not offer more than what is left.
func TestGiftCardHubSpent(t *testing.T) {
	snap := agenttest.Small(1, 10)
	snap.Codes = append(snap.Codes, snapshot.Code{Code: "GIFT2", Campaign: agenttest.CampGift, Uses: -1,
		Balance: &protocol.Money{Amount: 50_00, Currency: "EUR"}, Spent: 45_00})
	e := newEnv(t, snap)
	e.link.on.Store(true)
	b := agent.Basket{Order: agenttest.Order("o1", 100_00), Redeemables: []agent.Input{{Code: "GIFT2", Amount: 20_00}}}
	if r := e.post(t, "/v1/validate", b); r.code() != string(protocol.CodeInsufficientFunds) {
		t.Fatalf("20.00 of a card with 5.00 left: %s", r.Raw)
	}
	b.Redeemables[0].Amount = 5_00
	r := e.post(t, "/v1/redeem", redeem("t1", b))
	if r.Status != 200 {
		t.Fatalf("5.00 of a card with 5.00 left: %d %s", r.Status, r.Raw)
	}
	// Once the hub has the till's 5.00 too, its Spent is 50.00 and the
	// snapshot says it counts the till's fact (Reflected): the till adds
	// only its own spending the figure does not count, so the 5.00 counts
	// once and nothing is left (agentdb.CodeFigure; never a max).
	snap2 := agenttest.Small(2, 10)
	snap2.Reflected = &snapshot.Reflected{Watermark: 1}
	snap2.Codes = append(snap2.Codes, snapshot.Code{Code: "GIFT2", Campaign: agenttest.CampGift, Uses: -1,
		Balance: &protocol.Money{Amount: 50_00, Currency: "EUR"}, Spent: 50_00})
	if _, err := e.a.ApplySnapshot(context.Background(), agenttest.Encode(t, snap2), "e2"); err != nil {
		t.Fatal(err)
	}
	b.Redeemables[0].Amount = 1
	if r := e.post(t, "/v1/validate", b); r.code() != string(protocol.CodeInsufficientFunds) {
		t.Fatalf("after the hub counted all 50.00: %s", r.Raw)
	}
}
