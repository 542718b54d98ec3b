package ledger_test

import (
	"context"
	"testing"
	"time"

	"github.com/punchcard/punchcard/protocol"
	pledger "github.com/punchcard/punchcard/protocol/ledger"
	"github.com/punchcard/punchcard/store/ledger"
)

func mustVerify(t *testing.T, l *ledger.Ledger) {
	t.Helper()
	rep, err := l.Verify(context.Background())
	if err != nil || !rep.OK() {
		t.Fatalf("verify: %v %v", err, rep.Diffs)
	}
}

func adjust(l *ledger.Ledger, cu protocol.CustomerID, n int64, exp time.Time) (ledger.AdjustmentRecord, error) {
	_, rec, err := l.AdjustPoints(context.Background(), ledger.Adjustment{Tenant: tenant, Customer: cu, Points: n, Reason: pledger.ReasonGoodwill, By: "k1", ExpiresAt: exp}, ledger.AdjustOnce{})
	return rec, err
}

// TestAdjustPoints: a positive adjustment is a lot, a negative one takes
// from the lots that expire first and never beyond the live balance, a
// rollback of an earn whose lot an adjustment took from still gives back
// exactly, and Verify stays clean after each step.
func TestAdjustPoints(t *testing.T) {
	ctx := context.Background()
	l, clk := MustOpen(t)
	soon, later := t0.Add(24*time.Hour), t0.Add(48*time.Hour)
	if _, _, err := l.ApplyBatch(ctx, tenant, "till-1", []protocol.Redemption{
		earnAt("till-1", 1, "c1", 30, t0, later),
		earnAt("till-1", 2, "c1", 20, t0, soon),
	}); err != nil {
		t.Fatal(err)
	}
	mustPoints(t, l, "c1", 50)

	// Positive: a lot that expires when given.
	rec, err := adjust(l, "c1", 40, later.Add(time.Hour))
	if err != nil || rec.Lot == 0 || rec.Balance != 90 || rec.Redemption.Agent != protocol.HubSender {
		t.Fatalf("positive: %+v %v", rec, err)
	}
	mustPoints(t, l, "c1", 90)
	mustVerify(t, l)

	// Negative: 25 taken, the 20 expiring soonest first.
	if rec, err = adjust(l, "c1", -25, time.Time{}); err != nil || rec.Balance != 65 {
		t.Fatalf("negative: %+v %v", rec, err)
	}
	lots, err := l.PointsLots(ctx, tenant, "c1")
	if err != nil {
		t.Fatal(err)
	}
	if len(lots) != 2 || lots[0].Remaining != 25 || lots[1].Remaining != 40 {
		t.Fatalf("lots after the negative adjustment: %+v", lots)
	}
	mustVerify(t, l)

	// Beyond the live balance: refused, nothing recorded.
	if _, err := adjust(l, "c1", -66, time.Time{}); protocol.ErrorCode(err) != protocol.CodeInsufficientPts {
		t.Fatalf("beyond the balance: %v", err)
	}
	mustPoints(t, l, "c1", 65)

	// A rollback of the earn the adjustment took 5 from: the 25 left of
	// its lot go, the 5 spent come from the other lot.
	if _, _, err := l.ApplyBatch(ctx, tenant, "till-1", []protocol.Redemption{
		red("till-1", 3, func(r *protocol.Redemption) {
			r.Kind, r.Ref, r.Customer, r.HLC = protocol.KindRollback, &protocol.RedemptionID{Agent: "till-1", Seq: 1}, "c1", ledger.HLCFromTime(t0)
		}),
	}); err != nil {
		t.Fatal(err)
	}
	mustPoints(t, l, "c1", 35)
	mustVerify(t, l)

	// An adjustment is not a redemption: the online rollback refuses it.
	if _, err := l.Redeem(ctx, protocol.Redemption{Kind: protocol.KindRollback, Tenant: tenant, Ref: &rec.Redemption}); protocol.ErrorCode(err) != protocol.CodeNotFound {
		t.Fatalf("rollback of an adjustment: %v", err)
	}

	// An adjustment's lot expires like any: after the given expiry it is gone.
	clk.t = later.Add(2 * time.Hour)
	if _, _, err := l.ExpireLots(ctx, clk.t, 0); err != nil {
		t.Fatal(err)
	}
	mustPoints(t, l, "c1", 0)
	mustVerify(t, l)

	// The history lists every movement, newest first, with the
	// adjustment's reason and the earn's rollback.
	page, err := l.CustomerActivity(ctx, tenant, "c1", ledger.HistoryQuery{})
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]int{}
	for _, e := range page.Entries {
		kinds[e.Entry]++
		if e.Entry == pledger.EntryPointsAdjusted && (e.Adjustment == nil || e.Adjustment.Reason != pledger.ReasonGoodwill || e.Adjustment.By != "k1") {
			t.Fatalf("adjustment entry %+v", e)
		}
		if e.Entry == "earn" && e.Redemption.Seq == 1 && (e.RolledBackBy == nil || e.RolledBackBy.Seq != 3) {
			t.Fatalf("the rolled back earn: %+v", e)
		}
	}
	if kinds["points_adjusted"] != 2 || kinds["earn"] != 2 || kinds["rollback"] != 1 || kinds["points_expired"] == 0 {
		t.Fatalf("history kinds %v", kinds)
	}
	for i := 1; i < len(page.Entries); i++ {
		if page.Entries[i].ID >= page.Entries[i-1].ID {
			t.Fatalf("not newest first: %+v", page.Entries)
		}
	}
	// Paginated: two at a time, every entry once.
	seen := 0
	for q := (ledger.HistoryQuery{Limit: 2}); ; {
		p, err := l.CustomerActivity(ctx, tenant, "c1", q)
		if err != nil {
			t.Fatal(err)
		}
		seen += len(p.Entries)
		if len(p.Entries) < 2 {
			break
		}
		q.BeforeEntry = p.Entries[len(p.Entries)-1].ID
	}
	if seen != len(page.Entries) {
		t.Fatalf("paged %d entries, one page %d", seen, len(page.Entries))
	}
}

