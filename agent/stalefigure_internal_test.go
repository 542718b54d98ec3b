package agent

import (
	"context"
	"errors"
	"testing"

	"github.com/punchcard/punchcard/agent/agenttest"
	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/protocol/snapshot"
	"github.com/punchcard/punchcard/store/agentdb"
)

// A sale decided with one snapshot's figures, then a newer snapshot is
// applied and the own facts it counts are pruned before the sale commits:
// the commit refuses (agentdb.ErrStaleFigure), and Redeem decides again
// with the snapshot in use and commits, exactly once, with the figure
// that snapshot gives.
func TestRedeemRetriesStaleFigure(t *testing.T) {
	ctx := context.Background()
	a, db := openAgent(t, t.TempDir()+"/agent.db")
	card := func(version uint64, watermark uint64, spent int64) []byte {
		s := agenttest.Small(version, 10)
		s.Reflected = &snapshot.Reflected{Watermark: watermark}
		s.Codes = append(s.Codes, snapshot.Code{Code: "GIFT9", Campaign: agenttest.CampGift, Uses: -1,
			Balance: &protocol.Money{Amount: 50_00, Currency: "EUR"}, Spent: spent})
		return agenttest.Encode(t, s)
	}
	if _, err := a.ApplySnapshot(ctx, card(1, 0, 0), "e1"); err != nil {
		t.Fatal(err)
	}
	spend := func(txn string) RedeemRequest {
		return RedeemRequest{TxnID: txn, Basket: Basket{Order: agenttest.Order("o-"+txn, 100_00), Redeemables: []Input{{Code: "GIFT9", Amount: 10_00}}}}
	}
	for _, txn := range []string{"T1", "T2"} {
		if _, err := a.Redeem(ctx, spend(txn)); err != nil {
			t.Fatalf("%s: %v", txn, err)
		}
	}

	// T3 is decided with snapshot 1 (the hub counts none of the till's
	// spends); before it commits, snapshot 2 arrives counting both and
	// the prune drops them from own_uses.
	calls := 0
	commitHook = func() {
		calls++
		if calls > 1 {
			return
		}
		if _, err := a.ApplySnapshot(ctx, card(2, 2, 20_00), "e2"); err != nil {
			t.Error(err)
		}
		st, err := db.Prune(ctx)
		if err != nil {
			t.Error(err)
		}
		if st.OwnUses != 2 {
			t.Errorf("pruned own uses = %d, want 2", st.OwnUses)
		}
	}
	t.Cleanup(func() { commitHook = nil })
	rc, err := a.Redeem(ctx, spend("T3"))
	if err != nil {
		t.Fatalf("T3 = %v, want committed after a retry", err)
	}
	if calls != 2 {
		t.Fatalf("decisions committed = %d, want 2 (the stale one refused, then the retry)", calls)
	}
	if len(rc.Facts) != 1 || rc.Facts[0].Spend != 10_00 {
		t.Fatalf("T3 receipt = %+v, want one spend of 10.00", rc)
	}
	fig, err := db.CodeFigure(ctx, "GIFT9", agentdb.HubFigure{Spent: 20_00, Reflected: &agentdb.Reflected{Watermark: 2}})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := fig.Spent, int64(30_00); got != want {
		t.Fatalf("spent after T3 = %d, want %d (T1, T2 counted by the hub, T3 once)", got, want)
	}

	// Without the retry, the commit of the stale decision is the error.
	calls = 0
	commitHook = func() {
		calls++
		if calls == 1 {
			if _, err := a.ApplySnapshot(ctx, card(3, 3, 30_00), "e3"); err != nil {
				t.Error(err)
			}
			if _, err := db.Prune(ctx); err != nil {
				t.Error(err)
			}
		}
	}
	if _, err := a.redeem(ctx, spend("T4"), hashOf(spend("T4"))); !errors.Is(err, agentdb.ErrStaleFigure) {
		t.Fatalf("one attempt across a prune = %v, want ErrStaleFigure", err)
	}
}
