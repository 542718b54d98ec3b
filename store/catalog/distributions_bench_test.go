package catalog_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/store/catalog"
)

// BenchmarkDistributionItems pages through a done distribution of 10,000
// and of PUNCHCARD_BENCH_DIST (default 100,000) codes as an export does (1,000 items a page): the cost
// per item should not grow with the distribution (the 10,000 run is the
// same-run baseline).
func BenchmarkDistributionItems(b *testing.B) {
	ctx := context.Background()
	c, _ := MustOpen(b)
	if _, err := c.CreateCampaign(ctx, admin, "acme", campaignJSON("mail", "active", percent10)); err != nil {
		b.Fatal(err)
	}
	big := 100_000
	if v, err := strconv.Atoi(os.Getenv("PUNCHCARD_BENCH_DIST")); err == nil && v > 0 {
		big = v
	}
	for _, n := range []int{10_000, big} {
		id := fmt.Sprintf("d%d", n)
		list := make([]protocol.CustomerID, n)
		for i := range list {
			list[i] = protocol.CustomerID(fmt.Sprintf("cust-%07d", i))
		}
		if _, err := c.PublishDistribution(ctx, admin, "acme", id, catalog.DistributionRequest{Campaign: "mail", Kind: "code", Customers: list}); err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		for {
			d, _, err := c.FillDistribution(ctx, admin, "acme", id, 5000)
			if err != nil {
				b.Fatal(err)
			}
			if d.Done == d.Total {
				break
			}
		}
		fill := time.Since(start)
		b.Run(fmt.Sprintf("rows=%d", n), func(b *testing.B) {
			cpu0 := cpuTime()
			for b.Loop() {
				var after int64
				rows := 0
				for {
					page, err := c.DistributionItems(ctx, "acme", id, after, 1000)
					if err != nil {
						b.Fatal(err)
					}
					rows += len(page)
					if len(page) < 1000 {
						break
					}
					after = page[len(page)-1].N
				}
				if rows != n {
					b.Fatalf("%d rows, want %d", rows, n)
				}
			}
			b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
			b.ReportMetric(float64(cpuTime()-cpu0)/1e3/float64(n*b.N), "cpu-µs/row")
			b.ReportMetric(float64(n)/fill.Seconds(), "fill-rows/s")
		})
	}
}
