package ledger_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/store/ledger"
)

// BenchmarkGrantHistory: one allowance grant of a till that recorded
// history redemptions of the campaign more than the rate window ago and
// a few in it, on a ledger at the hub's defaults. The grant's CPU should
// not grow with the till's age (its history): the rate query reads the
// window's rows only (TestGrantRatePlan). Each sub-benchmark's own
// history is its baseline: compare 0 with 20k and 100k.
func BenchmarkGrantHistory(b *testing.B) {
	for _, history := range []int{0, 20_000, 100_000} {
		b.Run(fmt.Sprint("history=", history), func(b *testing.B) {
			ctx := context.Background()
			f := MustFacts(b)
			f.SetCampaign(tenant, "fleet", ledger.CampaignFacts{MaxCount: 1 << 40, Currency: "EUR"})
			c := &clock{t: t0}
			l, err := ledger.Open(ctx, migratedCopy(b), ledger.Options{Facts: f, Now: c.Now})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { l.Close() })
			agent := protocol.AgentID("till-1")
			seq := uint64(0)
			apply := func(n int) {
				for n > 0 {
					k := min(n, 500)
					batch := make([]protocol.Redemption, 0, k)
					for range k {
						seq++
						batch = append(batch, red(agent, seq, func(r *protocol.Redemption) { r.Campaign = "fleet" }))
					}
					if _, _, err := l.ApplyBatch(ctx, tenant, agent, batch); err != nil {
						b.Fatal(err)
					}
					n -= k
				}
			}
			apply(history)
			c.Add(2 * time.Hour)
			apply(20) // the window's rate
			c.Add(time.Minute)
			b.ResetTimer()
			for range b.N {
				if _, err := l.GrantAllowance(ctx, tenant, agent, "fleet"); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
