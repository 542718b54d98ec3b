package ledger_test

import (
	"context"
	"strconv"
	"testing"

	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/store/ledger"
)

func TestCodeStates(t *testing.T) {
	ctx := context.Background()
	l, _ := MustOpen(t)
	t.Run("OK/Empty", func(t *testing.T) {
		st, err := l.CodeStates(ctx, tenant)
		m, merr := l.JournalMark(ctx)
		if err != nil || merr != nil || len(st) != 0 || m != 0 {
			t.Fatalf("empty ledger: %v %v %v mark %d", st, err, merr, m)
		}
	})
	gift := red("till-1", 2, func(r *protocol.Redemption) { r.Code, r.Spend, r.Discount = "GIFT-0001", 1200, 0 })
	rs := []protocol.Redemption{red("till-1", 1, func(r *protocol.Redemption) { r.Code = "ONCE-1" }), gift,
		red("till-1", 3, func(r *protocol.Redemption) { r.Code = "MULTI" }), red("till-1", 4, func(r *protocol.Redemption) { r.Code = "MULTI" })}
	if _, _, err := l.ApplyBatch(ctx, tenant, "till-1", rs); err != nil {
		t.Fatal(err)
	}
	// Another tenant's uses stay out.
	other := red("till-9", 1, func(r *protocol.Redemption) { r.Tenant, r.Code = "other", "ONCE-1" })
	if _, _, err := l.ApplyBatch(ctx, "other", "till-9", []protocol.Redemption{other}); err != nil {
		t.Fatal(err)
	}
	m1, _ := l.JournalMark(ctx)
	t.Run("OK", func(t *testing.T) {
		st, err := l.CodeStates(ctx, tenant)
		if err != nil {
			t.Fatal(err)
		}
		want := map[protocol.CodeID]ledger.CodeState{"ONCE-1": {Used: 1}, "GIFT-0001": {Used: 1, Spent: 1200}, "MULTI": {Used: 2}}
		if len(st) != len(want) {
			t.Fatalf("states %v, want %v", st, want)
		}
		for k, v := range want {
			if st[k] != v {
				t.Fatalf("%s: %+v, want %+v", k, st[k], v)
			}
		}
	})
	t.Run("OK/RollbackKeepsRow", func(t *testing.T) {
		if _, _, err := l.ApplyBatch(ctx, tenant, "till-1", []protocol.Redemption{rollbackOf("till-1", 5, gift.ID, gift)}); err != nil {
			t.Fatal(err)
		}
		st, _ := l.CodeStates(ctx, tenant)
		if g, ok := st["GIFT-0001"]; !ok || g != (ledger.CodeState{}) {
			t.Fatalf("after rollback: %+v %v, want a zero row", g, ok)
		}
		if m2, _ := l.JournalMark(ctx); m2 <= m1 {
			t.Fatalf("mark %d did not move past %d", m2, m1)
		}
	})
}

func BenchmarkCodeStates(b *testing.B) {
	ctx := context.Background()
	l, _ := MustOpen(b)
	rs := make([]protocol.Redemption, 1000)
	for i := range rs {
		rs[i] = red("till-1", uint64(i+1), func(r *protocol.Redemption) { r.Code = protocol.CodeID("C-" + strconv.Itoa(i)) })
	}
	if _, _, err := l.ApplyBatch(ctx, tenant, "till-1", rs); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if st, err := l.CodeStates(ctx, tenant); err != nil || len(st) != 1000 {
			b.Fatal(len(st), err)
		}
	}
}
