package ledger

import (
	"context"
	"fmt"
	"testing"

	"github.com/punchcard/punchcard/protocol"
)

// TestGroupPrefetch: a group loads its baskets' points balances, debt
// lots and per-customer counts with one query per kind (prefetchGroup),
// and what it loaded gives every basket the answer it had when each read
// its own: an earn of a customer in debt pays the debt off first, a
// customer at the per-customer limit is refused, a burn sees the balance,
// and the ledger verifies.
func TestGroupPrefetch(t *testing.T) {
	inGroupModes(t, testGroupPrefetch)
}

func testGroupPrefetch(t *testing.T, takeIn bool) {
	const tn = protocol.TenantID("acme")
	ctx := context.Background()
	l, red, redeem := groupLedger(t, tn, 2)
	if takeIn {
		takeInGroups(l)
	}
	// Before: c1 owes 50 points (its debt lot, as a till's overdrawn
	// burn leaves it), c2 has 100 points, c3 used promo once.
	if _, err := l.db.ExecContext(ctx, `INSERT INTO ledger_journal (tenant, entry, agent, seq, customer, points, psign, received_at)
		VALUES (?, 'earn', 'old', 1, 'c1', -50, 1, 0)`, string(tn)); err != nil {
		t.Fatal(err)
	}
	if _, err := l.db.ExecContext(ctx, `INSERT INTO ledger_customers (tenant, customer, points) VALUES (?, 'c1', -50)`, string(tn)); err != nil {
		t.Fatal(err)
	}
	if _, err := l.db.ExecContext(ctx, `INSERT INTO ledger_points_lots (tenant, customer, amount, remaining, earned_at, expires_at, debt)
		VALUES (?, 'c1', 0, -50, 0, 0, 1)`, string(tn)); err != nil {
		t.Fatal(err)
	}
	for i, r := range []protocol.Redemption{red(protocol.KindEarn, "club", "c2", 100), red(protocol.KindRedeem, "promo", "c3", 0)} {
		if err := redeem(fmt.Sprint("pre", i), r); err != nil {
			t.Fatal(err)
		}
	}
	baskets := []groupBasket{
		{red(protocol.KindEarn, "club", "c1", 30), ""},
		{red(protocol.KindBurn, "club", "c2", -40), ""},
		{red(protocol.KindBurn, "club", "c2", -70), protocol.CodeInsufficientPts},
		{red(protocol.KindRedeem, "promo", "c3", 0), ""},
		{red(protocol.KindRedeem, "promo", "c3", 0), protocol.CodeCustomerLimit},
		{red(protocol.KindEarn, "club", "c4", 10), ""},
		{red(protocol.KindRedeem, "promo", "c4", 0), ""},
	}
	runGroup(t, l, red(protocol.KindEarn, "club", "c9", 1), redeem, baskets)
	for cu, want := range map[protocol.CustomerID]int64{"c1": -20, "c2": 60, "c4": 10} {
		if p, err := l.Points(ctx, tn, cu); err != nil || p != want {
			t.Errorf("points of %s: %d, %v; want %d", cu, p, err, want)
		}
	}
	var debt int64
	if err := l.db.QueryRowContext(ctx, `SELECT remaining FROM ledger_points_lots WHERE tenant = ? AND customer = 'c1' AND debt = 1`, string(tn)).Scan(&debt); err != nil || debt != -20 {
		t.Errorf("c1's debt lot: %d, %v; want -20 (the earn paid 30 of it)", debt, err)
	}
	rep, err := l.Verify(ctx)
	if err != nil || !rep.OK() {
		t.Fatalf("verify: %v %+v", err, rep.Diffs)
	}

	// What prefetchGroup loads, read in a transaction of its own.
	t.Run("Loaded", func(t *testing.T) {
		tx, err := l.db.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback()
		s := l.newState(ctx, tx)
		defer s.close()
		var jobs []*job
		for i, b := range baskets {
			j := &job{ctx: ctx, b: Basket{Tenant: tn, Redemptions: []protocol.Redemption{b.r}},
				facts: factSet{camps: map[key2]CampaignFacts{}, codes: map[key2]CodeFacts{}}}
			seenC, seenK := map[key2]bool{}, map[key2]bool{}
			r := b.r
			r.Tenant = tn
			if err := j.facts.add(ctx, l.facts, r, seenC, seenK); err != nil {
				t.Fatalf("basket %d: %v", i, err)
			}
			jobs = append(jobs, j)
		}
		if err := s.prefetchGroup(jobs); err != nil {
			t.Fatal(err)
		}
		for cu, want := range map[string]int64{"c1": -20, "c2": 60, "c4": 10} {
			if c, ok := s.custs[key2{string(tn), cu}]; !ok || c.v != want {
				t.Errorf("points of %s loaded: %v (%v), want %d", cu, c, ok, want)
			}
		}
		if s.noDebt[key2{string(tn), "c1"}] || !s.noDebt[key2{string(tn), "c4"}] {
			t.Errorf("noDebt %v: want c4 (no debt lot) and not c1 (its debt lot)", s.noDebt)
		}
		if c, ok := s.custCamps[key3{string(tn), "c3", "promo"}]; !ok || c.v != 2 {
			t.Errorf("c3's promo count loaded: %v (%v), want 2", c, ok)
		}
		if _, ok := s.custCamps[key3{string(tn), "c1", "club"}]; ok {
			t.Error("a count nobody checks (club, no per-customer limit) was loaded")
		}
	})
}

