package ledger_test

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/store"
	"github.com/punchcard/punchcard/store/ledger"
)

// openBench opens a ledger on a temp file with synchronous=NORMAL (the
// figures are the CPU and I/O of the statements, not an fsync per
// commit) at clock c.
func openBench(b *testing.B, c *clock) *ledger.Ledger {
	b.Helper()
	l, err := ledger.Open(context.Background(), filepath.Join(b.TempDir(), "hub.db"),
		ledger.Options{Facts: MustFacts(b), Now: c.Now, Store: store.Options{Sync: store.SyncNormal}})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { l.Close() })
	return l
}

// BenchmarkLotsBurn: an online burn of 10 points (the hub's Redeem
// through the online writer: expire what is due, take the soonest lot,
// record the take, journal, balance, commit) from a customer holding
// 1,000 lots of different expiries, against the same burn from a
// customer holding 1 lot (the same-run baseline), alternated burn by
// burn so that machine load hits both alike. One op is one burn of
// each; ns/burn-1000, ns/burn-1 and their ratio are reported. The lots
// come from a till's earn facts (ingest's apply path).
func BenchmarkLotsBurn(b *testing.B) {
	ctx := context.Background()
	var ls [2]*ledger.Ledger
	for k, n := range []int{1, 1000} {
		ls[k] = openBench(b, &clock{t: t0})
		var facts []protocol.Redemption
		for i := range n {
			exp := t0.Add(time.Duration(24+i%500) * time.Hour) // expiring ones first
			if i%4 == 3 {
				exp = time.Time{} // a quarter never expire
			}
			facts = append(facts, earnAt("till-1", uint64(i+1), "c1", 1_000_000, t0, exp))
		}
		for len(facts) > 0 {
			m := min(len(facts), 256)
			if _, _, err := ls[k].ApplyBatch(ctx, tenant, "till-1", facts[:m]); err != nil {
				b.Fatal(err)
			}
			facts = facts[m:]
		}
	}
	var took [2]time.Duration
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		for k := range ls {
			start := time.Now()
			if _, err := onlineBurn(ls[k], "c1", 10, "b"+strconv.Itoa(i)); err != nil {
				b.Fatal(err)
			}
			took[k] += time.Since(start)
		}
	}
	b.ReportMetric(float64(took[1].Nanoseconds())/float64(b.N), "ns/burn-1000")
	b.ReportMetric(float64(took[0].Nanoseconds())/float64(b.N), "ns/burn-1")
	b.ReportMetric(took[1].Seconds()/took[0].Seconds(), "ratio")
}

// lotsN is the number of lots BenchmarkLotsExpiry expires
// (LOTS_EXPIRY_N; default 100,000 so that `make bench` stays short;
// `make bench-lots` sets 1,000,000).
func lotsN(b *testing.B) int {
	if v, err := strconv.Atoi(os.Getenv("LOTS_EXPIRY_N")); err == nil && v > 0 {
		return v
	}
	return 100_000
}

// seedLots writes n lots of 10 points, 10 per customer, all due at
// due, with their customers' balances, as earns would have left them
// and their earn journal entries (one SQL statement each: building them through the apply path would
// take minutes per run).
func seedLots(b *testing.B, db *sql.DB, n int, due time.Time) {
	b.Helper()
	ctx := context.Background()
	if _, err := db.ExecContext(ctx, `WITH RECURSIVE k(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM k WHERE i + 1 < ?)
		INSERT INTO ledger_points_lots (tenant, customer, campaign, amount, remaining, earned_at, expires_at, src_agent, src_seq)
		SELECT 'acme', 'c' || (i / 10), 'loyalty', 10, 10, ?, ? + (i % 1000), 'till-1', i + 1 FROM k`, n, t0.UnixMicro(), due.UnixMicro()); err != nil {
		b.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, `INSERT INTO ledger_journal (tenant, entry, agent, seq, customer, campaign, points, psign, hlc, received_at)
		SELECT tenant, 'earn', src_agent, src_seq, customer, campaign, amount, 1, 0, earned_at FROM ledger_points_lots ORDER BY id`); err != nil {
		b.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, `INSERT INTO ledger_customers (tenant, customer, points)
		SELECT tenant, customer, SUM(remaining) FROM ledger_points_lots WHERE true GROUP BY tenant, customer`); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkLotsExpiry is the nightly expiry of LOTS_EXPIRY_N lots (with
// make bench-lots 1M, of 100,000 customers): ledger.ExpireLots zeroes each lot, journals one
// points_expired entry per lot and lowers each customer's balance, 5,000
// lots per transaction. The same-run baseline ("update") is a plain
// indexed SQLite UPDATE of the same rows on an identical database, in
// the same chunks: what zeroing the lots alone costs, without the
// journal and the balances. One op is one full run; lots/s, the wall
// and CPU seconds of both and their ratios are reported.
func BenchmarkLotsExpiry(b *testing.B) {
	n := lotsN(b)
	ctx := context.Background()
	due := t0.Add(24 * time.Hour)
	at := due.Add(time.Hour)
	var times, cpu [2]time.Duration
	for i := range b.N {
		for k, name := range []string{"update", "expire"} {
			b.StopTimer()
			c := &clock{t: at}
			l, err := ledger.Open(ctx, filepath.Join(b.TempDir(), fmt.Sprintf("%s-%d.db", name, i)),
				ledger.Options{Facts: MustFacts(b), Now: c.Now, Store: store.Options{Sync: store.SyncNormal}})
			if err != nil {
				b.Fatal(err)
			}
			seedLots(b, l.DB(), n, due)
			b.StartTimer()
			start, cpu0 := time.Now(), processCPU()
			if name == "update" {
				for {
					res, err := l.DB().ExecContext(ctx, `UPDATE ledger_points_lots SET expired = expired + remaining, remaining = 0
						WHERE id IN (SELECT id FROM ledger_points_lots WHERE remaining > 0 AND expires_at > 0 AND expires_at <= ? ORDER BY expires_at LIMIT ?)`,
						at.UnixMicro(), ledger.DefaultExpiryChunk)
					if err != nil {
						b.Fatal(err)
					}
					if k, _ := res.RowsAffected(); k < ledger.DefaultExpiryChunk {
						break
					}
				}
			} else {
				got, pts, err := l.ExpireLots(ctx, at, 0)
				if err != nil || got != int64(n) || pts != int64(10*n) {
					b.Fatalf("expired %d lots, %d points, %v; want %d", got, pts, err, n)
				}
			}
			times[k] += time.Since(start)
			cpu[k] += processCPU() - cpu0
			b.StopTimer()
			if name == "expire" && n <= 100_000 {
				if rep, err := l.Verify(ctx); err != nil || !rep.OK() {
					b.Fatalf("verify: %d diffs (first %+v), %v", len(rep.Diffs), rep.Diffs[:min(1, len(rep.Diffs))], err)
				}
			}
			l.Close()
			b.StartTimer()
		}
	}
	b.ReportMetric(float64(n)*float64(b.N)/times[1].Seconds(), "lots/s")
	b.ReportMetric(times[1].Seconds()/float64(b.N), "expire-s")
	b.ReportMetric(times[0].Seconds()/float64(b.N), "update-s")
	b.ReportMetric(times[1].Seconds()/times[0].Seconds(), "ratio")
	if cpu[0] > 0 {
		b.ReportMetric(cpu[1].Seconds()/float64(b.N), "expire-cpu-s")
		b.ReportMetric(cpu[0].Seconds()/float64(b.N), "update-cpu-s")
		b.ReportMetric(cpu[1].Seconds()/cpu[0].Seconds(), "cpu-ratio")
	}
}
