package chaos_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/punchcard/punchcard/agent"
	"github.com/punchcard/punchcard/cmd/punchcard/internal/chaos"
	"github.com/punchcard/punchcard/protocol"
)

// slowHubDelay holds the hub's HTTP answers to the till: longer than the
// till's online-first wait (-online-timeout, 300 ms by default) and
// shorter than its health probe's (5 s), so the link stays up as far as
// MQTT and the probe know, and only the online-first answer is too late.
const slowHubDelay = 2 * time.Second

// TestSlowHubOnlineFirst: the link is up but the hub answers the till's
// HTTP too slowly. A sale that asks online first (a single-use code) does
// not wait for the answer: within -online-timeout the till decides on its
// own path, inside its envelope, marked offline and without a hub
// reference; the fact reaches the hub once, with no conflict, although the
// hub did see (and hold for) the late authorisation.
func TestSlowHubOnlineFirst(t *testing.T) {
	e := chaos.Setup(t, 1, 0, "")
	ctx := context.Background()
	till := e.Agents[0]
	waitFor(t, time.Minute, "the till online", func() (bool, string) {
		st, err := till.POS.Status(ctx)
		return err == nil && st.Online, fmt.Sprint(err)
	})

	till.HTTP.Delay(slowHubDelay)
	st, err := till.POS.Status(ctx)
	if err != nil || !st.Online || st.Link == nil || !st.Link.MQTT.Up {
		t.Fatalf("before the sale the till should still believe it is online: %+v %v", st, err)
	}
	start := time.Now()
	rc, err := till.POS.Redeem(ctx, agent.RedeemRequest{TxnID: "slow-hub-1", Basket: agent.Basket{
		Order:       protocol.Order{Currency: chaos.Currency, Lines: []protocol.Line{{SKU: "coffee", Quantity: 1, UnitPrice: 3_50}}},
		Redeemables: []agent.Input{{Code: chaos.OnceCode}},
	}})
	took := time.Since(start)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("redeem with the hub's answers %s late took %s (not asserted; the till waits -online-timeout)", slowHubDelay, took)
	if !rc.Offline {
		t.Fatalf("a sale whose online-first answer came too late is marked online: %+v", rc)
	}
	if rc.Quote != nil && rc.Quote.HubRef != "" {
		t.Fatalf("a sale decided without the hub's answer carries a hub reference: %+v", rc.Quote)
	}
	if len(rc.Facts) != 1 || rc.Facts[0].Code == "" {
		t.Fatalf("receipt = %+v, want the single-use code redeemed", rc)
	}
	if st, err := till.POS.Status(ctx); err == nil && st.Link != nil && !st.Link.MQTT.Up {
		t.Fatalf("the MQTT session went down during a slow HTTP answer: %+v", *st.Link)
	}

	till.HTTP.Delay(0)
	waitFor(t, time.Minute, "online again, the fact synced", func() (bool, string) {
		st, err := till.POS.Status(ctx)
		return err == nil && st.Online && st.OutboxDepth == 0, fmt.Sprint(err)
	})
	// The code is the hub's now: asked online first, the till's next sale
	// of it is refused.
	_, o, err := e.RedeemCode(ctx, till, chaos.OnceCode)
	if o != chaos.Refused {
		t.Fatalf("the single-use code again after sync: %v %v, want refused", o, err)
	}
	cs, err := e.Admin.Conflicts(ctx, chaos.Tenant)
	if err != nil {
		t.Fatal(err)
	}
	if len(cs) != 0 {
		t.Fatalf("conflicts after a slow online-first sale: %v", cs)
	}
	e.Drain(ctx, time.Minute)
}
