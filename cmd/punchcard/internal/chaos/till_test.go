package chaos_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/punchcard/punchcard/agent"
	"github.com/punchcard/punchcard/cmd/punchcard/internal/chaos"
	"github.com/punchcard/punchcard/cmd/punchcard/internal/cluster"
	"github.com/punchcard/punchcard/cmd/punchcard/internal/netcut"
	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/protocol/rules"
)

// The soak findings of issue 11 about what a till believes, each with
// real processes: a hub, tills behind their own network links.

const (
	giftCampaign protocol.CampaignID = "gift"
	giftCard                         = "CARD-0001"
)

// waitFor polls cond until it holds or timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, state := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s (%s)", what, timeout, state)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// cardLeft is what the till says it would take from the card for an
// order larger than any balance: what it believes is left.
func cardLeft(ctx context.Context, a *cluster.StoreAgent) (int64, error) {
	q, err := a.POS.Validate(ctx, agent.Basket{
		Order:       protocol.Order{Currency: chaos.Currency, Lines: []protocol.Line{{SKU: "tv", Quantity: 1, UnitPrice: 1000_00}}},
		Redeemables: []agent.Input{{Code: giftCard}},
	})
	if err != nil {
		return 0, err
	}
	for _, o := range q.Results {
		if o.Applied {
			return o.Spend, nil
		}
	}
	return 0, nil
}

// nudge changes the catalog, so every till fetches a snapshot delta now
// (with the code figures changed since its last one) instead of at its
// next poll.
func nudge(t *testing.T, e *chaos.Env, n int) {
	t.Helper()
	c := rules.Campaign{Schema: rules.SchemaVersion, ID: protocol.CampaignID(fmt.Sprintf("nudge-%d", n)), Tenant: chaos.Tenant, Currency: chaos.Currency,
		Status: rules.StatusActive, Reward: rules.Reward{Kind: rules.RewardAmountOff, Amount: 1}}
	if _, err := e.Admin.CreateCampaign(context.Background(), c); err != nil {
		t.Fatal(err)
	}
}

// TestLoneTillGiftCardOverdraft: a card of 100.00; this till spent 1.00
// (synced), then 90.00 was spent online (the web shop, or another till
// whose facts reached the hub); this till, then cut off, may take the
// 9.00 left and no more. Before issue 11 the till took max(its own
// spending, the hub's figure) as spent and accepted 5 × 9.00.
func TestLoneTillGiftCardOverdraft(t *testing.T) {
	e := chaos.Setup(t, 1, 0, "")
	ctx := context.Background()
	till := e.Agents[0]
	gift := rules.Campaign{Schema: rules.SchemaVersion, ID: giftCampaign, Tenant: chaos.Tenant, Currency: chaos.Currency, Status: rules.StatusActive,
		Reward: rules.Reward{Kind: rules.RewardGiftCard, MultiUse: true}}
	if _, err := e.Admin.CreateCampaign(ctx, gift); err != nil {
		t.Fatal(err)
	}
	if err := e.Admin.ImportCodes(ctx, chaos.Tenant, giftCampaign, []string{giftCard}, cluster.CodeSpec{Uses: -1, Balance: 100_00}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, time.Minute, "the till knows the card", func() (bool, string) {
		left, err := cardLeft(ctx, till)
		return err == nil && left == 100_00, fmt.Sprint(left, err)
	})
	// The till spends 1.00 itself first, so that it has its own synced
	// spending too (the hub's figure counts it: it must not count twice).
	if _, _, err := e.RedeemCodeSpend(ctx, till, giftCard, 1_00); err != nil {
		t.Fatal(err)
	}
	e.Drain(ctx, time.Minute)
	if _, err := e.Admin.Redeem(ctx, chaos.Tenant, "web-90", cluster.OnlineRequest{
		Store:       cluster.OnlineStore{ID: "web", TimeZone: "Europe/Berlin"},
		Order:       protocol.Order{ID: "web-order", Currency: chaos.Currency, Lines: []protocol.Line{{SKU: "tv", Quantity: 1, UnitPrice: 90_00}}},
		Redeemables: []cluster.Presented{{Code: giftCard, Amount: 90_00}},
	}); err != nil {
		t.Fatal(err)
	}
	nudge(t, e, 1)
	waitFor(t, time.Minute, "the till learns of the online spending", func() (bool, string) {
		left, err := cardLeft(ctx, till)
		return err == nil && left == 9_00, fmt.Sprint(left, err)
	})

	till.Cut(netcut.Reset)
	waitFor(t, time.Minute, "the till notices it is offline", func() (bool, string) {
		st, err := till.POS.Status(ctx)
		return err == nil && !st.Online, fmt.Sprint(st.Online, err)
	})
	accepted, spent := 0, int64(0)
	for range 5 {
		_, o, err := e.RedeemCodeSpend(ctx, till, giftCard, 9_00)
		switch o {
		case chaos.Accepted:
			accepted++
			spent += 9_00
		case chaos.Refused:
			if got, want := cluster.Code(err), protocol.CodeInsufficientFunds; got != want {
				t.Fatalf("offline spend refused with %v, want %s", err, want)
			}
		default:
			t.Fatal(err)
		}
	}
	if accepted != 1 {
		t.Fatalf("offline, the till accepted %d × 9.00 (%d) from a card with 9.00 left", accepted, spent)
	}
	till.Heal()
	e.Drain(ctx, time.Minute)
	cs, err := e.Admin.Code(ctx, chaos.Tenant, giftCard)
	if err != nil {
		t.Fatal(err)
	}
	if cs.Remaining == nil || *cs.Remaining != 0 {
		t.Fatalf("remaining balance at the hub = %v, want 0", cs.Remaining)
	}
}