// TestGroupTxnPrefetch: a group loads the journal rows of its baskets'
// transaction ids with one query (prefetchTxns), and each basket gets
// the answer it had when it read its own (findTxn): a repeat of a
// transaction recorded before the group, or earlier in it, with the same
// amounts is answered with the record and recorded once; with other
// amounts it is refused.
func TestGroupTxnPrefetch(t *testing.T) {
	inGroupModes(t, testGroupTxnPrefetch)
}

func testGroupTxnPrefetch(t *testing.T, takeIn bool) {
	const tn = protocol.TenantID("acme")
	ctx := context.Background()
	l, red, redeemAs := groupLedger(t, tn, 0)
	if takeIn {
		takeInGroups(l)
	}
	redeem := func(txn string, r protocol.Redemption) error { // the basket's order names its transaction
		if r.OrderID != "" {
			txn, r.OrderID = r.OrderID, ""
		}
		return redeemAs(txn, r)
	}
	in := func(txn string, r protocol.Redemption) protocol.Redemption {
		r.OrderID = txn
		return r
	}
	if err := redeem("o1", red(protocol.KindEarn, "club", "c2", 100)); err != nil {
		t.Fatal(err)
	}
	baskets := []groupBasket{
		{in("o1", red(protocol.KindEarn, "club", "c2", 100)), ""},
		{in("o1", red(protocol.KindEarn, "club", "c2", 50)), protocol.CodeIdempotencyReuse},
		{in("o2", red(protocol.KindEarn, "club", "c3", 10)), ""},
		{in("o2", red(protocol.KindEarn, "club", "c3", 10)), ""},
		{in("o2", red(protocol.KindEarn, "club", "c3", 20)), protocol.CodeIdempotencyReuse},
		{in("o3", red(protocol.KindEarn, "club", "c4", 5)), ""},
	}
	runGroup(t, l, red(protocol.KindEarn, "club", "c9", 1), redeem, baskets)
	for txn, want := range map[string]int{"o1": 1, "o2": 1, "o3": 1} {
		var n int
		if err := l.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM ledger_journal WHERE tenant = ? AND txn_id = ?`, string(tn), txn).Scan(&n); err != nil || n != want {
			t.Errorf("journal rows of %s: %d, %v; want %d", txn, n, err, want)
		}
	}
	for cu, want := range map[protocol.CustomerID]int64{"c2": 100, "c3": 10, "c4": 5} {
		if p, err := l.Points(ctx, tn, cu); err != nil || p != want {
			t.Errorf("points of %s: %d, %v; want %d", cu, p, err, want)
		}
	}

	// What prefetchTxns loads, read in a transaction of its own.
	t.Run("Loaded", func(t *testing.T) {
		tx, err := l.db.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback()
		s := l.newState(ctx, tx)
		defer s.close()
		var rs []protocol.Redemption
		for _, txn := range []string{"o1", "o3", "o4", "o1"} {
			r := red(protocol.KindEarn, "club", "c2", 1)
			r.Tenant, r.TxnID = tn, txn
			rs = append(rs, r)
		}
		if err := s.prefetchTxns(rs); err != nil {
			t.Fatal(err)
		}
		for txn, want := range map[string]int64{"o1": 100, "o3": 5, "o4": 0} {
			got, ok := s.txns[key2{string(tn), txn}]
			switch {
			case !ok:
				t.Errorf("%s not loaded", txn)
			case want == 0 && len(got) != 0, want != 0 && (len(got) != 1 || got[0].Points != want || got[0].TxnID != txn):
				t.Errorf("%s loaded %+v, want one row of %d points (none for 0)", txn, got, want)
			}
		}
	})
}

// inGroupModes runs test as a group takes its baskets in when it begins
// (Group), and with every basket taken into the first group (TakenIn).
func inGroupModes(t *testing.T, test func(t *testing.T, takeIn bool)) {
	t.Run("Group", func(t *testing.T) { test(t, false) })
	t.Run("TakenIn", func(t *testing.T) { test(t, true) })
}
