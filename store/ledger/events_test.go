package ledger_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/store/ledger"
)

// TestEvents: a till's facts write their events in their transaction, a
// fact sent again writes none, conflicts and budget thresholds write
// theirs, in seq order after the cursor.
func TestEvents(t *testing.T) {
	ctx := context.Background()
	l, _ := MustOpen(t)
	var rs []protocol.Redemption
	for seq := uint64(1); seq <= 4; seq++ {
		rs = append(rs, red("till-1", seq, func(r *protocol.Redemption) { r.Campaign, r.Discount = "money", 2500 }))
	}
	if _, _, err := l.ApplyBatch(ctx, tenant, "till-1", rs); err != nil {
		t.Fatal(err)
	}
	if _, _, err := l.ApplyBatch(ctx, tenant, "till-1", rs); err != nil { // again: recorded, no event
		t.Fatal(err)
	}
	es, err := l.EventsAfter(ctx, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	count := map[string]int{}
	var thresholds []int
	seen := map[string]bool{}
	for i, e := range es {
		count[e.Type]++
		if seen[e.ID] || !strings.HasPrefix(e.ID, "evt_l") || len(e.ID) < len("evt_l1_")+12 {
			t.Fatalf("event id %q repeated or malformed", e.ID)
		}
		seen[e.ID] = true
		if i > 0 && e.Seq <= es[i-1].Seq {
			t.Fatalf("events out of order: %d after %d", e.Seq, es[i-1].Seq)
		}
		if e.Tenant != tenant || e.V != ledger.EventVersion {
			t.Fatalf("event %+v: wrong tenant or version", e)
		}
		if e.Type == ledger.EventBudgetThreshold {
			var b struct {
				Percent int    `json:"percent"`
				Measure string `json:"measure"`
			}
			if err := json.Unmarshal(e.Body, &b); err != nil {
				t.Fatal(err)
			}
			thresholds = append(thresholds, b.Percent)
		}
	}
	if got, want := count["fact.redeem"], 4; got != want {
		t.Errorf("fact.redeem events = %d, want %d", got, want)
	}
	if got, want := count[ledger.EventConflict], 4; got != want { // allowance overruns: the till had none
		t.Errorf("conflict events = %d, want %d", got, want)
	}
	if got, want := len(thresholds), 3; got != want || thresholds[0] != 50 || thresholds[1] != 80 || thresholds[2] != 100 {
		t.Errorf("thresholds = %v, want [50 80 100]", thresholds)
	}
	// The cursor reads on from the last seq.
	rest, err := l.EventsAfter(ctx, es[len(es)-2].Seq, 100)
	if err != nil || len(rest) != 1 || rest[0].ID != es[len(es)-1].ID {
		t.Fatalf("after cursor: %v %v", rest, err)
	}
	got, ok, err := l.EventByID(ctx, tenant, es[0].ID)
	if err != nil || !ok || got.Seq != es[0].Seq {
		t.Fatalf("EventByID: %+v %v %v", got, ok, err)
	}
	if _, ok, _ := l.EventByID(ctx, "other", es[0].ID); ok {
		t.Fatal("another tenant's event found")
	}
	for _, bad := range []string{"", "evt_l", "evt_lzz_abc", "evt_l1_", es[0].ID + "0", "evt_c1_" + es[0].ID[len(es[0].ID)-12:]} {
		if _, ok, err := l.EventByID(ctx, tenant, bad); ok || err != nil {
			t.Fatalf("EventByID(%q): %v %v", bad, ok, err)
		}
	}
}

// TestNoEvents: NoEvents writes none (the benchmarks' baseline).
func TestNoEvents(t *testing.T) {
	ctx := context.Background()
	l, err := ledger.Open(ctx, t.TempDir()+"/hub.db", ledger.Options{Facts: MustFacts(t), NoEvents: true})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if _, _, err := l.ApplyBatch(ctx, tenant, "till-1", reds("till-1", 1, 2)); err != nil {
		t.Fatal(err)
	}
	if es, err := l.EventsAfter(ctx, 0, 10); err != nil || len(es) != 0 {
		t.Fatalf("events %v, err %v", es, err)
	}
}

// TestEventsUndo: baskets the online writer refuses in a group commit
// (a single-use code taken by another basket of the same group) leave no
// event: the fact events are exactly the journal's rows.
func TestEventsUndo(t *testing.T) {
	ctx := context.Background()
	l, _ := MustOpen(t)
	var wg sync.WaitGroup
	for i := range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			txn := fmt.Sprint("basket-", i)
			l.RedeemBasket(ctx, ledger.Basket{Tenant: tenant, Redemptions: []protocol.Redemption{
				{Kind: protocol.KindRedeem, Store: "web", TxnID: txn, Campaign: "loyalty", Currency: "EUR", Discount: 100, OrderTot: 1000},
				{Kind: protocol.KindRedeem, Store: "web", TxnID: txn, Campaign: "summer", Code: "ONCE-1", Customer: protocol.CustomerID(fmt.Sprint("c", i)), Currency: "EUR", Discount: 50, OrderTot: 1000},
			}}) // all but one refused: the code is single-use
		}()
	}
	wg.Wait()
	var journal, facts int
	if err := l.DB().QueryRowContext(ctx, `SELECT (SELECT COUNT(*) FROM ledger_journal), (SELECT COUNT(*) FROM ledger_events WHERE type LIKE 'fact.%')`).Scan(&journal, &facts); err != nil {
		t.Fatal(err)
	}
	if journal != 2 || facts != journal {
		t.Fatalf("journal rows %d, fact events %d: want 2 and 2", journal, facts)
	}
}

// TestReviewTills: a till not heard from goes stale once (one till.stale
// event), a fact brings it back (one till.back), the hub's own row never
// counts.
func TestReviewTills(t *testing.T) {
	ctx := context.Background()
	l, clk := MustOpen(t)
	if _, _, err := l.ApplyBatch(ctx, tenant, "till-1", reds("till-1", 1)); err != nil {
		t.Fatal(err)
	}
	count := func(typ string) int {
		var n int
		if err := l.DB().QueryRowContext(ctx, `SELECT COUNT(*) FROM ledger_events WHERE type = ?`, typ).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	review := func(wantStale, wantBack int64) {
		t.Helper()
		s, b, err := l.ReviewTills(ctx, clk.Now(), 10*time.Minute)
		if err != nil || s != wantStale || b != wantBack {
			t.Fatalf("ReviewTills = %d stale, %d back, %v; want %d, %d", s, b, err, wantStale, wantBack)
		}
	}
	review(0, 0)
	clk.Add(11 * time.Minute)
	review(1, 0)
	review(0, 0) // already stale: no second event
	if _, _, err := l.ApplyBatch(ctx, tenant, "till-1", reds("till-1", 2)); err != nil {
		t.Fatal(err)
	}
	review(0, 1)
	if got, want := count(ledger.EventTillStale)*10+count(ledger.EventTillBack), 11; got != want {
		t.Fatalf("till events (stale*10+back) = %d, want %d", got, want)
	}
}
