package decide_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/protocol/decide"
	"github.com/punchcard/punchcard/protocol/rules"
)

// TestNeedsHubCatalogRewardTooFewPointsHere pins a parity defect found by
// cmd/agent TestParity (golden case CatalogRewardBurnsPoints): a till
// knows no points of the customer (0), so a catalog reward that costs
// points is refused insufficient_points there; the refusal is one the hub
// can lift, so the till must ask it (HubPoints). It did not ask, and an
// online till refused what the hub applied.
func TestNeedsHubCatalogRewardTooFewPointsHere(t *testing.T) {
	cs := []rules.Campaign{{Schema: rules.SchemaVersion, ID: "mug", Tenant: "acme", Status: rules.StatusActive, Currency: "EUR",
		Reward: rules.Reward{Kind: rules.RewardFreeItem, Target: &rules.Target{SKUs: []string{"MUG"}}}, PointsCost: 500}}
	rs, err := decide.Compile(cs)
	if err != nil {
		t.Fatal(err)
	}
	st, _ := rules.NewStore("berlin-1", "", "Europe/Berlin")
	src := &decide.Mem{Codes: map[protocol.CodeID]decide.Code{"MUG": {Key: "MUG", Campaign: "mug", MaxUses: -1}}}
	order := protocol.Order{ID: "o1", Currency: "EUR", Lines: []protocol.Line{{SKU: "MUG", Quantity: 1, UnitPrice: 12_00}}}
	out, err := decide.Decide(context.Background(), src, rs, decide.Request{Tenant: "acme", Where: decide.Where{Store: st}, Order: order,
		Customer: &protocol.Customer{ID: "c-1"}, Presented: []decide.Presented{{Code: "MUG"}}, Now: time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)})
	if err != nil {
		t.Fatal(err)
	}
	if r := out.Decision.Results[0]; r.Applied || r.Reason != protocol.CodeInsufficientPts {
		t.Fatalf("result %+v, want insufficient_points", r)
	}
	if got := out.NeedsHub(); !slices.Contains(got, decide.HubPoints) {
		t.Fatalf("needs hub %v, want %s: the hub knows the customer's points", got, decide.HubPoints)
	}
}
