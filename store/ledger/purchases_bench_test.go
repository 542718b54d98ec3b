package ledger_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/protocol/segment"
	"github.com/punchcard/punchcard/store/ledger"
)

// benchDefs are a tenant's segments of every rule kind.
var benchDefs = []segment.Definition{
	{ID: "big", TimeZone: "Europe/Berlin", Rules: []segment.Rule{{Kind: segment.KindSpend, MinSpend: 1000_00, Days: 365}}},
	{ID: "month", TimeZone: "Europe/Berlin", Rules: []segment.Rule{{Kind: segment.KindSpend, MinSpend: 100_00, Days: 30}}},
	{ID: "downtown", Rules: []segment.Rule{{Kind: segment.KindStore, Store: "store-t0"}}},
	{ID: "lapsed", Rules: []segment.Rule{{Kind: segment.KindLapsed, Days: 90}}},
	{ID: "bday", Rules: []segment.Rule{{Kind: segment.KindBirthdayMonth}}},
}

func openSegBench(b *testing.B, segs bool) (*ledger.Ledger, *clock) {
	b.Helper()
	c := &clock{t: t0}
	opts := ledger.Options{Facts: MustFacts(b), Now: c.Now}
	if segs {
		ms := &ledger.MemSegments{}
		ms.Set(tenant, benchDefs...)
		opts.Segments = ms
	}
	l, err := ledger.Open(context.Background(), filepath.Join(b.TempDir(), "hub.db"), opts)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { l.Close() })
	return l, c
}

// sale is a till's message of one sale: a redeem and an earn of the same
// transaction for a customer (2 facts, one purchase).
func sale(till int, seq uint64, cust int, at time.Time) []protocol.Redemption {
	ag := protocol.AgentID(fmt.Sprintf("t%d", till))
	txn := fmt.Sprintf("%s-%d", ag, seq)
	mk := func(s uint64, k protocol.RedemptionKind) protocol.Redemption {
		return red(ag, s, func(r *protocol.Redemption) {
			r.Customer, r.TxnID, r.Kind, r.HLC, r.OrderTot = protocol.CustomerID(fmt.Sprintf("c%d", cust)), txn, k, ledger.HLCFromTime(at), 42_00
			if k == protocol.KindEarn {
				r.Discount, r.Points = 0, 42
			}
		})
	}
	return []protocol.Redemption{mk(seq, protocol.KindRedeem), mk(seq+1, protocol.KindEarn)}
}

// BenchmarkSegmentsApply: ingest of sales (50 tills, 2,000 customers, a
// redeem and an earn per message, a history growing by the run) with the
// purchase history and the on-fact segment recomputation (segments=5)
// against the same without segment definitions (baseline, segments=0:
// the purchase history rows only).
func BenchmarkSegmentsApply(b *testing.B) {
	for _, segs := range []bool{false, true} {
		n := 0
		if segs {
			n = len(benchDefs)
		}
		b.Run(fmt.Sprintf("segments=%d", n), func(b *testing.B) {
			ctx := context.Background()
			l, clk := openSegBench(b, segs)
			seqs := make([]uint64, 50)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				till := i % 50
				seqs[till] += 2
				at := t0.Add(time.Duration(i) * time.Minute)
				clk.Add(time.Minute)
				if _, _, err := l.ApplyBatch(ctx, tenant, protocol.AgentID(fmt.Sprintf("t%d", till)), sale(till, seqs[till]-1, (i*7919)%2000, at)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkSegmentDecision: the history one online decision reads for
// all rule kinds (spend in 365 and 30 days, a store, last purchase), for
// a customer with 10 orders over ten years (baseline), a daily buyer of
// one year (365 orders) and of ten years (3,650): the cost follows the
// days inside the windows, not the history (the last two match).
func BenchmarkSegmentDecision(b *testing.B) {
	for _, tc := range []struct{ orders, years int }{{10, 10}, {365, 1}, {3650, 10}} {
		orders, years := tc.orders, tc.years
		b.Run(fmt.Sprintf("orders=%d/years=%d", orders, years), func(b *testing.B) {
			ctx := context.Background()
			l, clk := openSegBench(b, false)
			clk.Add(10 * 366 * 24 * time.Hour)
			now := clk.Now()
			var rs []protocol.Redemption
			for i := 0; i < orders; i++ {
				at := now.Add(-time.Duration(i) * time.Duration(years) * 365 * 24 * time.Hour / time.Duration(orders))
				rs = append(rs, red("t0", uint64(i+1), func(r *protocol.Redemption) {
					r.Customer, r.TxnID, r.HLC, r.OrderTot = "c1", fmt.Sprintf("x%d", i), ledger.HLCFromTime(at), 42_00
				}))
				if len(rs) == 500 || i == orders-1 {
					if _, _, err := l.ApplyBatch(ctx, tenant, "t0", rs); err != nil {
						b.Fatal(err)
					}
					rs = rs[:0]
				}
			}
			q := segment.Need(benchDefs, now)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				h, err := l.PurchaseHistory(ctx, tenant, "c1", q)
				if err != nil {
					b.Fatal(err)
				}
				if got := segment.Of(benchDefs, q, h, nil, now); len(got) == 0 {
					b.Fatal("in no segment")
				}
			}
		})
	}
}
