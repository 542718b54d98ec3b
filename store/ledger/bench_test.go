package ledger_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

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
// applied in batches of protocol.DefaultBatchSize (one transaction each).
// The same batches are also inserted, interleaved batch by batch so that
// both see the same machine, into the plain baseline table
// (ledgertest.PlainSchema: same row width, same keys, no secondary indexes,
// no balances) in a database of its own with the same pragmas
// (store.Open, WAL, synchronous=FULL), in transactions of the same size.
// ns/op is the ledger's time only; plain-ns/op the baseline's, and ratio
// is plain-ns/op ÷ ns/op, i.e. the ledger's redemptions/s ÷ the baseline's
// rows/s. ratio-multirow compares with a third database filled with
// 64-row INSERTs (ledgertest.PlainInsertRows), the technique the ledger's
// journal uses: the stricter yardstick.
func BenchmarkApplyBatch(b *testing.B) {
	ctx := context.Background()
	l, _ := MustOpen(b)
	db, err := store.Open(ctx, filepath.Join(b.TempDir(), "plain.db"), store.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	if err := ledgertest.PlainSchema(ctx, db); err != nil {
		b.Fatal(err)
	}
	dbMulti, err := store.Open(ctx, filepath.Join(b.TempDir(), "plain-multi.db"), store.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer dbMulti.Close()
	if err := ledgertest.PlainSchema(ctx, dbMulti); err != nil {
		b.Fatal(err)
	}
	const size = protocol.DefaultBatchSize
	b.ReportAllocs()
	b.ResetTimer()
	var ledgerCPU, plainTime, multiTime time.Duration
	var seq uint64 = 1
	for done := 0; done < b.N; done += size {
		n := min(size, b.N-done)
		rs := benchRedemptions("till-1", seq, n)
		cpu0 := ledgertest.CPUTime()
		if _, _, err := l.ApplyBatch(ctx, tenant, "till-1", rs); err != nil {
			b.Fatal(err)
		}
		ledgerCPU += ledgertest.CPUTime() - cpu0
		b.StopTimer()
		t0 := time.Now()
		if err := ledgertest.PlainInsert(ctx, db, rs); err != nil {
			b.Fatal(err)
		}
		plainTime += time.Since(t0)
		t0 = time.Now()
		if err := ledgertest.PlainInsertRows(ctx, dbMulti, rs, 64); err != nil {
			b.Fatal(err)
		}
		multiTime += time.Since(t0)
		b.StartTimer()
		seq += uint64(n)
	}
	b.StopTimer()
	b.ReportMetric(float64(ledgerCPU.Nanoseconds())/float64(b.N), "cpu-ns/op")
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "redemptions/s")
	b.ReportMetric(float64(plainTime.Nanoseconds())/float64(b.N), "plain-ns/op")
	b.ReportMetric(float64(b.N)/plainTime.Seconds(), "plain-rows/s")
	b.ReportMetric(plainTime.Seconds()/b.Elapsed().Seconds(), "ratio")
	b.ReportMetric(multiTime.Seconds()/b.Elapsed().Seconds(), "ratio-multirow")
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
