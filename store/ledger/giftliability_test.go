package ledger_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/store/ledger"
)

// journalLiability is the liability as the journal's sum over every row
// of a sold card, in each row's currency: what GiftCardLiability
// computed before it read the cards (and what Verify checks it against).
func journalLiability(t testing.TB, l *ledger.Ledger, currency string) int64 {
	t.Helper()
	var v int64
	err := l.DB().QueryRow(`SELECT COALESCE(SUM(CASE WHEN entry IN ('giftcard_issue', 'giftcard_topup') THEN spend WHEN entry = 'giftcard_cashout' THEN -spend ELSE -sign * spend END), 0)
		FROM ledger_journal WHERE tenant = ? AND currency = ? AND seq IS NOT NULL AND code IN
		(SELECT code FROM ledger_journal WHERE tenant = ?1 AND entry = 'giftcard_issue')`, tenant, currency).Scan(&v)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestGiftCardLiability: what the tenant's sold cards owe, read from the
// cards, equals the journal's sum after every kind of card fact (a sale,
// a second sale of the same number, a top-up, spends with and without a
// rollback, a cash-out, another card's sale, a head-office card that was
// never sold), in Balances too; a journal row changed under the cards
// shows in Verify.
func TestGiftCardLiability(t *testing.T) {
	ctx := context.Background()
	l, _ := MustOpen(t)
	var seq uint64
	card := func(kind protocol.RedemptionKind, code protocol.CodeID, mod func(*protocol.Redemption)) protocol.Redemption {
		seq++
		return red("till-1", seq, func(r *protocol.Redemption) {
			r.Kind, r.Campaign, r.Code, r.Discount, r.OrderTot = kind, "loyalty", code, 0, 100_00
			if mod != nil {
				mod(r)
			}
		})
	}
	load := func(n int64) func(*protocol.Redemption) { return func(r *protocol.Redemption) { r.Load = n } }
	spend := func(n int64) func(*protocol.Redemption) { return func(r *protocol.Redemption) { r.Spend = n } }
	steps := []struct {
		name string
		rs   []protocol.Redemption
		want int64
	}{
		{"a sale", []protocol.Redemption{card(protocol.KindIssue, "CARD-A", load(40_00))}, 40_00},
		{"a spend", []protocol.Redemption{card(protocol.KindRedeem, "CARD-A", spend(15_00))}, 25_00},
		{"a top-up", []protocol.Redemption{card(protocol.KindTopUp, "CARD-A", load(10_00))}, 35_00},
		{"the same number sold again", []protocol.Redemption{card(protocol.KindIssue, "CARD-A", load(5_00))}, 40_00},
		{"a cash-out", []protocol.Redemption{card(protocol.KindCashOut, "CARD-A", spend(3_00))}, 37_00},
		{"another card sold and spent", []protocol.Redemption{card(protocol.KindIssue, "CARD-B", load(20_00)), card(protocol.KindRedeem, "CARD-B", spend(20_00))}, 37_00},
		{"a head-office card spent", []protocol.Redemption{card(protocol.KindRedeem, "GIFT-0001", spend(7_00))}, 37_00},
	}
	for _, st := range steps {
		if _, _, err := l.ApplyBatch(ctx, tenant, "till-1", st.rs); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		got, err := l.GiftCardLiability(ctx, tenant, "EUR")
		if err != nil {
			t.Fatal(err)
		}
		if j := journalLiability(t, l, "EUR"); got != st.want || j != st.want {
			t.Fatalf("after %s: liability %d, journal's sum %d, want %d", st.name, got, j, st.want)
		}
	}
	// A rollback of the first spend gives it back to the card.
	spent := protocol.RedemptionID{Agent: "till-1", Seq: 2}
	if _, _, err := l.ApplyBatch(ctx, tenant, "till-1", []protocol.Redemption{card(protocol.KindRollback, "CARD-A", func(r *protocol.Redemption) {
		r.Spend, r.Ref = 15_00, &spent
	})}); err != nil {
		t.Fatal(err)
	}
	got, err := l.GiftCardLiability(ctx, tenant, "EUR")
	if err != nil {
		t.Fatal(err)
	}
	if j := journalLiability(t, l, "EUR"); got != j || got != 52_00 {
		t.Fatalf("after a rollback: liability %d, journal's sum %d, want 52.00", got, j)
	}
	b, err := l.Balances(ctx, tenant, t0)
	if err != nil {
		t.Fatal(err)
	}
	if b.GiftCardLiability["EUR"] != got || len(b.GiftCardLiability) != 1 {
		t.Fatalf("Balances: %v, want EUR %d", b.GiftCardLiability, got)
	}
	if got, err := l.GiftCardLiability(ctx, tenant, "USD"); err != nil || got != 0 {
		t.Fatalf("USD: %d %v", got, err)
	}

	// A spend's amount changed in the journal alone: the cards no longer
	// owe what the journal says.
	if _, err := l.DB().Exec(`UPDATE ledger_journal SET spend = spend + 1 WHERE tenant = ? AND agent = 'till-1' AND seq = 2`, tenant); err != nil {
		t.Fatal(err)
	}
	rep, err := l.Verify(ctx)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, d := range rep.Diffs {
		found = found || (d.Table == "ledger_giftcards" && d.Column == "liability")
	}
	if !found {
		t.Fatalf("verify missed the changed spend: %+v", rep.Diffs)
	}
	if _, err := l.DB().Exec(`UPDATE ledger_journal SET spend = spend - 1 WHERE tenant = ? AND agent = 'till-1' AND seq = 2`, tenant); err != nil {
		t.Fatal(err)
	}
}

// TestBalancesPlan: the liability reads each sold card once, through
// the partial index of sales, and never scans the journal; the points
// outstanding read the tenant's one row.
func TestBalancesPlan(t *testing.T) {
	l, _ := MustOpen(t)
	for _, q := range []struct {
		text string
		args []any
	}{{ledger.LiabilitySQL, []any{tenant, "EUR"}}, {ledger.LiabilitiesSQL, []any{tenant}}} {
		plan := explain(t, l, q.text, q.args...)
		for _, want := range []string{"SEARCH f USING INDEX ledger_journal_card_issue (tenant=?)", "SEARCH g USING PRIMARY KEY", "SEARCH e USING COVERING INDEX ledger_journal_card_issue"} {
			if !strings.Contains(plan, want) {
				t.Fatalf("plan lacks %q:\n%s", want, plan)
			}
		}
		if strings.Contains(plan, "SCAN") {
			t.Fatalf("plan scans:\n%s", plan)
		}
	}
	if plan := explain(t, l, ledger.PointsTotalSQL, tenant); !strings.Contains(plan, "SEARCH ledger_points_totals USING PRIMARY KEY (tenant=?)") ||
		strings.Contains(plan, "customer_rows") {
		t.Fatalf("points outstanding plan:\n%s", plan)
	}
}

// TestPointsOutstanding: the balances report's points outstanding (the
// tenant's total, ledger_026) follows every writer of a customer's
// balance: a till's earns (a drain), an online burn (and one refused),
// and the expiry job.
func TestPointsOutstanding(t *testing.T) {
	ctx := context.Background()
	l, clk := MustOpen(t)
	want := func(step string, n int64) {
		t.Helper()
		b, err := l.Balances(ctx, tenant, clk.Now())
		if err != nil {
			t.Fatal(err)
		}
		var sum int64
		if err := l.DB().QueryRow(`SELECT COALESCE(SUM(points), 0) FROM ledger_customers WHERE tenant = ?`, tenant).Scan(&sum); err != nil {
			t.Fatal(err)
		}
		if b.PointsOutstanding != n || sum != n {
			t.Fatalf("after %s: points outstanding %d, customers' sum %d, want %d", step, b.PointsOutstanding, sum, n)
		}
	}
	want("nothing", 0)
	exp := t0.AddDate(1, 0, 0)
	if _, _, err := l.ApplyBatch(ctx, tenant, "till-1", []protocol.Redemption{
		earnAt("till-1", 1, "c1", 100, t0, exp), earnAt("till-1", 2, "c2", 40, t0, time.Time{}), earnAt("till-1", 3, "c1", 5, t0, time.Time{}),
	}); err != nil {
		t.Fatal(err)
	}
	want("a till's earns", 145)
	if _, err := onlineBurn(l, "c1", 30, "b1"); err != nil {
		t.Fatal(err)
	}
	want("an online burn", 115)
	if _, err := onlineBurn(l, "c2", 1_000, "b2"); err == nil {
		t.Fatal("a burn beyond the balance was recorded")
	}
	want("a refused burn", 115)
	clk.t = exp
	if n, p, err := l.ExpireLots(ctx, clk.Now(), 0); err != nil || n != 1 || p != 70 {
		t.Fatalf("expired %d lots, %d points, %v; want 1 lot of 70", n, p, err)
	}
	want("the expiry", 45)
}
