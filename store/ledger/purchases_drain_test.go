package ledger_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/protocol/segment"
	"github.com/punchcard/punchcard/store/ledger"
)

// purchaseRows lists a ledger's purchase history rows (orders, days and
// stores: ledger_customer_rows of kinds 2, 3 and 4), one line each, in
// key order.
func purchaseRows(tb testing.TB, l *ledger.Ledger) []string {
	tb.Helper()
	rows, err := l.DB().QueryContext(context.Background(), `SELECT customer, kind, k1, k2, n1, n2, s1, s2, n3
		FROM ledger_customer_rows WHERE kind IN (2, 3, 4) ORDER BY tenant, customer, kind, k1, k2`)
	if err != nil {
		tb.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var cu, k1, k2 string
		var kind int
		var n1, n2, s1, s2, n3 any
		if err := rows.Scan(&cu, &kind, &k1, &k2, &n1, &n2, &s1, &s2, &n3); err != nil {
			tb.Fatal(err)
		}
		out = append(out, fmt.Sprintf("%s %d %q %q %v %v %v %v %v", cu, kind, k1, k2, n1, n2, s1, s2, n3))
	}
	if err := rows.Err(); err != nil {
		tb.Fatal(err)
	}
	return out
}

// TestPurchasesOfADrain: the purchase history one drain of many facts
// leaves is what the same facts leave applied one transaction each, and
// what they should: the orders, the per-day and per-store counts (a
// customer with several new orders in one drain, in one store and in
// two, an order of two facts, an order already recorded by an earlier
// drain, a rollback), and the segments. A drain that wrote its purchase
// rows together at its end (measured in session 31, docs/operations.md)
// or a ledger that keeps them otherwise must pass it unchanged.
func TestPurchasesOfADrain(t *testing.T) {
	ctx := context.Background()
	big := segment.Definition{ID: "big", Rules: []segment.Rule{{Kind: segment.KindSpend, MinSpend: 1500, Days: 30}}}
	atA := segment.Definition{ID: "at-a", Rules: []segment.Rule{{Kind: segment.KindStore, Store: "store-a1"}}}
	together, clk1, _ := mustOpenSegments(t, big, atA)
	apart, clk2, _ := mustOpenSegments(t, big, atA)
	clk1.Add(48 * time.Hour)
	clk2.Add(48 * time.Hour)

	buy := func(agent protocol.AgentID, seq uint64, cu protocol.CustomerID, txn string, at time.Time, total int64, kind protocol.RedemptionKind) protocol.Redemption {
		r := buyAt(agent, seq, txn, at, total, kind)
		r.Customer = cu
		return r
	}
	earlier := []protocol.Redemption{buy("a1", 1, "c1", "t1", t0, 600, protocol.KindRedeem)}
	drain := []ledger.Batch{
		{Tenant: tenant, Agent: "a1", Redemptions: []protocol.Redemption{
			buy("a1", 1, "c1", "t1", t0, 600, protocol.KindRedeem), // already recorded
			buy("a1", 2, "c1", "t2", t0.Add(time.Hour), 500, protocol.KindRedeem),
			buy("a1", 3, "c1", "t2", t0.Add(time.Hour), 500, protocol.KindEarn), // the same order
			buy("a1", 4, "c2", "t3", t0.Add(25*time.Hour), 300, protocol.KindRedeem),
			buy("a1", 5, "c1", "t4", t0.Add(26*time.Hour), 700, protocol.KindRedeem),
		}},
		{Tenant: tenant, Agent: "a2", Redemptions: []protocol.Redemption{
			buy("a2", 1, "c1", "t5", t0.Add(2*time.Hour), 200, protocol.KindRedeem), // another store, the same day
			buy("a2", 2, "c3", "t6", t0.Add(3*time.Hour), 900, protocol.KindEarn),
			rollbackOf("a2", 3, protocol.RedemptionID{Agent: "a2", Seq: 1}, buy("a2", 1, "c1", "t5", t0.Add(2*time.Hour), 200, protocol.KindRedeem)),
		}},
	}
	for _, l := range []*ledger.Ledger{together, apart} {
		if _, _, err := l.ApplyBatch(ctx, tenant, "a1", earlier); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := together.ApplyBatches(ctx, drain); err != nil {
		t.Fatal(err)
	}
	for _, b := range drain {
		for _, r := range b.Redemptions {
			if _, _, err := apart.ApplyBatch(ctx, b.Tenant, b.Agent, []protocol.Redemption{r}); err != nil {
				t.Fatal(err)
			}
		}
	}

	got, want := purchaseRows(t, together), purchaseRows(t, apart)
	if !slices.Equal(got, want) {
		t.Fatalf("purchase rows of one drain:\n%s\nwant (one fact a transaction):\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// The figures themselves, so that both being wrong alike fails too.
	orders := 0
	for _, row := range got {
		if strings.Contains(row, " 4 ") {
			orders++
		}
	}
	if orders != 6 {
		t.Fatalf("%d orders recorded, want 6 (t1..t6):\n%s", orders, strings.Join(got, "\n"))
	}
	us := func(d time.Duration) int64 { return t0.Add(d).UnixMicro() }
	day := t0.UnixMicro() / int64(24*time.Hour/time.Microsecond)
	for _, row := range []string{
		fmt.Sprintf(`c1 2 "" "" %d %d <nil> <nil> 4`, us(0), us(26*time.Hour)),         // c1's first and last order overall, 4 orders
		fmt.Sprintf(`c1 2 "store-a1" "" %d %d <nil> <nil> 3`, us(0), us(26*time.Hour)), // 3 at store-a1
		fmt.Sprintf(`c1 3 "" "%d" 1300 <nil> <nil> <nil> 3`, day),                      // c1's first day: 600 + 500 + 200
		fmt.Sprintf(`c1 3 "" "%d" 700 <nil> <nil> <nil> 1`, day+1),
	} {
		if !slices.Contains(got, row) {
			t.Errorf("no row %s in:\n%s", row, strings.Join(got, "\n"))
		}
	}
	for _, cu := range []protocol.CustomerID{"c1", "c2", "c3"} {
		g, err := together.CustomerSegments(ctx, tenant, cu)
		if err != nil {
			t.Fatal(err)
		}
		w, err := apart.CustomerSegments(ctx, tenant, cu)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(g, w) {
			t.Errorf("%s's segments %v after one drain, %v one fact a transaction", cu, g, w)
		}
	}
	if g, _ := together.CustomerSegments(ctx, tenant, "c1"); !slices.Equal(g, []string{"at-a", "big"}) {
		t.Errorf("c1's segments %v, want [at-a big] (€20 in 30 days, at store-a1)", g)
	}
}

// TestReferralSeesItsDrainsOrders: a referral's guard counts the
// referee's orders recorded earlier in the same drain (a drain that held
// its purchase rows back to its end, as one measured in session 31 did,
// failed it until it wrote them before the guard's read).
func TestReferralSeesItsDrainsOrders(t *testing.T) {
	ctx := context.Background()
	l, _ := openReferrals(t)
	carol := red("till-1", 1, func(r *protocol.Redemption) {
		r.Customer, r.HLC = "carol", ledger.HLCFromTime(t0.Add(-time.Hour))
	})
	res, err := l.ApplyBatches(ctx, []ledger.Batch{
		{Tenant: tenant, Agent: "till-1", Redemptions: []protocol.Redemption{carol}},
		{Tenant: tenant, Agent: "till-2", Redemptions: []protocol.Redemption{referral("till-2", 1, "carol")}},
	})
	if err != nil {
		t.Fatal(err)
	}
	cs := res[1].Conflicts
	if len(cs) != 1 || cs[0].Kind != ledger.ConflictReferralRefused || !strings.HasPrefix(cs[0].Detail, string(protocol.CodeRefereeNotNew)+":") {
		t.Fatalf("carol's referral after her sale in the same drain: conflicts %+v, want one %s (%s)", cs, ledger.ConflictReferralRefused, protocol.CodeRefereeNotNew)
	}
	if p, err := l.Points(ctx, tenant, "alice"); err != nil || p != 0 {
		t.Fatalf("alice has %d points (%v), want 0", p, err)
	}
}
