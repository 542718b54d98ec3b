package agentdb_test

import (
	"context"
	"errors"
	"testing"

	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/store/agentdb"
)

// TestReEnrolled: a fresh database under an agent id the hub already knows
// learns the hub's watermark from an Ack before it numbers anything, and
// numbers past it (and past every seq the hub lists beyond it).
func TestReEnrolled(t *testing.T) {
	ctx := context.Background()
	t.Run("OK", func(t *testing.T) {
		db, _ := MustOpen(t)
		if heard, err := db.HeardHub(ctx); err != nil || heard {
			t.Fatalf("fresh database heard the hub: %v %v", heard, err)
		}
		if _, err := db.Ack(ctx, 40, []uint64{45, 47}); err != nil {
			t.Fatal(err)
		}
		if heard, err := db.HeardHub(ctx); err != nil || !heard {
			t.Fatalf("after an ack: %v %v", heard, err)
		}
		res, _, err := db.Commit(ctx, redeemReq("T1", "c1", "", 100))
		if err != nil {
			t.Fatal(err)
		}
		if got := seqOf(t, res); got != 48 {
			t.Fatalf("first seq after re-enrolment = %d, want 48", got)
		}
	})
	t.Run("WatermarkZero", func(t *testing.T) {
		// A brand-new agent: the hub holds nothing, the Ack still counts.
		db, _ := MustOpen(t)
		if _, err := db.Ack(ctx, 0, nil); err != nil {
			t.Fatal(err)
		}
		if heard, _ := db.HeardHub(ctx); !heard {
			t.Fatal("watermark 0 not heard")
		}
		res, _, err := db.Commit(ctx, redeemReq("T1", "c1", "", 100))
		if err != nil {
			t.Fatal(err)
		}
		if got := seqOf(t, res); got != 1 {
			t.Fatalf("seq = %d, want 1", got)
		}
	})
	t.Run("ErrBeyondLastSeq", func(t *testing.T) {
		// A forged (or mistaken) Ack{Watermark: 1000000} on a till with
		// three unsent sales deletes none of them.
		db, _ := MustOpen(t)
		for i := range 3 {
			if _, _, err := db.Commit(ctx, redeemReq("T"+string(rune('1'+i)), "c1", "", 100)); err != nil {
				t.Fatal(err)
			}
		}
		for _, ack := range []struct {
			wm     uint64
			beyond []uint64
		}{{1000000, nil}, {0, []uint64{2, 4}}, {4, nil}} {
			n, err := db.Ack(ctx, ack.wm, ack.beyond)
			if !errors.Is(err, agentdb.ErrAckBeyondLastSeq) || n != 0 {
				t.Fatalf("ack %+v = %d %v", ack, n, err)
			}
		}
		if st, _ := db.State(ctx); st.OutboxDepth != 3 {
			t.Fatalf("outbox depth = %d, want 3", st.OutboxDepth)
		}
		if n, err := db.Ack(ctx, 3, nil); err != nil || n != 3 {
			t.Fatalf("a true ack = %d %v", n, err)
		}
	})
	t.Run("ErrOutOfRange", func(t *testing.T) {
		db, _ := MustOpen(t)
		if _, err := db.Ack(ctx, 1, []uint64{1 << 63}); protocol.ErrorCode(err) != protocol.CodeInvalidInput {
			t.Fatalf("huge beyond: %v", err)
		}
	})
}

func TestAllowanceLow(t *testing.T) {
	ctx := context.Background()
	db, _ := MustOpen(t)
	if _, err := db.Grant(ctx, protocol.Allowance{Campaign: "c1", Grant: 1, Count: 8, Amount: -1}); err != nil {
		t.Fatal(err)
	}
	al, _, err := db.Allowance(ctx, "c1")
	if err != nil || al.LastCount != 8 || al.LastAmount != -1 {
		t.Fatalf("allowance = %+v %v", al, err)
	}
	for _, tc := range []struct {
		name string
		a    agentdb.AllowanceLeft
		low  bool
	}{
		{"OK", agentdb.AllowanceLeft{Count: 3, LastCount: 8, Amount: -1, LastAmount: -1}, false},
		{"AtMark", agentdb.AllowanceLeft{Count: 2, LastCount: 8, Amount: -1, LastAmount: -1}, true},
		{"Empty", agentdb.AllowanceLeft{Count: 0, Amount: -1}, true},
		{"UnknownGrant", agentdb.AllowanceLeft{Count: 1, Amount: -1}, false},
		{"AmountLow", agentdb.AllowanceLeft{Count: -1, LastCount: -1, Amount: 100, LastAmount: 1000}, true},
		{"Unlimited", agentdb.AllowanceLeft{Count: -1, Amount: -1}, false},
		{"Expired", agentdb.AllowanceLeft{Count: 5, LastCount: 5, Amount: -1, Expires: 10}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.a.Low(0.25, 20); got != tc.low {
				t.Fatalf("Low(%+v) = %v", tc.a, got)
			}
		})
	}
}
