package agent_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/punchcard/punchcard/agent"
	"github.com/punchcard/punchcard/agent/agenttest"
	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/store"
	"github.com/punchcard/punchcard/store/agentdb"
)

// BenchmarkDiskPerSale measures the till's disk per sale (database file
// plus WAL) over b.N sales made at 1,000 a day on a simulated clock: a
// five-line basket with a multi-use code and a loyalty customer, acked by
// the hub every 50 sales, pruned every simulated hour. Run it past the
// redemption retention window (35 days = 35,000 sales) for the steady
// state: make bench-disk runs 100,000. "retention=off" is the same run
// without pruning, the baseline of the ratio.
//
// Metrics: B/retained-sale is the growth of the files since the empty,
// synced till divided by the sales still kept (those of the last 35 days);
// B/sale-2nd-half is how much the files grew per sale over the second
// half of the run (0 once pruning keeps up); MB-db and MB-wal the sizes
// after a final TRUNCATE checkpoint, MB-wal-max the largest WAL seen every
// 1,000 sales while selling (bounded by agentdb.DefaultWALLimit).
func BenchmarkDiskPerSale(b *testing.B) {
	for _, prune := range []bool{true, false} {
		name := "retention=on"
		if !prune {
			name = "retention=off"
		}
		b.Run(name, func(b *testing.B) { benchDisk(b, prune) })
	}
}

func benchDisk(b *testing.B, prune bool) {
	ctx := context.Background()
	const perDay = 1000
	step := 24 * time.Hour / perDay
	now := time.Now()
	clock := func() time.Time { return now }
	opts := agentdb.Options{Now: clock, Sync: store.SyncNormal, PruneEvery: -1} // bytes do not depend on fsync
	db, err := agentdb.Open(ctx, filepath.Join(b.TempDir(), "agent.db"), opts)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	a, err := agent.New(ctx, agenttest.Tenant, agenttest.Agent, db)
	if err != nil {
		b.Fatal(err)
	}
	a.Logger, a.Now = discardLogger(), clock
	snap := agenttest.Small(1, -1)
	snap.Envelope.MaxStaleSeconds = -1
	if _, err := a.ApplySnapshot(ctx, agenttest.Encode(b, snap), "disk"); err != nil {
		b.Fatal(err)
	}
	size := func() (int64, int64) {
		if _, err := db.Checkpoint(ctx); err != nil {
			b.Fatal(err)
		}
		return db.Size()
	}
	base, _ := size()
	var half, walMax int64
	b.ResetTimer()
	for i := range b.N {
		o := protocol.Order{ID: fmt.Sprintf("o%d", i), Currency: "EUR"}
		for j := range 5 {
			o.Lines = append(o.Lines, protocol.Line{SKU: fmt.Sprintf("sku-%d", (i+j)%400), Category: "food", Quantity: int64(1 + j%3), UnitPrice: int64(199 + 100*j)})
		}
		r := agent.RedeemRequest{TxnID: fmt.Sprintf("POS-%08d", i), Basket: agent.Basket{Order: o,
			Customer: &protocol.Customer{ID: protocol.CustomerID(fmt.Sprintf("cust-%d", i%5000)), Tier: "gold"}, Redeemables: []agent.Input{{Code: agenttest.CodeSummer}}}}
		rc, err := a.Redeem(ctx, r)
		if err != nil {
			b.Fatalf("sale %d: %v", i, err)
		}
		if i%50 == 49 {
			if _, err := db.Ack(ctx, rc.Facts[len(rc.Facts)-1].ID.Seq, nil); err != nil {
				b.Fatal(err)
			}
		}
		if prune && i%42 == 41 {
			if _, err := db.Prune(ctx); err != nil {
				b.Fatal(err)
			}
		}
		if i%1000 == 999 {
			_, w := db.Size()
			walMax = max(walMax, w)
		}
		if i == b.N/2 {
			d, w := size()
			half = d + w
		}
		now = now.Add(step)
	}
	b.StopTimer()
	d, w := size()
	kept := min(b.N, int(agentdb.DefaultRedemptionRetention/step))
	if !prune {
		kept = b.N
	}
	b.ReportMetric(float64(d+w-base)/float64(kept), "B/retained-sale")
	b.ReportMetric(float64(d+w-base)/float64(b.N), "B/sale")
	if b.N > 1 {
		b.ReportMetric(float64(d+w-half)/float64(b.N-b.N/2), "B/sale-2nd-half")
	}
	b.ReportMetric(float64(d)/(1<<20), "MB-db")
	b.ReportMetric(float64(w)/(1<<20), "MB-wal")
	b.ReportMetric(float64(walMax)/(1<<20), "MB-wal-max")
}
