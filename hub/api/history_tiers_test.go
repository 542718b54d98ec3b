package api_test

import (
	"context"
	"fmt"
	"net/url"
	"testing"
	"time"

	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/store/catalog"
	"github.com/punchcard/punchcard/store/ledger"
)

// tierEntry is the activity entry as a client reads it, with a
// tier_changed entry's change.
type tierEntry struct {
	ID         int64                 `json:"id"`
	Entry      string                `json:"entry"`
	Redemption protocol.RedemptionID `json:"redemption"`
	Tier       *struct {
		From   string                 `json:"from"`
		To     string                 `json:"to"`
		Reason string                 `json:"reason"`
		Fact   *protocol.RedemptionID `json:"fact"`
	} `json:"tier"`
}

type tierHistory struct {
	Activity []tierEntry `json:"activity"`
	Next     string      `json:"next_cursor"`
}

// TestHistoryTierChanges is issue 12 Deliver 7's "a customer's full
// history (redemptions, points lots and movements, tier changes)": the
// activity page holds the customer's tier changes as tier_changed entries
// (from, to, why, the fact that caused an upgrade), each in its place:
// an upgrade right after (newer than) the fact that earned it, the
// review's downgrade after what the hub had when it ran. Paged with small
// limits, every entry comes once, in the one page's order, and the
// cursor ends. On the code before, there are no tier entries.
func TestHistoryTierChanges(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	mk, sup := e.keys[catalog.RoleMarketer], e.keys[catalog.RoleSupport]
	e.wantJSON(e.do("PUT", "/v1/tenants/acme/tier-program", mk, map[string]any{
		"tiers":   []any{map[string]any{"name": "silver", "min": 100}, map[string]any{"name": "gold", "min": 300}},
		"measure": "points", "window": map[string]any{"kind": "rolling", "days": 30}, "grace_days": 1}), 200, nil)
	e.wantJSON(e.do("POST", "/v1/tenants/acme/campaigns", mk, campaignDoc("spring", "active", percent10, "")), 201, nil)
	e.wantJSON(e.do("POST", "/v1/tenants/acme/customers", sup, map[string]any{"id": "c1"}), 201, nil)
	seq := uint64(0)
	fact := func(kind protocol.RedemptionKind, points int64) protocol.RedemptionID {
		seq++
		r := protocol.Redemption{ID: protocol.RedemptionID{Agent: "till-1", Seq: seq}, Kind: kind, Tenant: "acme", Store: "berlin-1",
			TxnID: fmt.Sprintf("t%d", seq), Customer: "c1", OrderID: fmt.Sprintf("pos-%d", seq), Currency: "EUR", OrderTot: 50_00,
			HLC: ledger.HLCFromTime(e.clk.Now()), Offline: true}
		if kind == protocol.KindEarn {
			r.Points = points
		} else {
			r.Campaign, r.Discount = "spring", 500
		}
		if _, _, err := e.led.ApplyBatch(ctx, "acme", "till-1", []protocol.Redemption{r}); err != nil {
			t.Fatal(err)
		}
		e.clk.Add(time.Minute)
		return r.ID
	}
	adjust := func(key string, points int64) {
		e.wantJSON(e.do("POST", "/v1/tenants/acme/customers/c1/points-adjustments", sup,
			map[string]any{"points": points, "reason": "goodwill"}, "Idempotency-Key", key), 201, nil)
		e.clk.Add(time.Minute)
	}
	fact(protocol.KindRedeem, 0)
	toSilver := fact(protocol.KindEarn, 150)
	fact(protocol.KindRedeem, 0)
	toGold := fact(protocol.KindEarn, 200)
	adjust("a1", 40)
	adjust("a2", -30)
	// The window passes with nothing earned: the review lowers c1.
	e.clk.Add(40 * 24 * time.Hour)
	if low, err := e.led.ReviewTiers(ctx, e.clk.Now()); err != nil || low == 0 {
		t.Fatalf("review: %d lowered (%v)", low, err)
	}
	last := fact(protocol.KindRedeem, 0)
	adjust("a3", 10)

	var all tierHistory
	e.wantJSON(e.do("GET", "/v1/tenants/acme/customers/c1/history?limit=200", sup, nil), 200, &all)
	if all.Next != "" {
		t.Fatalf("one page has a next cursor %q", all.Next)
	}
	// Where each tier change stands (newest first): the upgrade before
	// (newer than) its fact, the downgrade between the last adjustment
	// before the review and the redeem after it.
	var tiers []int
	for i, a := range all.Activity {
		if a.Entry == "tier_changed" {
			tiers = append(tiers, i)
		}
	}
	if len(tiers) < 3 {
		t.Fatalf("%d tier changes in the history, want an upgrade to silver, to gold and a downgrade: %+v", len(tiers), all.Activity)
	}
	at := func(i int) tierEntry { return all.Activity[i] }
	down, gold, silver := tiers[0], tiers[len(tiers)-2], tiers[len(tiers)-1]
	if d := at(down); d.Tier == nil || d.Tier.Reason != "downgrade" || d.Tier.From != "gold" || d.Tier.Fact != nil ||
		down == 0 || at(down-1).Redemption != last || at(down+1).Entry != "points_adjusted" {
		t.Fatalf("downgrade at %d: %+v", down, all.Activity)
	}
	for _, u := range []struct {
		i      int
		to     string
		fact   protocol.RedemptionID
		before string
	}{{gold, "gold", toGold, "silver"}, {silver, "silver", toSilver, ""}} {
		if c := at(u.i); c.Tier == nil || c.Tier.Reason != "upgrade" || c.Tier.To != u.to || c.Tier.From != u.before ||
			c.Tier.Fact == nil || *c.Tier.Fact != u.fact || at(u.i+1).Redemption != u.fact {
			t.Fatalf("upgrade to %s at %d: %+v", u.to, u.i, all.Activity)
		}
	}
	if n := len(all.Activity); n != 11 {
		t.Fatalf("%d entries, want 3 redeems, 2 earns, 3 adjustments and 3 tier changes: %+v", n, all.Activity)
	}
	// Small pages: the same entries in the same order, each once.
	key := func(a tierEntry) string { return fmt.Sprintf("%s/%d", a.Entry, a.ID) }
	for _, limit := range []int{1, 2, 3, 4} {
		var got []tierEntry
		cursor := ""
		for range 50 {
			var p tierHistory
			e.wantJSON(e.do("GET", fmt.Sprintf("/v1/tenants/acme/customers/c1/history?limit=%d&cursor=%s", limit, url.QueryEscape(cursor)), sup, nil), 200, &p)
			if len(p.Activity) > limit {
				t.Fatalf("limit %d: a page of %d", limit, len(p.Activity))
			}
			got = append(got, p.Activity...)
			if cursor = p.Next; cursor == "" {
				break
			}
		}
		if cursor != "" || len(got) != len(all.Activity) {
			t.Fatalf("limit %d: %d entries (cursor %q), want %d", limit, len(got), cursor, len(all.Activity))
		}
		for i := range got {
			if key(got[i]) != key(all.Activity[i]) {
				t.Fatalf("limit %d: entry %d is %s, want %s", limit, i, key(got[i]), key(all.Activity[i]))
			}
		}
	}
}
