package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/punchcard/punchcard/hub/reports"
	"github.com/punchcard/punchcard/store"
	"github.com/punchcard/punchcard/store/catalog"
	"github.com/punchcard/punchcard/store/ledger/ledgertest"
)

// reportsN is the size of the benchmarks' ledger (REPORTS_N; default
// 100,000 so that `make bench` stays short; `make bench-reports` sets
// 1,000,000).
func reportsN() int {
	if v, err := strconv.Atoi(os.Getenv("REPORTS_N")); err == nil && v > 0 {
		return v
	}
	return 100_000
}

// benchYear is the year the generated ledger's facts spread over.
var benchYear = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// seedReports writes n redemption facts of tenant acme evenly over 2026:
// 200 tills in 50 stores, 20 campaigns, every 20th fact a rollback, a
// third with a customer, half offline. One SQL statement: through the
// apply path a million facts would take many minutes per run, and the
// reports read only the journal rows, which are the same.
func seedReports(b *testing.B, e *env, n int) {
	b.Helper()
	step := (benchYear.AddDate(1, 0, 0).UnixMilli() - benchYear.UnixMilli()) / int64(n)
	if _, err := e.led.DB().Exec(`WITH RECURSIVE k(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM k WHERE i + 1 < ?1)
		INSERT INTO ledger_journal (tenant, entry, agent, seq, store, txn_id, campaign, customer, order_id, currency,
			discount, order_total, hlc, offline, sign, psign, received_at)
		SELECT 'acme', CASE WHEN i % 20 = 19 THEN 'rollback' ELSE 'redeem' END, 'till-' || (i % 200), i / 200 + 1,
			'store-' || (i % 200 / 4), 't' || i, 'camp-' || (i % 20), CASE WHEN i % 3 = 0 THEN 'cust-' || (i % 50000) ELSE '' END,
			'o' || i, 'EUR', 100 + i % 900, 2000 + i % 10000, (?2 + i * ?3) << 16, i % 2, CASE WHEN i % 20 = 19 THEN -1 ELSE 1 END, 0, ?2 * 1000
		FROM k`, n, benchYear.UnixMilli(), step); err != nil {
		b.Fatal(err)
	}
	if _, err := e.led.DB().Exec(`ANALYZE`); err != nil {
		b.Fatal(err)
	}
}

// reportsEnv is an env whose ledger holds n seeded facts. With
// REPORTS_CACHE set (a directory; `make bench-reports` sets one under
// /tmp), the seeded database is kept there (reports-<n>.db and the env's
// keys in reports-<n>.json) and later runs start from a copy of it:
// seeding a million facts takes minutes, copying the file seconds.
func reportsEnv(b *testing.B, n int) *env {
	b.Helper()
	dir := os.Getenv("REPORTS_CACHE")
	if dir == "" {
		e := newEnv(b)
		seedReports(b, e, n)
		return e
	}
	type keys struct {
		Platform, Other, Agent string
		Keys                   map[catalog.Role]string
	}
	db, kf := filepath.Join(dir, fmt.Sprintf("reports-%d.db", n)), filepath.Join(dir, fmt.Sprintf("reports-%d.json", n))
	if j, err := os.ReadFile(kf); err == nil {
		var k keys
		if err := json.Unmarshal(j, &k); err != nil {
			b.Fatal(err)
		}
		path := filepath.Join(b.TempDir(), "hub.db")
		if err := copyFile(db, path); err != nil {
			b.Fatal(err)
		}
		e := openEnv(b, path, store.Options{Sync: store.SyncNormal})
		e.platform, e.other, e.agent, e.keys = k.Platform, k.Other, k.Agent, k.Keys
		b.Logf("ledger of %d facts copied from %s", n, db)
		return e
	}
	e := newEnv(b)
	seedReports(b, e, n)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.Fatal(err)
	}
	os.Remove(db + ".tmp")
	if _, err := e.led.DB().Exec(`VACUUM INTO ?`, db+".tmp"); err != nil {
		b.Fatal(err)
	}
	j, err := json.Marshal(keys{e.platform, e.other, e.agent, e.keys})
	if err != nil {
		b.Fatal(err)
	}
	if err := os.Rename(db+".tmp", db); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(kf, j, 0o600); err != nil { // last: the pair is complete
		b.Fatal(err)
	}
	return e
}

