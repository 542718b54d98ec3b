package ledger_test

import (
	"testing"
)

// BenchmarkReportIndexApply is the write cost of the reports' covering
// index (ledger_018_reports.sql: ledger_journal_report): the same
// batches, every redemption with a customer, applied interleaved batch by
// batch to a ledger with the index and to one with it dropped, in the same
// run. One op is one redemption; cpu-ns/op is the indexed ledger's CPU,
// base-cpu-ns/op the other's, and cost is their ratio (1.00 = free).
func BenchmarkReportIndexApply(b *testing.B) {
	benchIndexApply(b, "ledger_journal_report")
}

// BenchmarkReportIndexNarrowApply is what the reports' covering index
// costs over a narrow one of the same order, (tenant, hlc) and the rowid
// (the reports would then read each fact's row from the table): cost is
// the covering index's CPU over the narrow one's (1.00 = free).
func BenchmarkReportIndexNarrowApply(b *testing.B) {
	benchCutApply(b, `DROP INDEX ledger_journal_report; CREATE INDEX ledger_journal_report ON ledger_journal (tenant, hlc)`)
}
