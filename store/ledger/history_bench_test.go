package ledger_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/store/ledger"
	"github.com/punchcard/punchcard/store/ledger/ledgertest"
)

// customerRedemptions are benchRedemptions with a customer on every one
// (customers cust-0 … cust-(customers-1)): the worst case for the history
// index's write cost, and a history to read.
func customerRedemptions(agent protocol.AgentID, from uint64, n, customers int) []protocol.Redemption {
	rs := benchRedemptions(agent, from, n)
	for i := range rs {
		rs[i].Customer = protocol.CustomerID(fmt.Sprintf("cust-%d", (from+uint64(i))%uint64(customers)))
	}
	return rs
}

// BenchmarkHistoryIndexApply is the write cost of the customer history's
// index (ledger_012_adjustments.sql: ledger_journal_customer_id): the same
// batches, every redemption with a customer, applied interleaved batch by
// batch to a ledger with the index and to one with it dropped, in the same
// run. One op is one redemption; cpu-ns/op is the indexed ledger's CPU,
// base-cpu-ns/op the other's, and cost is their ratio (1.00 = free).
func BenchmarkHistoryIndexApply(b *testing.B) {
	benchIndexApply(b, "ledger_journal_customer_id")
}

// benchIndexApply is the write cost of one index: the same batches, every
// redemption with a customer, applied interleaved batch by batch to a
// ledger with the index and to one with it dropped, in the same run. One
// op is one redemption; cpu-ns/op is the indexed ledger's CPU,
// base-cpu-ns/op the other's, and cost is their ratio (1.00 = free).
func benchIndexApply(b *testing.B, index string) {
	benchCutApply(b, "DROP INDEX "+index)
}

// benchCutApply is benchIndexApply with the other ledger changed by cut
// (statements run on it before the first batch) instead of an index
// dropped: an index replaced by a narrower one, say.
func benchCutApply(b *testing.B, cut string) {
	ctx := context.Background()
	with, _ := MustOpen(b)
	without, _ := MustOpen(b)
	if _, err := without.DB().ExecContext(ctx, cut); err != nil {
		b.Fatal(err)
	}
	const size = protocol.DefaultBatchSize
	var cpuWith, cpuWithout time.Duration
	var seq uint64 = 1
	b.ResetTimer()
	for done := 0; done < b.N; done += size {
		n := min(size, b.N-done)
		rs := customerRedemptions("till-1", seq, n, 500)
		for i, l := range []*ledger.Ledger{with, without} {
			if (done/size)%2 == 1 { // alternate which goes first
				l = []*ledger.Ledger{without, with}[i]
			}
			c0 := ledgertest.CPUTime()
			if _, _, err := l.ApplyBatch(ctx, tenant, "till-1", rs); err != nil {
				b.Fatal(err)
			}
			if l == with {
				cpuWith += ledgertest.CPUTime() - c0
			} else {
				cpuWithout += ledgertest.CPUTime() - c0
			}
		}
		seq += uint64(n)
	}
	b.StopTimer()
	b.ReportMetric(float64(cpuWith.Nanoseconds())/float64(b.N), "cpu-ns/op")
	b.ReportMetric(float64(cpuWithout.Nanoseconds())/float64(b.N), "base-cpu-ns/op")
	b.ReportMetric(cpuWith.Seconds()/cpuWithout.Seconds(), "cost")
}

// BenchmarkCustomerActivity reads one page (50) of a customer's activity,
// newest first, from a journal of 100,000 redemptions of 500 customers
// (200 each): the first page, and a page deep in the history (cursor
// halfway). Same run, the same customer: the data export's read of a
// page (CustomerEntries, oldest first, which has no cursor-friendly
// index of its own), as baseline; ratio is export ÷ activity.
func BenchmarkCustomerActivity(b *testing.B) {
	ctx := context.Background()
	l, _ := MustOpen(b)
	const total, customers = 100_000, 500
	for seq := uint64(1); seq <= total; seq += protocol.DefaultBatchSize {
		if _, _, err := l.ApplyBatch(ctx, tenant, "till-1", customerRedemptions("till-1", seq, protocol.DefaultBatchSize, customers)); err != nil {
			b.Fatal(err)
		}
	}
	first, err := l.CustomerActivity(ctx, tenant, "cust-7", ledger.HistoryQuery{Limit: 100})
	if err != nil || len(first.Entries) != 100 {
		b.Fatal(len(first.Entries), err)
	}
	for _, c := range []struct {
		name   string
		before int64
	}{{"first", 0}, {"deep", first.Entries[99].ID}} {
		b.Run(c.name, func(b *testing.B) {
			var act, exp time.Duration
			for i := 0; i < b.N; i++ {
				cu := protocol.CustomerID(fmt.Sprintf("cust-%d", i%customers))
				t0 := time.Now()
				p, err := l.CustomerActivity(ctx, tenant, cu, ledger.HistoryQuery{BeforeEntry: c.before, Limit: 50})
				if err != nil || len(p.Entries) == 0 {
					b.Fatal(len(p.Entries), err)
				}
				act += time.Since(t0)
				t0 = time.Now()
				es, err := l.CustomerEntries(ctx, tenant, cu, 0, 50)
				if err != nil || len(es) != 50 {
					b.Fatal(len(es), err)
				}
				exp += time.Since(t0)
			}
			b.ReportMetric(float64(act.Nanoseconds())/float64(b.N), "page-ns/op")
			b.ReportMetric(float64(exp.Nanoseconds())/float64(b.N), "export-page-ns/op")
			b.ReportMetric(exp.Seconds()/act.Seconds(), "ratio")
		})
	}
}
