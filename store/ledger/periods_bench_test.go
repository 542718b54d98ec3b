package ledger_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/store/ledger"
)

// BenchmarkEarnPeriods is the cost of keeping per-customer period totals
// (ledger_007): one op is one till earn fact applied in batches of 64,
// each earning customer of 2,000 on one of 400 days, so that the period
// tables grow with the run. The same batches without Cap go, interleaved
// batch by batch, into a second ledger: plain-ns/op is its time, ratio is
// ns/op ÷ plain-ns/op (the overhead of the period totals, same run).
func BenchmarkEarnPeriods(b *testing.B) {
	ctx := context.Background()
	capped, _ := MustOpen(b)
	plain, _ := MustOpen(b)
	const batch = 64
	mk := func(seq uint64, withCap bool) []protocol.Redemption {
		rs := make([]protocol.Redemption, batch)
		for i := range rs {
			s := seq + uint64(i)
			day := int64(s/batch) % 400
			r := protocol.Redemption{ID: protocol.RedemptionID{Agent: "till-1", Seq: s}, Kind: protocol.KindEarn, Tenant: tenant,
				Store: "store-1", TxnID: fmt.Sprintf("txn-%d", s), Campaign: "club", Currency: "EUR", Points: 7, OrderTot: 2599,
				Customer: protocol.CustomerID(fmt.Sprintf("cust-%d", s%2000)), HLC: ledger.HLCFromTime(t0), Offline: true}
			if withCap {
				r.Cap = &protocol.EarnCap{Rule: "spend", Period: "day", Start: t0.Unix() + day*86400, Limit: 1000}
			}
			rs[i] = r
		}
		return rs
	}
	var tCapped, tPlain time.Duration
	seq := uint64(1)
	b.ResetTimer()
	for n := 0; n < b.N; n += batch {
		for _, side := range []struct {
			l   *ledger.Ledger
			cap bool
			d   *time.Duration
		}{{capped, true, &tCapped}, {plain, false, &tPlain}} {
			rs := mk(seq, side.cap)
			start := time.Now()
			res, err := side.l.ApplyBatches(ctx, []ledger.Batch{{Tenant: tenant, Agent: "till-1", Redemptions: rs}})
			*side.d += time.Since(start)
			if err != nil || res[0].Err != nil {
				b.Fatal(err, res)
			}
		}
		seq += batch
	}
	b.StopTimer()
	ops := float64(seq - 1)
	b.ReportMetric(float64(tCapped.Nanoseconds())/ops, "capped-ns/earn")
	b.ReportMetric(float64(tPlain.Nanoseconds())/ops, "plain-ns/earn")
	b.ReportMetric(float64(tCapped)/float64(tPlain), "ratio")
}