// TestAdjustPointsIdempotent: the same key twice records one adjustment
// and answers the first answer; the key with another request is refused.
func TestAdjustPointsIdempotent(t *testing.T) {
	ctx := context.Background()
	l, _ := MustOpen(t)
	// The idempotency records are the catalog's table (the hub shares one
	// database file between both stores).
	if _, err := l.DB().ExecContext(ctx, `CREATE TABLE catalog_idempotency (tenant TEXT NOT NULL, key TEXT NOT NULL, request BLOB NOT NULL,
		status INTEGER NOT NULL, body BLOB NOT NULL, created_at INTEGER NOT NULL, PRIMARY KEY (tenant, key)) STRICT`); err != nil {
		t.Fatal(err)
	}
	a := ledger.Adjustment{Tenant: tenant, Customer: "c1", Points: 10, Reason: pledger.ReasonLostPoints, By: "k1"}
	once := ledger.AdjustOnce{Key: "k", Request: []byte("r1"), Answer: func(r ledger.AdjustmentRecord) (int, []byte, error) {
		return 200, []byte(r.Redemption.String()), nil
	}}
	o1, _, err := l.AdjustPoints(ctx, a, once)
	if err != nil || o1.Replayed {
		t.Fatal(o1, err)
	}
	o2, _, err := l.AdjustPoints(ctx, a, once)
	if err != nil || !o2.Replayed || string(o2.Body) != string(o1.Body) {
		t.Fatalf("replay: %+v %v", o2, err)
	}
	mustPoints(t, l, "c1", 10)
	once.Request = []byte("r2")
	if _, _, err := l.AdjustPoints(ctx, a, once); protocol.ErrorCode(err) != protocol.CodeIdempotencyReuse {
		t.Fatalf("another request: %v", err)
	}
}

// TestAdjustPointsBurnRollback: points added by hand are spent like any
// lot, and a rollback of the burn gives them back to the adjustment's lot.
func TestAdjustPointsBurnRollback(t *testing.T) {
	ctx := context.Background()
	l, _ := MustOpen(t)
	rec, err := adjust(l, "c2", 30, t0.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	b, err := onlineBurn(l, "c2", 20, "burn-1")
	if err != nil {
		t.Fatal(err)
	}
	mustPoints(t, l, "c2", 10)
	mustVerify(t, l)
	if _, err := l.Redeem(ctx, protocol.Redemption{Kind: protocol.KindRollback, Tenant: tenant, TxnID: "rb-1", Ref: &b.ID}); err != nil {
		t.Fatal(err)
	}
	mustPoints(t, l, "c2", 30)
	lots, err := l.PointsLots(ctx, tenant, "c2")
	if err != nil || len(lots) != 1 || lots[0].ID != rec.Lot || lots[0].Remaining != 30 {
		t.Fatalf("lots %+v %v", lots, err)
	}
	mustVerify(t, l)
}
