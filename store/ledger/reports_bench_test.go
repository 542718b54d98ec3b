package ledger_test

import (
	"context"
	"testing"
	"time"

	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/store/ledger"
	"github.com/punchcard/punchcard/store/ledger/ledgertest"
)

// BenchmarkReportIndexApply is the write cost of the reports' covering
// index (ledger_018_reports.sql: ledger_journal_report): the same
// batches, every redemption with a customer, applied interleaved batch by
// batch to a ledger with the index and to one with it dropped, in the same
// run. One op is one redemption; cpu-ns/op is the indexed ledger's CPU,
// base-cpu-ns/op the other's, and cost is their ratio (1.00 = free).
func BenchmarkReportIndexApply(b *testing.B) {
	ctx := context.Background()
	with, _ := MustOpen(b)
	without, _ := MustOpen(b)
	if _, err := without.DB().ExecContext(ctx, `DROP INDEX ledger_journal_report`); err != nil {
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
