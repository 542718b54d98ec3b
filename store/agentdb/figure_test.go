package agentdb_test

import (
	"context"
	"errors"
	"testing"

	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/store/agentdb"
)

// spendReq spends amount from gift card code, checked against the hub's
// figure spent (counting this till's facts per refl).
func spendReq(txn string, amount, balance, spent int64, refl *agentdb.Reflected) agentdb.Request {
	r := redeemReq(txn, "gift", "CARD1", 0)
	r.Facts[0].Redemption.Spend = amount
	r.Facts[0].Code = &agentdb.CodeUse{Uses: 1, Spend: amount, Balance: balance, KnownSpent: spent, Reflected: refl}
	return r
}

func TestCodeFigure(t *testing.T) {
	ctx := context.Background()
	// A card of 100.00 of which another till spent 90.00 online: this
	// till, cut off, may spend 10.00 more and no more. A max of its own
	// spending and the hub's figure would let it spend 90.00 more.
	t.Run("LoneTillOverdraft", func(t *testing.T) {
		db, _ := MustOpen(t)
		refl := &agentdb.Reflected{}
		if _, _, err := db.Commit(ctx, spendReq("T1", 900, 10000, 9000, refl)); err != nil {
			t.Fatal(err)
		}
		_, _, err := db.Commit(ctx, spendReq("T2", 900, 10000, 9000, refl))
		if got, want := protocol.ErrorCode(err), protocol.CodeInsufficientFunds; got != want {
			t.Fatalf("second 9.00 = %v, want %s", err, want)
		}
		fig, err := db.CodeFigure(ctx, "CARD1", agentdb.HubFigure{Spent: 9000, Reflected: refl})
		if err != nil {
			t.Fatal(err)
		}
		if got, want := fig.Spent, int64(9900); got != want {
			t.Fatalf("spent = %d, want %d", got, want)
		}
	})
	t.Run("ReflectedNotCountedTwice", func(t *testing.T) {
		db, _ := MustOpen(t)
		for _, txn := range []string{"T1", "T2", "T3"} {
			if _, _, err := db.Commit(ctx, spendReq(txn, 100, 10000, 0, &agentdb.Reflected{})); err != nil {
				t.Fatal(err)
			}
		}
		for _, c := range []struct {
			name  string
			hub   int64
			refl  *agentdb.Reflected
			spent int64
		}{
			{"NoneCounted", 0, &agentdb.Reflected{}, 300},
			{"Watermark", 5000 + 200, &agentdb.Reflected{Watermark: 2}, 5300},
			{"Beyond", 5000 + 200, &agentdb.Reflected{Watermark: 1, Beyond: []uint64{3}}, 5300},
			{"All", 5000 + 300, &agentdb.Reflected{Watermark: 3}, 5300},
			{"Unknown", 300, nil, 600}, // a hub without Reflected: every own fact on top
		} {
			fig, err := db.CodeFigure(ctx, "CARD1", agentdb.HubFigure{Spent: c.hub, Reflected: c.refl})
			if err != nil {
				t.Fatal(err)
			}
			if fig.Spent != c.spent {
				t.Errorf("%s: spent = %d, want %d", c.name, fig.Spent, c.spent)
			}
		}
	})
	t.Run("MultiUseCode", func(t *testing.T) {
		db, _ := MustOpen(t)
		use := func(txn string) error {
			r := redeemReq(txn, "c1", "MULTI", 100)
			r.Facts[0].Code = &agentdb.CodeUse{Uses: 1, MaxUses: 5, KnownUses: 3, Balance: -1, Reflected: &agentdb.Reflected{}}
			_, _, err := db.Commit(ctx, r)
			return err
		}
		for _, txn := range []string{"T1", "T2"} {
			if err := use(txn); err != nil {
				t.Fatal(err)
			}
		}
		if got, want := protocol.ErrorCode(use("T3")), protocol.CodeCodeUsed; got != want {
			t.Fatalf("sixth use = %s, want %s", got, want)
		}
	})
	t.Run("RollbackGivesBack", func(t *testing.T) {
		db, _ := MustOpen(t)
		if _, _, err := db.Commit(ctx, spendReq("T1", 1000, 1000, 0, &agentdb.Reflected{})); err != nil {
			t.Fatal(err)
		}
		rb := redeemReq("R1", "gift", "CARD1", 0)
		rb.Op = agentdb.OpRollback
		rb.Facts[0].Redemption.Kind = protocol.KindRollback
		rb.Facts[0].Redemption.Spend = 1000
		rb.Facts[0].Redemption.Ref = &protocol.RedemptionID{Agent: "a1", Seq: 1}
		rb.Facts[0].Code = &agentdb.CodeUse{Uses: -1, Spend: -1000, Balance: -1}
		rb.Facts[0].Voids = 1
		if _, _, err := db.Commit(ctx, rb); err != nil {
			t.Fatal(err)
		}
		fig, err := db.CodeFigure(ctx, "CARD1", agentdb.HubFigure{Spent: 1000, Reflected: &agentdb.Reflected{Watermark: 1}})
		if err != nil {
			t.Fatal(err)
		}
		if got, want := fig.Spent, int64(0); got != want {
			t.Fatalf("spent after the hub saw the spend but not its rollback = %d, want %d", got, want)
		}
	})
	t.Run("ErrStaleFigure", func(t *testing.T) {
		db, _ := MustOpen(t)
		for _, txn := range []string{"T1", "T2"} {
			if _, _, err := db.Commit(ctx, spendReq(txn, 100, 10000, 0, &agentdb.Reflected{})); err != nil {
				t.Fatal(err)
			}
		}
		if err := db.SaveSnapshot(ctx, agentdb.Snapshot{Version: 1, ETag: "e", Body: []byte{1}, Reflected: 2}); err != nil {
			t.Fatal(err)
		}
		st, err := db.Prune(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := st.OwnUses, int64(2); got != want {
			t.Fatalf("pruned = %d, want %d", got, want)
		}
		if _, _, err := db.Commit(ctx, spendReq("T3", 100, 10000, 0, &agentdb.Reflected{Watermark: 1})); !errors.Is(err, agentdb.ErrStaleFigure) {
			t.Fatalf("commit with figures older than the prune = %v, want ErrStaleFigure", err)
		}
		if _, _, err := db.Commit(ctx, spendReq("T3", 100, 10000, 200, &agentdb.Reflected{Watermark: 2})); err != nil {
			t.Fatal(err)
		}
	})
}
