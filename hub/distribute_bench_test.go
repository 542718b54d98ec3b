package hub_test

import (
	"context"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/metrics"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/punchcard/punchcard/protocol"
	pcatalog "github.com/punchcard/punchcard/protocol/catalog"
	"github.com/punchcard/punchcard/store/catalog"
)

// BenchmarkDistributionExport streams a done distribution of plain codes
// as CSV and as a ZIP of QR PNGs to io.Discard, at 10,000 recipients and
// at PUNCHCARD_BENCH_DIST (default 20,000; make bench-distribution sets
// 100,000), and reports rows/s and the peak live heap during the export
// (sampled every millisecond): flat memory means the peak does not grow
// with the list. The 10,000 run is the same-run baseline. It also reports
// how long making the codes took (fill, rows/s), and the process's CPU
// time per row, which a loaded machine distorts far less than wall time.
func BenchmarkDistributionExport(b *testing.B) {
	big := 20_000
	if v, err := strconv.Atoi(os.Getenv("PUNCHCARD_BENCH_DIST")); err == nil && v > 0 {
		big = v
	}
	ctx := context.Background()
	h := runIn(b, b.TempDir())
	if _, err := h.Catalog.CreateTenant(ctx, catalog.System, catalog.Tenant{ID: "acme", Name: "Acme", Currency: "EUR"}); err != nil {
		b.Fatal(err)
	}
	doc := `{"schema":1,"id":"mail","tenant":"acme","status":"active","currency":"EUR","reward":{"kind":"percent_off","percent_bp":1000}}`
	if _, err := h.Catalog.CreateCampaign(ctx, catalog.System, "acme", []byte(doc)); err != nil {
		b.Fatal(err)
	}
	for _, n := range []int{10_000, big} {
		id := fmt.Sprintf("d%d", n)
		list := make([]protocol.CustomerID, n)
		for i := range list {
			list[i] = protocol.CustomerID(fmt.Sprintf("cust-%07d", i))
		}
		start := time.Now()
		if _, err := h.Distribute.Publish(ctx, catalog.System, "acme", id, pcatalog.DistributionRequest{Campaign: "mail", Kind: "code", Customers: list}); err != nil {
			b.Fatal(err)
		}
		for {
			d, err := h.Distribute.Distribution(ctx, "acme", id)
			if err != nil || d.State == pcatalog.DistributionFailed {
				b.Fatal(d, err)
			}
			if d.State == pcatalog.DistributionDone {
				break
			}
			time.Sleep(50 * time.Millisecond) // a benchmark's setup, not a test's wait
		}
		fill := time.Since(start)
		for _, f := range []struct {
			name  string
			write func(context.Context, io.Writer, protocol.TenantID, string) error
		}{{"csv", h.Distribute.WriteCSV}, {"zip", h.Distribute.WriteZIP}} {
			b.Run(fmt.Sprintf("%s/rows=%d", f.name, n), func(b *testing.B) {
				var peak atomic.Uint64
				stop := make(chan struct{})
				done := make(chan struct{})
				runtime.GC()
				go func() { // sample the live heap
					defer close(done)
					s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
					t := time.NewTicker(time.Millisecond)
					defer t.Stop()
					for {
						metrics.Read(s)
						if v := s[0].Value.Uint64(); v > peak.Load() {
							peak.Store(v)
						}
						select {
						case <-stop:
							return
						case <-t.C:
						}
					}
				}()
				cpu0 := cpuTime()
				for b.Loop() {
					if err := f.write(ctx, io.Discard, "acme", id); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(cpuTime()-cpu0)/float64(time.Microsecond)/float64(n*b.N), "cpu-µs/row")
				close(stop)
				<-done
				b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
				b.ReportMetric(float64(peak.Load())/(1<<20), "peak-heap-MiB")
				b.ReportMetric(float64(n)/fill.Seconds(), "fill-rows/s")
			})
		}
	}
}
