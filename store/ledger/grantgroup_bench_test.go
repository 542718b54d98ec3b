package ledger_test

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/store/ledger"
)

// BenchmarkGrantGroups: allowance grants from 32 concurrent tills (each
// request a new till, so each one writes) while one ingest-like writer
// applies 2-fact batches of other tills, on a ledger at synchronous=FULL
// (the hub's default): grants a transaction each (group 1, the shape
// before group commit) and group-committed (group 64), alternated in one
// process, rounds of 640 grants. Reports the medians per round of
// grants/s, wall ms per grant, the ingest writer's wall ms per batch
// meanwhile, process CPU µs per grant, and the group/one ratios.
func BenchmarkGrantGroups(b *testing.B) {
	ctx := context.Background()
	f := MustFacts(b)
	f.SetCampaign(tenant, "fleet", ledger.CampaignFacts{MaxCount: 1 << 40, Currency: "EUR"})
	l, err := ledger.Open(ctx, filepath.Join(b.TempDir(), "hub.db"), ledger.Options{Facts: f})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { l.Close() })
	const clients, perRound = 32, 640
	const rate = 300.0 // grants offered per second
	type figures struct{ grantMs, batchMs, cpuUs, batchCPUUs []float64 }
	var one, group figures
	next := 0
	seqs := map[protocol.AgentID]uint64{}
	round := func(groupMax int, fig *figures) {
		restore := ledger.SetGrantGroupMax(groupMax)
		defer restore()
		var stop atomic.Bool
		var batches int
		var batchWall time.Duration
		ingestDone := make(chan struct{})
		go func() { // the ingest writer: 2-fact batches of 50 tills
			defer close(ingestDone)
			for i := 0; !stop.Load(); i++ {
				a := protocol.AgentID(fmt.Sprintf("pos-%02d", i%50))
				seqs[a] += 2
				t0 := time.Now()
				if _, _, err := l.ApplyBatch(ctx, tenant, a, reds(a, seqs[a]-1, seqs[a])); err != nil {
					b.Error(err)
					return
				}
				batchWall += time.Since(t0)
				batches++
			}
		}()
		base := next
		next += perRound
		var n, grantNs atomic.Int64
		var wg sync.WaitGroup
		c0, t0 := processCPU(), time.Now()
		for range clients {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					i := n.Add(1) - 1
					if i >= perRound {
						return
					}
					time.Sleep(time.Until(t0.Add(time.Duration(float64(i) / rate * float64(time.Second)))))
					agent := protocol.AgentID(fmt.Sprintf("till-%06d", base+int(i)))
					g0 := time.Now()
					if a, err := l.GrantAllowanceFor(ctx, tenant, agent, "fleet", "r1"); err != nil || a.Count <= 0 {
						b.Errorf("grant: %+v, %v", a, err)
						return
					}
					grantNs.Add(int64(time.Since(g0)))
				}
			}()
		}
		wg.Wait()
		stop.Store(true)
		<-ingestDone
		cpu := processCPU() - c0
		fig.grantMs = append(fig.grantMs, float64(grantNs.Load())/1e6/perRound)
		fig.batchMs = append(fig.batchMs, float64(batchWall.Microseconds())/1000/float64(max(batches, 1)))
		fig.cpuUs = append(fig.cpuUs, float64(cpu.Microseconds())/perRound)
		fig.batchCPUUs = append(fig.batchCPUUs, float64(cpu.Microseconds())/float64(max(batches, 1)))
	}
	b.ResetTimer()
	for range max(b.N, 5) {
		round(1, &one)
		round(64, &group)
	}
	b.StopTimer()
	med := func(v []float64) float64 { s := slices.Clone(v); slices.Sort(s); return s[len(s)/2] }
	b.ReportMetric(med(one.grantMs), "ms/grant-one")
	b.ReportMetric(med(group.grantMs), "ms/grant-group")
	b.ReportMetric(med(one.batchMs), "ingest-ms/batch-one")
	b.ReportMetric(med(group.batchMs), "ingest-ms/batch-group")
	b.ReportMetric(med(one.cpuUs), "CPU-µs/grant-one")
	b.ReportMetric(med(group.cpuUs), "CPU-µs/grant-group")
	b.ReportMetric(med(one.batchCPUUs), "CPU-µs/batch-one")
	b.ReportMetric(med(group.batchCPUUs), "CPU-µs/batch-group")
	b.ReportMetric(med(group.grantMs)/med(one.grantMs), "ratio-grant-ms")
	b.ReportMetric(med(group.batchMs)/med(one.batchMs), "ratio-ingest-batch")
}

// BenchmarkGrantTopUps: a wave of allowance top-ups as a fleet makes
// them after a launch: 2,000 tills, each granted the minimum (FirstShare
// off) and then 4 sales of the campaign, ask for more at once, with 4 or
// 64 requests in flight (grant groups of ~2.5 and ~40). One op is the
// whole wave; it reports process CPU µs per grant (the group's decision
// and commit under the write gate, and the request-id check before it)
// and grants per group transaction. The figures in allowance.go's
// grantStatements come from it.
func BenchmarkGrantTopUps(b *testing.B) {
	for _, inFlight := range []int{4, 64} {
		b.Run(fmt.Sprint("inflight=", inFlight), func(b *testing.B) {
			ctx := context.Background()
			f := MustFacts(b)
			f.SetCampaign(tenant, "fleet", ledger.CampaignFacts{MaxCount: 1 << 40, Currency: "EUR"})
			l, err := ledger.Open(ctx, filepath.Join(b.TempDir(), "hub.db"), ledger.Options{Facts: f, Policy: ledger.AllowancePolicy{FirstShare: -1}})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { l.Close() })
			const tills = 2000
			var cpu time.Duration
			var grants, txs int64
			for n := range b.N {
				b.StopTimer()
				base := n * tills
				for i := range tills {
					a := protocol.AgentID(fmt.Sprintf("till-%07d", base+i))
					if _, err := l.GrantAllowanceFor(ctx, tenant, a, "fleet", "r0"); err != nil {
						b.Fatal(err)
					}
					var sales []protocol.Redemption
					for seq := uint64(1); seq <= 4; seq++ {
						sales = append(sales, red(a, seq, func(r *protocol.Redemption) { r.Campaign = "fleet" }))
					}
					if _, _, err := l.ApplyBatch(ctx, tenant, a, sales); err != nil {
						b.Fatal(err)
					}
				}
				b.StartTimer()
				c0, tx0 := processCPU(), ledger.GrantTxs(l)
				var wg sync.WaitGroup
				sem := make(chan struct{}, inFlight)
				for i := range tills {
					wg.Add(1)
					sem <- struct{}{}
					go func() {
						defer wg.Done()
						defer func() { <-sem }()
						a := protocol.AgentID(fmt.Sprintf("till-%07d", base+i))
						if g, err := l.GrantAllowanceFor(ctx, tenant, a, "fleet", "r1"); err != nil || g.Count <= 0 {
							b.Errorf("top-up: %+v, %v", g, err)
						}
					}()
				}
				wg.Wait()
				cpu += processCPU() - c0
				grants += tills
				txs += ledger.GrantTxs(l) - tx0
			}
			b.ReportMetric(float64(cpu.Microseconds())/float64(grants), "CPU-µs/grant")
			b.ReportMetric(float64(grants)/float64(max(txs, 1)), "grants/tx")
		})
	}
}