func copyFile(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(to)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

func median(ds []time.Duration) time.Duration {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

// BenchmarkReports runs its parts on one ledger of REPORTS_N facts over a
// year (seeded once: a million facts take minutes to write on a loaded
// machine). Each part reports medians over its b.N alternated calls.
func BenchmarkReports(b *testing.B) {
	e := reportsEnv(b, reportsN())
	b.Run("Month", func(b *testing.B) { benchReportMonth(b, e) })
	b.Run("ExportCSV", func(b *testing.B) { benchExportCSV(b, e) })
}

// benchReportMonth is a month's campaign report (October, by day and
// campaign, Europe/Berlin, JSON over the API in-process); the same-run
// baseline is a plain SELECT COUNT(*) of the same month's facts over the
// same index, alternated call by call. Reported: ms/report, ms/count
// (medians of the op's calls, wall and process CPU) and their ratio.
func benchReportMonth(b *testing.B, e *env) {
	ro, admin := e.keys[catalog.RoleReadOnly], e.keys[catalog.RoleAdmin]
	e.wantJSON(e.do("PUT", "/v1/tenants/acme/time-zone", admin, map[string]any{"time_zone": "Europe/Berlin"}), 200, nil)
	berlin, _ := time.LoadLocation("Europe/Berlin")
	lo := time.Date(2026, 10, 1, 0, 0, 0, 0, berlin).UnixMilli() << 16
	hi := time.Date(2026, 11, 1, 0, 0, 0, 0, berlin).UnixMilli() << 16
	var rep, cnt, repCPU, cntCPU []time.Duration
	var rows, facts int
	b.ResetTimer()
	for range b.N {
		t0, c0 := time.Now(), ledgertest.CPUTime()
		var res reports.Result
		e.wantJSON(e.do("GET", "/v1/tenants/acme/reports/activity?from=2026-10-01&to=2026-10-31&by=day&group=campaign", ro, nil), 200, &res)
		rep, repCPU = append(rep, time.Since(t0)), append(repCPU, ledgertest.CPUTime()-c0)
		rows = len(res.Activity)
		t0, c0 = time.Now(), ledgertest.CPUTime()
		if err := e.led.DB().QueryRow(`SELECT COUNT(*) FROM ledger_journal INDEXED BY ledger_journal_report WHERE tenant = 'acme' AND hlc >= ? AND hlc < ?`, lo, hi).Scan(&facts); err != nil {
			b.Fatal(err)
		}
		cnt, cntCPU = append(cnt, time.Since(t0)), append(cntCPU, ledgertest.CPUTime()-c0)
	}
	b.StopTimer()
	if rows != 31*20 {
		b.Fatalf("%d rows, want 620", rows)
	}
	r, c := median(rep), median(cnt)
	b.ReportMetric(float64(r.Microseconds())/1000, "ms/report")
	b.ReportMetric(float64(c.Microseconds())/1000, "ms/count")
	b.ReportMetric(r.Seconds()/c.Seconds(), "ratio")
	b.ReportMetric(float64(median(repCPU).Microseconds())/1000, "cpu-ms/report")
	b.ReportMetric(float64(median(cntCPU).Microseconds())/1000, "cpu-ms/count")
	b.ReportMetric(float64(facts), "facts")
}

// benchExportCSV streams the whole ledger of REPORTS_N facts (the
// year) as CSV over a real HTTP listener on 127.0.0.1, read by a client
// that discards it; the same-run baseline is the plain SELECT of the same
// rows (scanned, not written). Reported: rows/s of both and their ratio,
// and the peak of the heap in use during the export above the heap
// before it (sampled every 5 ms; flat memory: it does not grow with
// REPORTS_N).
func benchExportCSV(b *testing.B, e *env) {
	n := reportsN()
	// The year in UTC, the seed's: Month left the tenant in Berlin,
	// whose year starts an hour before the seed's and ends an hour
	// before its last facts.
	e.wantJSON(e.do("PUT", "/v1/tenants/acme/time-zone", e.keys[catalog.RoleAdmin], map[string]any{"time_zone": "UTC"}), 200, nil)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	go e.srv.Serve(ln)
	b.Cleanup(func() { e.srv.Shutdown(context.Background()) })
	url := "http://" + ln.Addr().String() + "/v1/tenants/acme/exports/redemptions?from=2026-01-01&to=2026-12-31"
	key := e.keys[catalog.RoleMarketer]
	var exp, sel, expCPU, selCPU []time.Duration
	var peak uint64
	b.ResetTimer()
	for range b.N {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		base := ms.HeapInuse
		var top atomic.Uint64
		stop := make(chan struct{})
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			var m runtime.MemStats
			for {
				runtime.ReadMemStats(&m)
				if m.HeapInuse > base && m.HeapInuse-base > top.Load() {
					top.Store(m.HeapInuse - base)
				}
				select {
				case <-stop:
					return
				case <-time.After(5 * time.Millisecond):
				}
			}
		}()
		t0, c0 := time.Now(), ledgertest.CPUTime()
		req, _ := http.NewRequest("GET", url, nil)
		req.Header.Set("Authorization", "Bearer "+key)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		lines, err := countLines(res.Body)
		res.Body.Close()
		if err != nil || res.StatusCode != 200 || lines != n+1 {
			b.Fatalf("status %d, %d lines (%v), want %d", res.StatusCode, lines, err, n+1)
		}
		exp, expCPU = append(exp, time.Since(t0)), append(expCPU, ledgertest.CPUTime()-c0)
		close(stop)
		wg.Wait()
		peak = max(peak, top.Load())

		t0, c0 = time.Now(), ledgertest.CPUTime()
		rs, err := e.led.DB().Query(`SELECT id, hlc, entry, agent, seq, store, txn_id, campaign, code, customer, order_id, currency,
			discount, spend, points, order_total, offline, sign, ref_agent, ref_seq, received_at FROM ledger_journal INDEXED BY ledger_journal_report WHERE tenant = 'acme' AND hlc > 0 ORDER BY hlc, id`)
		if err != nil {
			b.Fatal(err)
		}
		var got int
		for rs.Next() {
			var id, hlc, seq, d, s, p, o, off, sign, recv int64
			var entry, agent, store, txn, camp, code, cust, oid, cur string
			var ra, rsq any
			if err := rs.Scan(&id, &hlc, &entry, &agent, &seq, &store, &txn, &camp, &code, &cust, &oid, &cur, &d, &s, &p, &o, &off, &sign, &ra, &rsq, &recv); err != nil {
				b.Fatal(err)
			}
			got++
		}
		rs.Close()
		if got != n {
			b.Fatalf("select %d rows, want %d", got, n)
		}
		sel, selCPU = append(sel, time.Since(t0)), append(selCPU, ledgertest.CPUTime()-c0)
	}
	b.StopTimer()
	x, s := median(exp), median(sel)
	b.ReportMetric(float64(n)/x.Seconds(), "rows/s")
	b.ReportMetric(float64(n)/s.Seconds(), "select-rows/s")
	b.ReportMetric(x.Seconds()/s.Seconds(), "ratio")
	b.ReportMetric(float64(n)/median(expCPU).Seconds(), "cpu-rows/s")
	b.ReportMetric(float64(n)/median(selCPU).Seconds(), "select-cpu-rows/s")
	b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")
}

func countLines(r io.Reader) (int, error) {
	buf := make([]byte, 64<<10)
	n := 0
	for {
		k, err := r.Read(buf)
		for _, c := range buf[:k] {
			if c == '\n' {
				n++
			}
		}
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
}
