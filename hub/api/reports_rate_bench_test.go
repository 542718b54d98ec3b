package api_test

import (
	"context"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/punchcard/punchcard/hub/reports"
	"github.com/punchcard/punchcard/store/catalog"
	"github.com/punchcard/punchcard/store/ledger/ledgertest"
)

// distN is the distributed codes of BenchmarkReportDistribution
// (REPORTS_DIST_N; default 100,000).
func distN() int {
	if v, err := strconv.Atoi(os.Getenv("REPORTS_DIST_N")); err == nil && v > 0 {
		return v
	}
	return 100_000
}

// BenchmarkReportDistribution is the distribution report over distN
// codes of one campaign in 10 distributions, made over October 2026, a
// third of them used (in ledger_codes; every tenth of those voided again,
// uses 0), plus 10,000 codes of another campaign. The catalog's items and
// the ledger's code balances are seeded with one SQL statement each (as
// seedReports does): the report reads only those rows. The same-run
// baseline is the denominator alone, the catalog's COUNT of the same
// codes (DistributedCodes), alternated call by call. Reported: ms/report,
// ms/count (medians, wall and process CPU), their ratio, µs per code.
func BenchmarkReportDistribution(b *testing.B) {
	e := newEnv(b)
	ctx := context.Background()
	mk, ro := e.keys[catalog.RoleMarketer], e.keys[catalog.RoleReadOnly]
	for _, c := range []string{"mail", "other"} {
		e.wantJSON(e.do("POST", "/v1/tenants/acme/campaigns", mk, campaignDoc(c, "active", percent10, "")), 201, nil)
	}
	n := distN()
	start := time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC).UnixMicro()
	step := int64(31*24*time.Hour/time.Microsecond) / int64(n)
	for _, s := range []struct {
		camp string
		n    int
	}{{"mail", n}, {"other", 10_000}} {
		if _, err := e.cat.DB().Exec(`WITH RECURSIVE k(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM k WHERE i + 1 < ?1)
			INSERT INTO catalog_distribution_items (tenant, distribution, n, customer, campaign, code, text, at)
			SELECT 'acme', ?2 || '-' || (i % 10), i / 10 + 1, 'cust-' || i, ?2, ?2 || '-CODE-' || i, ?2 || '-CODE-' || i, ?3 + i * ?4 FROM k`,
			s.n, s.camp, start, step); err != nil {
			b.Fatal(err)
		}
		if _, err := e.led.DB().Exec(`WITH RECURSIVE k(i) AS (SELECT 0 UNION ALL SELECT i + 3 FROM k WHERE i + 3 < ?1)
			INSERT INTO ledger_codes (tenant, code, uses) SELECT 'acme', ?2 || '-CODE-' || i, CASE WHEN i % 30 = 0 THEN 0 ELSE 1 END FROM k`, s.n, s.camp); err != nil {
			b.Fatal(err)
		}
	}
	from, to := time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	var rep, cnt, repCPU, cntCPU []time.Duration
	var total int64
	var res reports.Result
	b.ResetTimer()
	for range b.N {
		t0, c0 := time.Now(), ledgertest.CPUTime()
		e.wantJSON(e.do("GET", "/v1/tenants/acme/reports/distribution?from=2026-10-01&to=2026-10-31", ro, nil), 200, &res)
		rep, repCPU = append(rep, time.Since(t0)), append(repCPU, ledgertest.CPUTime()-c0)
		t0, c0 = time.Now(), ledgertest.CPUTime()
		var err error
		if total, err = e.cat.DistributedCodes(ctx, "acme", "mail", from, to); err != nil {
			b.Fatal(err)
		}
		cnt, cntCPU = append(cnt, time.Since(t0)), append(cntCPU, ledgertest.CPUTime()-c0)
	}
	b.StopTimer()
	if len(res.Distribution) != 22 || res.Distribution[0].Distributed != int64(n) || total != int64(n) {
		b.Fatalf("report %+v, count %d, want %d codes", res.Distribution[:min(len(res.Distribution), 2)], total, n)
	}
	if want := int64((n+2)/3 - (n+29)/30); res.Distribution[0].Redeemed != want {
		b.Fatalf("redeemed %d, want %d", res.Distribution[0].Redeemed, want)
	}
	r, c := median(rep), median(cnt)
	b.ReportMetric(float64(r.Microseconds())/1000, "ms/report")
	b.ReportMetric(float64(c.Microseconds())/1000, "ms/count")
	b.ReportMetric(r.Seconds()/c.Seconds(), "ratio")
	b.ReportMetric(float64(median(repCPU).Microseconds())/1000, "cpu-ms/report")
	b.ReportMetric(float64(median(cntCPU).Microseconds())/1000, "cpu-ms/count")
	b.ReportMetric(float64(r.Nanoseconds())/1000/float64(n+10_000), "µs/code")
}
