package ledger_test

import (
	"context"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/protocol/segment"
	"github.com/punchcard/punchcard/store/ledger"
)

// mustOpenSegments is MustOpen with segment definitions.
func mustOpenSegments(tb testing.TB, defs ...segment.Definition) (*ledger.Ledger, *clock, *ledger.MemSegments) {
	tb.Helper()
	c := &clock{t: t0}
	ms := &ledger.MemSegments{}
	ms.Set(tenant, defs...)
	l, err := ledger.Open(context.Background(), filepath.Join(tb.TempDir(), "hub.db"), ledger.Options{Facts: MustFacts(tb), Now: c.Now, Segments: ms})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if rep, err := l.Verify(context.Background()); err != nil || !rep.OK() {
			tb.Errorf("verify: %v %v", err, rep.Diffs)
		}
		l.Close()
	})
	return l, c, ms
}

func buyAt(agent protocol.AgentID, seq uint64, txn string, at time.Time, total int64, kind protocol.RedemptionKind) protocol.Redemption {
	return red(agent, seq, func(r *protocol.Redemption) {
		r.Customer, r.TxnID, r.OrderTot, r.HLC, r.Kind = "c1", txn, total, ledger.HLCFromTime(at), kind
		if kind == protocol.KindEarn {
			r.Discount, r.Points = 0, 5
		}
	})
}

// TestPurchaseHistory: the ledger keeps each customer's orders from the
// tills' facts, once per order (a sale's several facts, a resent batch),
// and recomputes the customer's segments in the fact's transaction.
func TestPurchaseHistory(t *testing.T) {
	ctx := context.Background()
	big := segment.Definition{ID: "big", Rules: []segment.Rule{{Kind: segment.KindSpend, MinSpend: 1000, Days: 30}}}
	atA := segment.Definition{ID: "at-a", Rules: []segment.Rule{{Kind: segment.KindStore, Store: "store-a1"}}}
	l, clk, _ := mustOpenSegments(t, big, atA)
	clk.Add(2 * time.Hour)
	b1 := []protocol.Redemption{buyAt("a1", 1, "t1", t0, 600, protocol.KindRedeem), buyAt("a1", 2, "t1", t0, 600, protocol.KindEarn)}
	if _, _, err := l.ApplyBatch(ctx, tenant, "a1", b1); err != nil {
		t.Fatal(err)
	}
	if _, _, err := l.ApplyBatch(ctx, tenant, "a1", b1); err != nil { // resent
		t.Fatal(err)
	}
	got, err := l.CustomerSegments(ctx, tenant, "c1")
	if err != nil || !slices.Equal(got, []string{"at-a"}) {
		t.Fatalf("segments after €6 = %v, %v; want [at-a]", got, err)
	}
	if _, _, err := l.ApplyBatch(ctx, tenant, "a2", []protocol.Redemption{buyAt("a2", 1, "t2", t0.Add(time.Hour), 400, protocol.KindRedeem)}); err != nil {
		t.Fatal(err)
	}
	got, _ = l.CustomerSegments(ctx, tenant, "c1")
	if !slices.Equal(got, []string{"at-a", "big"}) {
		t.Fatalf("segments after €10 = %v, want [at-a big]", got)
	}
	ps, err := l.Purchases(ctx, tenant, "c1", 0)
	if err != nil || len(ps) != 2 || ps[0].Value != 400 || ps[1].Value != 600 || ps[1].Store != "store-a1" || !ps[1].At.Equal(t0) {
		t.Fatalf("purchases %+v, %v", ps, err)
	}
	// A rollback does not remove the purchase (documented).
	rb := red("a1", 3, func(r *protocol.Redemption) {
		r.Kind, r.Customer, r.Ref, r.Discount = protocol.KindRollback, "c1", &protocol.RedemptionID{Agent: "a1", Seq: 1}, 0
	})
	if _, _, err := l.ApplyBatch(ctx, tenant, "a1", []protocol.Redemption{rb}); err != nil {
		t.Fatal(err)
	}
	if ps, _ := l.Purchases(ctx, tenant, "c1", 0); len(ps) != 2 {
		t.Fatalf("after rollback %d purchases", len(ps))
	}
}

// TestPurchaseHistoryWindowEdge: the spend since an instant inside a UTC
// day counts that day's purchases from the instant on exactly, and the
// whole days after it from their buckets.
func TestPurchaseHistoryWindowEdge(t *testing.T) {
	ctx := context.Background()
	l, clk, _ := mustOpenSegments(t)
	clk.Add(72 * time.Hour)
	since := time.Date(2026, 6, 1, 22, 0, 0, 0, time.UTC) // Berlin midnight of June 2
	fs := []protocol.Redemption{
		buyAt("a1", 1, "t1", since.Add(-time.Millisecond), 1, protocol.KindRedeem),
		buyAt("a1", 2, "t2", since, 10, protocol.KindRedeem),
		buyAt("a1", 3, "t3", since.Add(90*time.Minute), 100, protocol.KindRedeem), // same UTC day, after since
		buyAt("a1", 4, "t4", since.Add(48*time.Hour), 1000, protocol.KindRedeem),
	}
	if _, _, err := l.ApplyBatch(ctx, tenant, "a1", fs); err != nil {
		t.Fatal(err)
	}
	q := segment.Query{SpendSince: []time.Time{since, since.Add(-time.Hour), time.Date(2026, 6, 2, 0, 0, 0, 0, time.UTC)}, Stores: []protocol.StoreID{"store-a1", "nowhere"}}
	h, err := l.PurchaseHistory(ctx, tenant, "c1", q)
	if err != nil {
		t.Fatal(err)
	}
	if want := []int64{1110, 1111, 1000}; !slices.Equal(h.Spend, want) {
		t.Fatalf("spend %v, want %v", h.Spend, want)
	}
	if !h.Last.Equal(since.Add(48*time.Hour)) || len(h.Stores) != 1 || !h.Stores["store-a1"].Equal(h.Last) {
		t.Fatalf("history %+v", h)
	}
	// A customer who never bought.
	if h, err := l.PurchaseHistory(ctx, tenant, "c2", q); err != nil || !h.Last.IsZero() || !slices.Equal(h.Spend, []int64{0, 0, 0}) {
		t.Fatalf("no history: %+v %v", h, err)
	}
}

// TestSetSegmentsIdempotent: the periodic run's write changes only what
// changed.
func TestSetSegmentsIdempotent(t *testing.T) {
	ctx := context.Background()
	l, clk, _ := mustOpenSegments(t)
	us := []segment.Update{{Customer: "c1", Segments: []string{"a", "b"}}, {Customer: "c2"}}
	if n, err := l.SetSegments(ctx, tenant, us, clk.Now()); err != nil || n != 1 {
		t.Fatalf("first run changed %d, %v", n, err)
	}
	if n, err := l.SetSegments(ctx, tenant, us, clk.Now()); err != nil || n != 0 {
		t.Fatalf("second run changed %d, %v", n, err)
	}
	us[0].Segments = []string{"b", "c"}
	if n, _ := l.SetSegments(ctx, tenant, us, clk.Now()); n != 1 {
		t.Fatalf("change: %d", n)
	}
	if got, _ := l.CustomerSegments(ctx, tenant, "c1"); !slices.Equal(got, []string{"b", "c"}) {
		t.Fatalf("stored %v", got)
	}
	if m, _ := l.SegmentMembers(ctx, tenant, "c", "", 10); !slices.Equal(m, []protocol.CustomerID{"c1"}) {
		t.Fatalf("members %v", m)
	}
}
