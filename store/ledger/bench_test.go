package ledger_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/store"
	"github.com/punchcard/punchcard/store/ledger"
	"github.com/punchcard/punchcard/store/ledger/ledgertest"
)

// benchRedemptions are n redemptions of agent starting at seq from, a third
// of them with a (multi-use) code and a customer, like a real till's.
func benchRedemptions(agent protocol.AgentID, from uint64, n int) []protocol.Redemption {
	out := make([]protocol.Redemption, n)
	for i := range out {
		s := from + uint64(i)
		r := protocol.Redemption{ID: protocol.RedemptionID{Agent: agent, Seq: s}, Kind: protocol.KindRedeem, Tenant: tenant,
			Store: "store-1", TxnID: fmt.Sprintf("txn-%d", s), Campaign: "loyalty", Currency: "EUR", Discount: 150, OrderTot: 2599,
			HLC: ledger.HLCFromTime(t0), Offline: true}
		if s%3 == 0 {
			r.Code, r.Customer = "MULTI", protocol.CustomerID(fmt.Sprintf("cust-%d", s%500))
		}
		out[i] = r
	}
	return out
}

// BenchmarkApplyBatch is the ledger alone: one op is one redemption,
// applied in batches of protocol.DefaultBatchSize.
func BenchmarkApplyBatch(b *testing.B) {
	ctx := context.Background()
	l, _ := MustOpen(b)
	const size = protocol.DefaultBatchSize
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := ledgertest.CPUTime()
	var seq uint64 = 1
	for done := 0; done < b.N; done += size {
		n := min(size, b.N-done)
		if _, _, err := l.ApplyBatch(ctx, tenant, "till-1", benchRedemptions("till-1", seq, n)); err != nil {
			b.Fatal(err)
		}
		seq += uint64(n)
	}
	b.StopTimer()
	b.ReportMetric(float64((ledgertest.CPUTime()-cpu0).Nanoseconds())/float64(b.N), "cpu-ns/op")
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "redemptions/s")
}

// BenchmarkPlainInsert is the baseline: the same rows as plain INSERTs into
// a table without indexes, in transactions of the same size, on the same
// kind of database (store.Open, WAL, synchronous=FULL).
func BenchmarkPlainInsert(b *testing.B) {
	ctx := context.Background()
	db, err := store.Open(ctx, filepath.Join(b.TempDir(), "plain.db"), store.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	if err := ledgertest.PlainSchema(ctx, db); err != nil {
		b.Fatal(err)
	}
	const size = protocol.DefaultBatchSize
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := ledgertest.CPUTime()
	var seq uint64 = 1
	for done := 0; done < b.N; done += size {
		n := min(size, b.N-done)
		if err := ledgertest.PlainInsert(ctx, db, benchRedemptions("till-1", seq, n)); err != nil {
			b.Fatal(err)
		}
		seq += uint64(n)
	}
	b.StopTimer()
	b.ReportMetric(float64((ledgertest.CPUTime()-cpu0).Nanoseconds())/float64(b.N), "cpu-ns/op")
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "redemptions/s")
}
