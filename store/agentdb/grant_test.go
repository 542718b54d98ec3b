package agentdb_test

import (
	"context"
	"testing"

	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/store/agentdb"
)

// A till that missed grant answers gets what it never received from the
// next answer or snapshot that says more was granted, exactly once.
func TestGrantAdopt(t *testing.T) {
	ctx := context.Background()
	al := func(grant uint64, count, granted int64) protocol.Allowance {
		return protocol.Allowance{Tenant: "t1", Agent: "a1", Campaign: "c1", Grant: grant, Count: count, Amount: -1, GrantedCount: granted, GrantedAmount: -1}
	}
	t.Run("LostFirstAnswer", func(t *testing.T) {
		db, _ := MustOpen(t)
		// Grant 1 (80) never arrived; the snapshot says grant 1, 80
		// outstanding.
		if ok, err := db.Adopt(ctx, al(1, 80, 80)); err != nil || !ok {
			t.Fatal(ok, err)
		}
		if ok, _ := db.Grant(ctx, al(1, 80, 80)); ok {
			t.Fatal("the late answer of an adopted grant was applied again")
		}
		a, _, _ := db.Allowance(ctx, "c1")
		if a.Count != 80 || a.Grant != 1 {
			t.Fatalf("%+v", a)
		}
	})
	t.Run("LostMiddleAnswer", func(t *testing.T) {
		db, _ := MustOpen(t)
		db.Grant(ctx, al(1, 10, 10))
		// Grant 2 (20) lost; grant 3 (30) answers with 60 granted in all.
		if ok, err := db.Grant(ctx, al(3, 30, 60)); err != nil || !ok {
			t.Fatal(ok, err)
		}
		a, _, _ := db.Allowance(ctx, "c1")
		if a.Count != 60 || a.Grant != 3 {
			t.Fatalf("after the lost grant 2: %+v, want 60 left", a)
		}
		// The snapshot of grant 3 changes nothing more.
		if ok, _ := db.Adopt(ctx, al(3, 60, 60)); ok {
			t.Fatal("adopted twice")
		}
	})
	t.Run("SnapshotAfterUse", func(t *testing.T) {
		db, _ := MustOpen(t)
		db.Grant(ctx, al(1, 10, 10))
		r := redeemReq("T1", "c1", "", 100)
		r.Facts[0].Allowance = &agentdb.AllowanceUse{Count: 1}
		if _, _, err := db.Commit(ctx, r); err != nil {
			t.Fatal(err)
		}
		// Grant 2 (+5) lost: the snapshot says 15 granted; 9 + 5 left.
		if ok, err := db.Adopt(ctx, al(2, 14, 15)); err != nil || !ok {
			t.Fatal(ok, err)
		}
		a, _, _ := db.Allowance(ctx, "c1")
		if a.Count != 14 {
			t.Fatalf("%+v, want 14 left", a)
		}
	})
}
