package ledger_test

import (
	"context"
	"errors"
	"testing"
	"time"

	pledger "github.com/punchcard/punchcard/protocol/ledger"
)

// TestExportFactsPages: the export pages by (hlc, id) through
// ExportPage-sized reads, so that facts of the same millisecond across a
// page boundary are neither lost nor repeated, the range ends are kept
// (from included, to excluded) and fn's error stops it.
func TestExportFactsPages(t *testing.T) {
	l, _ := MustOpen(t)
	ctx := context.Background()
	base := time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC)
	const n = 12_345
	// 7 facts per millisecond, 3 of every 7 in another tenant (sign 0: no
	// balance to keep, Verify stays clean).
	if _, err := l.DB().Exec(`WITH RECURSIVE k(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM k WHERE i + 1 < ?1)
		INSERT INTO ledger_journal (tenant, entry, agent, seq, campaign, currency, discount, order_total, hlc, sign, received_at)
		SELECT CASE WHEN i % 7 < 3 THEN 'other' ELSE ?2 END, 'redeem', 'till-1', i + 1, 'c', 'EUR', 1, 10, ((?3 + i / 7) << 16) + i % 7, 0, 0 FROM k`,
		n, string(tenant), base.UnixMilli()); err != nil {
		t.Fatal(err)
	}
	count := func(from, to time.Time) int {
		var c int
		if err := l.DB().QueryRow(`SELECT COUNT(*) FROM ledger_journal WHERE tenant = ? AND hlc >= ? AND hlc < ?`,
			string(tenant), from.UnixMilli()<<16, to.UnixMilli()<<16).Scan(&c); err != nil {
			t.Fatal(err)
		}
		return c
	}
	for _, rg := range [][2]time.Time{
		{base, base.Add(time.Hour)},
		{base.Add(3 * time.Millisecond), base.Add(1000 * time.Millisecond)},
		{base.Add(time.Second), base.Add(time.Hour)},
	} {
		var got int
		var last pledger.ExportRow
		err := l.ExportFacts(ctx, tenant, rg[0], rg[1], func(r *pledger.ExportRow) error {
			if r.At.Before(rg[0]) || !r.At.Before(rg[1]) || got > 0 && r.At.Before(last.At) || got > 0 && r.Seq <= last.Seq {
				t.Fatalf("row %d %+v after %+v, range %v", got, r, last, rg)
			}
			last = *r
			got++
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if want := count(rg[0], rg[1]); got != want || want == 0 {
			t.Fatalf("range %v: %d rows, want %d", rg, got, want)
		}
	}
	stop := errors.New("stop")
	var got int
	err := l.ExportFacts(ctx, tenant, base, base.Add(time.Hour), func(*pledger.ExportRow) error {
		if got++; got == 10 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || got != 10 {
		t.Fatalf("stopped after %d: %v", got, err)
	}
}
