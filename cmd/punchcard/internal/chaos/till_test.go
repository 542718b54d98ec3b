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
	"github.com/punchcard/punchcard/internal/testutil"
	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/protocol/rules"
)

// The soak findings of issue 11 about what a till believes, each with
// real processes: a hub, tills behind their own network links.

const (
	giftCampaign protocol.CampaignID = "gift"
	giftCard     string              = "CARD-0001"
)

// waitFor polls cond until it holds, for at least timeout and as long as
// the test binary may run (testutil.Patience): a loaded machine slows a
// test down without failing it.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	if err := testutil.AwaitFor(max(timeout, testutil.Patience(t)), what, cond); err != nil {
		t.Fatal(err)
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
//
// The till never asks the hub online first here (-online-timeout < 0): what
// it learns of the online spending must come from its snapshot, which is
// what it decides with once cut off (a validate asked online first would
// show the hub's figure before the snapshot has it).
func TestLoneTillGiftCardOverdraft(t *testing.T) {
	e := chaos.SetupWith(t, 1, 0, cluster.Options{AgentArgs: []string{"-online-timeout=-1ns"}})
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

// allowanceOf is the till's own view of its allowance of campaign.
func allowanceOf(ctx context.Context, a *cluster.StoreAgent, campaign protocol.CampaignID) (grant uint64, left int64, err error) {
	st, err := a.POS.Status(ctx)
	if err != nil {
		return 0, 0, err
	}
	for _, al := range st.Allowances {
		if al.Campaign == campaign {
			return al.Grant, al.Count, nil
		}
	}
	return 0, 0, nil
}

// TestLostGrantAnswer: the till's request for more allowance reaches the
// hub, which grants, and the answer is lost (dropped on the way back).
// The hub then counts the grant as held by a till that has none of it;
// the till, out of allowance, refuses allowance_exhausted. Once the link
// is back, the till gets that same grant (its retry carries the same
// request id; the snapshot carries the hub's view of its grants) without
// a restart, and the hub's view of its escrow and the till's converge.
// Before issue 11 the retry got a zero grant reusing the last grant
// number and the till stayed locked out.
//
// Twice, in an order the test makes happen (under load it went either
// way, and a CI run waited 17 min for a grant that was never asked for):
//
//   - "facts first": the hub has the till's sales but the last two when
//     the answers start being lost, so the background request at the
//     low-water mark (the next sale) is granted (the hub sees at most two
//     of the minimum grant of 5 outstanding), and that grant is what is
//     lost.
//   - "request first": the sales' facts are held back (the till's MQTT
//     link blackholed while it sells), so that request reaches the hub
//     before any of them and is granted nothing; the till, whose HTTP
//     requests now time out, counts itself offline and asks no more until
//     the link is back: the hub holds nothing for it meanwhile.
func TestLostGrantAnswer(t *testing.T) {
	for _, tc := range []struct {
		name      string
		factsLate bool
	}{{"facts first", false}, {"request first", true}} {
		t.Run(tc.name, func(t *testing.T) { lostGrantAnswer(t, tc.factsLate) })
	}
}

func lostGrantAnswer(t *testing.T, factsLate bool) {
	e := chaos.Setup(t, 1, 1000, "")
	ctx := context.Background()
	till := e.Agents[0]
	waitFor(t, time.Minute, "the first grant", func() (bool, string) {
		g, left, err := allowanceOf(ctx, till, chaos.Campaign)
		return err == nil && g == 1 && left > 0, fmt.Sprint(g, left, err)
	})
	_, first, _ := allowanceOf(ctx, till, chaos.Campaign)
	if first < 3 {
		t.Fatalf("a first grant of %d: the test needs two sales above the low-water mark", first)
	}
	sold := 0
	sell := func(n int64) {
		t.Helper()
		for range n {
			_, o, err := e.Redeem(ctx, till)
			if o != chaos.Accepted {
				t.Fatalf("sale %d of an allowance of %d: %v", sold+1, first, err)
			}
			sold++
		}
	}
	hubHasSales := func() {
		t.Helper()
		waitFor(t, time.Minute, "the hub has every sale", func() (bool, string) {
			cs, err := e.Admin.Campaign(ctx, chaos.Tenant, chaos.Campaign)
			return err == nil && cs.Used != nil && cs.Used.Count == int64(sold), fmt.Sprint(cs.Used, err)
		})
	}
	if !factsLate {
		// Down to two above the low-water mark (a quarter of the
		// grant), with the link up and nothing asked yet.
		sell(first - 2)
		hubHasSales()
	} else {
		till.MQTT.Cut(netcut.Blackhole)
	}
	till.HTTP.Cut(netcut.DropReplies)
	// Sell the rest: at the low-water mark the till asks for more in the
	// background; the hub grants (or, without the sales, grants
	// nothing), the answer is lost.
	sell(first - int64(sold))
	if factsLate {
		till.MQTT.Heal()
	}
	hubHasSales()
	// Out of allowance, the till refuses: its background request holds
	// its turn at asking until that request times out, and then it counts
	// the hub unreachable.
	if _, o, err := e.Redeem(ctx, till); o != chaos.Refused || cluster.Code(err) != protocol.CodeAllowanceExhausted {
		t.Fatalf("with its grant lost the till answered %v %v, want allowance_exhausted", o, err)
	}
	if factsLate {
		if cs, err := e.Admin.Campaign(ctx, chaos.Tenant, chaos.Campaign); err != nil || cs.Used == nil || cs.Used.ReservedCount != 0 {
			t.Fatalf("the hub granted a request made before it had the sales: %+v %v", cs.Used, err)
		}
	} else {
		waitFor(t, time.Minute, "the hub grants the till more", func() (bool, string) {
			// What the hub holds reserved for the till beyond the
			// one sale's worth it had left: a new grant.
			cs, err := e.Admin.Campaign(ctx, chaos.Tenant, chaos.Campaign)
			return err == nil && cs.Used != nil && cs.Used.Count == int64(sold) && cs.Used.ReservedCount > 1, fmt.Sprint(cs.Used, err)
		})
	}
	if g, left, err := allowanceOf(ctx, till, chaos.Campaign); err != nil || g != 1 || left != 0 {
		t.Fatalf("the till got the lost answer after all: grant %d, %d left, %v", g, left, err)
	}

	till.HTTP.Heal()
	waitFor(t, time.Minute, "the till gets its share back without a restart", func() (bool, string) {
		g, left, err := allowanceOf(ctx, till, chaos.Campaign)
		return err == nil && g >= 2 && left > 0, fmt.Sprint(g, left, err)
	})
	if _, o, err := e.Redeem(ctx, till); o != chaos.Accepted {
		t.Fatalf("after recovering its share: %v", err)
	}
	e.Drain(ctx, time.Minute)
	// The campaign's escrow (what the hub holds reserved for tills: one
	// till here) is what the till holds: no grant stranded at the hub.
	waitFor(t, 30*time.Second, "the campaign's reserve and the till's allowance converge", func() (bool, string) {
		cs, err := e.Admin.Campaign(ctx, chaos.Tenant, chaos.Campaign)
		_, left, terr := allowanceOf(ctx, till, chaos.Campaign)
		return err == nil && terr == nil && cs.Used != nil && cs.Used.ReservedCount == left,
			fmt.Sprintf("hub %+v, till left %d %v %v", cs.Used, left, err, terr)
	})
	waitFor(t, time.Minute, "the hub's view of the till's escrow and the till's converge", func() (bool, string) {
		es, err := e.Admin.Escrow(ctx, chaos.Tenant, till.ID)
		g, left, terr := allowanceOf(ctx, till, chaos.Campaign)
		return err == nil && terr == nil && len(es) == 1 && es[0].Grant == g && es[0].Count == left,
			fmt.Sprintf("hub %+v, till grant %d left %d %v %v", es, g, left, err, terr)
	})
}

// TestHTTPCutMQTTUp: the till's HTTP link to the hub is cut while its MQTT
// session stays up. The till is not online (it cannot ask the hub what it
// must); its status says which part is down; it decides locally inside its
// risk envelope and marks those decisions offline. Before issue 11
// "online" meant the MQTT session only, and the till kept selling as
// online from an ever older snapshot.
func TestHTTPCutMQTTUp(t *testing.T) {
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
	waitFor(t, time.Minute, "the till knows the card, online", func() (bool, string) {
		left, err := cardLeft(ctx, till)
		st, serr := till.POS.Status(ctx)
		return err == nil && serr == nil && left == 100_00 && st.Online, fmt.Sprint(left, err, st.Online, serr)
	})

	till.HTTP.Cut(netcut.Reset)
	waitFor(t, time.Minute, "the till reports MQTT up, HTTP down, not online", func() (bool, string) {
		st, err := till.POS.Status(ctx)
		if err != nil || st.Link == nil {
			return false, fmt.Sprint(st.Link, err)
		}
		return st.Link.MQTT.Up && !st.Link.HTTP.Up && !st.Online, fmt.Sprintf("%+v online=%v", *st.Link, st.Online)
	})
	st, _ := till.POS.Status(ctx)
	if st.Link.HTTP.Error == "" {
		t.Errorf("the HTTP part is down without saying why: %+v", st.Link.HTTP)
	}
	// A single-use code, not bound to the store, worth 2.00: decided on
	// the till, inside the envelope, and marked offline.
	rc, err := till.POS.Redeem(ctx, agent.RedeemRequest{TxnID: "http-cut-1", Basket: agent.Basket{
		Order:       protocol.Order{Currency: chaos.Currency, Lines: []protocol.Line{{SKU: "coffee", Quantity: 1, UnitPrice: 3_50}}},
		Redeemables: []agent.Input{{Code: chaos.OnceCode}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if !rc.Offline {
		t.Fatalf("a sale decided without the hub's API is marked online: %+v", rc)
	}
	// 60.00 from the card is more than the envelope lets one offline
	// redemption give (50.00 by default).
	_, o, err := e.RedeemCodeSpend(ctx, till, giftCard, 60_00)
	if o != chaos.Refused || cluster.Code(err) != protocol.CodeOfflineCap {
		t.Fatalf("60.00 from a gift card with the hub's API cut: %v %v, want %s", o, err, protocol.CodeOfflineCap)
	}

	till.HTTP.Heal()
	waitFor(t, time.Minute, "online again", func() (bool, string) {
		st, err := till.POS.Status(ctx)
		return err == nil && st.Online && st.Link != nil && st.Link.HTTP.Up, fmt.Sprint(st.Link, err)
	})
	e.Drain(ctx, time.Minute)
}

// TestStaleSnapshotNotOnline: with both links up, a snapshot the hub has
// not confirmed within the online age limit (-online-max-age) makes the
// till decide offline, and its status says the snapshot is the reason.
func TestStaleSnapshotNotOnline(t *testing.T) {
	e := chaos.SetupWith(t, 1, 0, cluster.Options{AgentArgs: []string{"-poll-every", "1h", "-online-max-age", "3s"}})
	ctx := context.Background()
	till := e.Agents[0]
	waitFor(t, time.Minute, "the snapshot ages past the limit", func() (bool, string) {
		st, err := till.POS.Status(ctx)
		if err != nil || st.Link == nil {
			return false, fmt.Sprint(err)
		}
		return st.Link.MQTT.Up && st.Link.HTTP.Up && !st.Link.Snapshot.Fresh && !st.Online, fmt.Sprintf("%+v online=%v", *st.Link, st.Online)
	})
	rc, err := till.POS.Redeem(ctx, agent.RedeemRequest{TxnID: "stale-1", Basket: agent.Basket{
		Order:       protocol.Order{Currency: chaos.Currency, Lines: []protocol.Line{{SKU: "coffee", Quantity: 1, UnitPrice: 3_50}}},
		Redeemables: []agent.Input{{Code: chaos.Code}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if !rc.Offline {
		t.Fatalf("decided from a stale snapshot, marked online: %+v", rc)
	}
	// A catalog change is announced and pulled: fresh, online again.
	nudge(t, e, 1)
	waitFor(t, time.Minute, "fresh again after the announced change", func() (bool, string) {
		st, err := till.POS.Status(ctx)
		return err == nil && st.Online, fmt.Sprint(err)
	})
}
