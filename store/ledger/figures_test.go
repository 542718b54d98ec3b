package ledger_test

import (
	"context"
	"testing"

	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/store/ledger"
)

// TestFigures: the one-statement read of an online decision's figures
// gives what the single reads give, for figures recorded and not.
func TestFigures(t *testing.T) {
	ctx := context.Background()
	l, _ := MustOpen(t)
	for _, r := range []protocol.Redemption{
		{Kind: protocol.KindRedeem, Store: "web", TxnID: "t1", Campaign: "summer", Code: "MULTI", Customer: "c1", Currency: "EUR", Discount: 100, OrderTot: 1000},
		{Kind: protocol.KindRedeem, Store: "web", TxnID: "t2", Campaign: "money", Code: "GIFT-0001", Customer: "c1", Currency: "EUR", Spend: 1200, OrderTot: 1000},
		{Kind: protocol.KindEarn, Store: "web", TxnID: "t3", Campaign: "loyalty", Customer: "c1", Currency: "EUR", Points: 70},
		{Kind: protocol.KindRedeem, Store: "web", TxnID: "t4", Campaign: "money", Customer: "c2", Currency: "EUR", Discount: 300, OrderTot: 2000},
	} {
		r.Tenant = tenant
		if _, err := l.Redeem(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	for _, cu := range []protocol.CustomerID{"", "c1", "c2", "nobody"} {
		q := ledger.FiguresQuery{Customer: cu, Codes: []protocol.CodeID{"MULTI", "GIFT-0001", "ONCE-1"}, Cards: []protocol.CodeID{"GIFT-0001", "MULTI"},
			Counts: []protocol.CampaignID{"summer", "money"}, Campaigns: []protocol.CampaignID{"money", "summer", "budget100"}}
		f, err := l.Figures(ctx, tenant, q)
		if err != nil {
			t.Fatal(err)
		}
		if cu != "" {
			if p, _ := l.Points(ctx, tenant, cu); p != f.Points {
				t.Errorf("%s: points %d, want %d", cu, f.Points, p)
			}
			for _, c := range q.Counts {
				if n, _ := l.CustomerCount(ctx, tenant, cu, c); n != f.Counts[c] {
					t.Errorf("%s %s: count %d, want %d", cu, c, f.Counts[c], n)
				}
			}
		} else if len(f.Counts) != 0 || f.Points != 0 {
			t.Errorf("no customer: %+v", f)
		}
		for _, c := range q.Codes {
			u, _ := l.CodeUses(ctx, tenant, c)
			if u != f.Uses[c] {
				t.Errorf("%s: uses %d, want %d", c, f.Uses[c], u)
			}
		}
		for _, c := range q.Cards {
			if s, _ := l.GiftCardSpent(ctx, tenant, c); s != f.Spent[c] {
				t.Errorf("%s: spent %d, want %d", c, f.Spent[c], s)
			}
		}
		if f.Spent["GIFT-0001"] != 1200 || f.Uses["MULTI"] != 1 {
			t.Errorf("figures not read: %+v", f)
		}
		for _, c := range q.Campaigns {
			if b, _ := l.Campaign(ctx, tenant, c); b != f.Campaigns[c] {
				t.Errorf("%s: %+v, want %+v", c, f.Campaigns[c], b)
			}
		}
	}
	if f, err := l.Figures(ctx, tenant, ledger.FiguresQuery{}); err != nil || f.Points != 0 {
		t.Errorf("nothing asked: %+v %v", f, err)
	}
}

// BenchmarkFigures: an online decision's figures (points, a code's uses,
// a per-customer count, a campaign's balance) in one statement, and the
// four single reads the decision made before, in the same run.
func BenchmarkFigures(b *testing.B) {
	ctx := context.Background()
	l, _ := MustOpen(b)
	if _, err := l.Redeem(ctx, protocol.Redemption{Kind: protocol.KindRedeem, Tenant: tenant, Store: "web", TxnID: "t1", Campaign: "money",
		Code: "MULTI", Customer: "c1", Currency: "EUR", Discount: 100, OrderTot: 1000}); err != nil {
		b.Fatal(err)
	}
	q := ledger.FiguresQuery{Customer: "c1", Codes: []protocol.CodeID{"MULTI"}, Counts: []protocol.CampaignID{"money"}, Campaigns: []protocol.CampaignID{"money"}}
	b.Run("one", func(b *testing.B) {
		for b.Loop() {
			if _, err := l.Figures(ctx, tenant, q); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("single", func(b *testing.B) {
		for b.Loop() {
			l.Points(ctx, tenant, "c1")
			l.CodeUses(ctx, tenant, "MULTI")
			l.CustomerCount(ctx, tenant, "c1", "money")
			if _, err := l.Campaign(ctx, tenant, "money"); err != nil {
				b.Fatal(err)
			}
		}
	})
}
