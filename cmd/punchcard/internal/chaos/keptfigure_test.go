package chaos_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/punchcard/punchcard/cmd/punchcard/internal/chaos"
	"github.com/punchcard/punchcard/cmd/punchcard/internal/cluster"
	"github.com/punchcard/punchcard/cmd/punchcard/internal/netcut"
	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/protocol/rules"
)

// TestOnlineFigureKept: a card of 100.00, of which 91.00 was spent
// online (the web shop); the till's snapshot still says 100.00 left (it
// polls once an hour here and no catalog change announces a new one).
// The till validates the card online first: the hub says 9.00 left, with
// which of the till's facts that figure counts. Then the till is cut off.
// It keeps the hub's figure until a newer snapshot supersedes it, so it
// takes the 9.00 once and refuses the rest. Without the kept figure it
// decided with its snapshot's 100.00 and accepted 5 × 9.00.
func TestOnlineFigureKept(t *testing.T) {
	e := chaos.SetupWith(t, 1, 0, cluster.Options{AgentArgs: []string{"-poll-every=1h"}})
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
	waitFor(t, time.Minute, "the till knows the card and is online", func() (bool, string) {
		left, err := cardLeft(ctx, till)
		st, serr := till.POS.Status(ctx)
		return err == nil && serr == nil && left == 100_00 && st.Online, fmt.Sprint(left, err, serr)
	})
	if _, err := e.Admin.Redeem(ctx, chaos.Tenant, "web-91", cluster.OnlineRequest{
		Store:       cluster.OnlineStore{ID: "web", TimeZone: "Europe/Berlin"},
		Order:       protocol.Order{ID: "web-order", Currency: chaos.Currency, Lines: []protocol.Line{{SKU: "tv", Quantity: 1, UnitPrice: 91_00}}},
		Redeemables: []cluster.Presented{{Code: giftCard, Amount: 91_00}},
	}); err != nil {
		t.Fatal(err)
	}
	// Online first: the validate asks the hub, whose figure counts the
	// web shop's 91.00.
	if left, err := cardLeft(ctx, till); err != nil || left != 9_00 {
		t.Fatalf("online, the till says %d left (%v), want the hub's 900", left, err)
	}

	till.Cut(netcut.Reset)
	waitFor(t, time.Minute, "the till notices it is offline", func() (bool, string) {
		st, err := till.POS.Status(ctx)
		return err == nil && !st.Online, fmt.Sprint(st.Online, err)
	})
	accepted := 0
	for range 5 {
		_, o, err := e.RedeemCodeSpend(ctx, till, giftCard, 9_00)
		switch o {
		case chaos.Accepted:
			accepted++
		case chaos.Refused:
			if got, want := cluster.Code(err), protocol.CodeInsufficientFunds; got != want {
				t.Fatalf("offline spend refused with %v, want %s", err, want)
			}
		default:
			t.Fatal(err)
		}
	}
	if accepted != 1 {
		t.Fatalf("offline after the hub said 9.00 left, the till accepted %d × 9.00", accepted)
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
