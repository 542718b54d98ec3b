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
)

// BenchmarkGrantFleet: an allowance grant to a till of a limited campaign
// whose allowance 10,000 other tills hold (a fleet connecting, or topping
// up), against the same grant with 100 tills holding it (the same-run
// baseline), alternated grant by grant on two ledgers so that machine
// load hits both alike. One op is one grant on each; CPU-µs/grant-10000,
// CPU-µs/grant-100 (process CPU) and their ratio are reported. The
// escrow check sums what every till holds: before ledger_021_fleet it
// read every till's allowance row.
func BenchmarkGrantFleet(b *testing.B) {
	ctx := context.Background()
	open := func(holders int) *ledger.Ledger {
		f := MustFacts(b)
		f.SetCampaign(tenant, "fleet", ledger.CampaignFacts{MaxCount: 1 << 40, Currency: "EUR"})
		l, err := ledger.Open(ctx, filepath.Join(b.TempDir(), "hub.db"), ledger.Options{Facts: f, Store: store.Options{Sync: store.SyncNormal}})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { l.Close() })
		tx, err := l.DB().BeginTx(ctx, nil)
		if err != nil {
			b.Fatal(err)
		}
		for i := range holders {
			if _, err := tx.ExecContext(ctx, `INSERT INTO ledger_allowances (tenant, agent, campaign, grants, granted_count) VALUES (?, ?, 'fleet', 1, 5)`,
				string(tenant), fmt.Sprintf("holder-%05d", i)); err != nil {
				b.Fatal(err)
			}
		}
		if err := tx.Commit(); err != nil {
			b.Fatal(err)
		}
		return l
	}
	big, small := open(10_000), open(100)
	var cpuBig, cpuSmall time.Duration
	grant := func(l *ledger.Ledger, i int, sum *time.Duration) {
		t0 := processCPU()
		a, err := l.GrantAllowance(ctx, tenant, protocol.AgentID(fmt.Sprintf("till-%06d", i)), "fleet")
		*sum += processCPU() - t0
		if err != nil || a.Count <= 0 {
			b.Fatalf("grant: %+v, %v", a, err)
		}
	}
	b.ResetTimer()
	for i := range b.N {
		grant(big, i, &cpuBig)
		grant(small, i, &cpuSmall)
	}
	us := func(d time.Duration) float64 { return float64(d.Microseconds()) / float64(b.N) }
	b.ReportMetric(us(cpuBig), "CPU-µs/grant-10000")
	b.ReportMetric(us(cpuSmall), "CPU-µs/grant-100")
	b.ReportMetric(float64(cpuBig)/float64(max(cpuSmall, 1)), "ratio")
}
