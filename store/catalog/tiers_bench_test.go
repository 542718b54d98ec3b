package catalog_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/punchcard/punchcard/protocol/tiers"
)

// BenchmarkTierEarn: one online earn (ledger.Redeem through the writer)
// for a customer holding 1,000 lots, with the tenant's tier programme
// (the qualification sums the customer's lots in the window) and without
// one (the same-run baseline: the cost tiers add to every fact is the
// ratio). The customer stays gold, so each earn reads and compares only.
func BenchmarkTierEarn(b *testing.B) {
	for _, tc := range []struct {
		name    string
		measure tiers.Measure
	}{{"off", ""}, {"points", tiers.MeasurePoints}, {"spend", tiers.MeasureSpend}} {
		b.Run(tc.name, func(b *testing.B) {
			ctx := context.Background()
			h := mustTierHub(b)
			if tc.measure != "" {
				p := tiers.Program{Tiers: []tiers.Level{{Name: "silver", Min: 100}, {Name: "gold", Min: 300}}, Measure: tc.measure,
					Window: tiers.Window{Kind: tiers.WindowRolling, Days: 365}, GraceDays: 30, TimeZone: "Europe/Berlin"}
				if _, err := h.c.SetTierProgram(ctx, admin, "acme", p); err != nil {
					b.Fatal(err)
				}
			}
			at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
			for i := range 1000 {
				h.earn(b, at.Add(time.Duration(i)*time.Hour), "w"+strconv.Itoa(i), 5)
			}
			b.ResetTimer()
			cpu := cpuTime()
			for i := range b.N {
				h.earn(b, at.Add(time.Duration(1000+i)*time.Second), "b"+strconv.Itoa(i), 5)
			}
			b.ReportMetric(float64(cpuTime()-cpu)/float64(b.N), "cpu-ns/op")
		})
	}
}

// BenchmarkTierReview: the downgrade job over TIER_REVIEW_N (default
// 10,000) due customers, each with one lot; half still qualify (kept,
// extended), half are lowered. The same-run baseline is a plain indexed
// UPDATE of the same rows (the least a review can cost).
func BenchmarkTierReview(b *testing.B) {
	n := 10_000
	if s := os.Getenv("TIER_REVIEW_N"); s != "" {
		n, _ = strconv.Atoi(s)
	}
	fill := func(b *testing.B, h *tierHub, due time.Time) {
		b.Helper()
		ctx := context.Background()
		tx, err := h.db.BeginTx(ctx, nil)
		if err != nil {
			b.Fatal(err)
		}
		defer tx.Rollback()
		for i := range n {
			cu := fmt.Sprintf("c%06d", i)
			if _, err := tx.ExecContext(ctx, `INSERT INTO catalog_customers (tenant, id, created_at, updated_at, tier, tier_version) VALUES ('acme', ?, 0, 0, 'gold', 1)`, cu); err != nil {
				b.Fatal(err)
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO ledger_customer_tiers (tenant, customer, tier, since, valid_until, review_at) VALUES ('acme', ?, 'gold', 0, ?, ?)`,
				cu, due.UnixMicro(), due.UnixMicro()); err != nil {
				b.Fatal(err)
			}
			pts := int64(300)
			if i%2 == 1 {
				pts = 50
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO ledger_points_lots (tenant, customer, amount, remaining, earned_at) VALUES ('acme', ?, ?, ?, ?)`,
				cu, pts, pts, due.Add(-24*time.Hour).UnixMicro()); err != nil {
				b.Fatal(err)
			}
		}
		if err := tx.Commit(); err != nil {
			b.Fatal(err)
		}
	}
	due := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	p := tiers.Program{Tiers: []tiers.Level{{Name: "silver", Min: 100}, {Name: "gold", Min: 300}}, Measure: tiers.MeasurePoints,
		Window: tiers.Window{Kind: tiers.WindowRolling, Days: 365}, TimeZone: "Europe/Berlin"}
	b.Run(fmt.Sprintf("review/n=%d", n), func(b *testing.B) {
		for range b.N {
			b.StopTimer()
			h := mustTierHub(b)
			if _, err := h.c.SetTierProgram(context.Background(), admin, "acme", p); err != nil {
				b.Fatal(err)
			}
			fill(b, h, due)
			b.StartTimer()
			cpu := cpuTime()
			lowered, err := h.l.ReviewTiers(context.Background(), due)
			if err != nil || lowered != n/2 {
				b.Fatalf("lowered %d of %d, %v", lowered, n, err)
			}
			b.ReportMetric(float64(cpuTime()-cpu)/float64(n), "cpu-ns/tier")
		}
	})
	b.Run(fmt.Sprintf("baseline_update/n=%d", n), func(b *testing.B) {
		for range b.N {
			b.StopTimer()
			h := mustTierHub(b)
			fill(b, h, due)
			b.StartTimer()
			cpu := cpuTime()
			defer func() { b.ReportMetric(float64(cpuTime()-cpu)/float64(n), "cpu-ns/tier") }()
			if _, err := h.db.ExecContext(context.Background(), `UPDATE ledger_customer_tiers SET review_at = review_at + 1 WHERE review_at <= ?`, due.UnixMicro()); err != nil {
				b.Fatal(err)
			}
		}
	})
}
