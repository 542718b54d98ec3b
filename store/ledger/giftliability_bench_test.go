package ledger_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/punchcard/punchcard/protocol"
)

// BenchmarkGiftCardLiability: the tenant's gift card liability read from
// its cards against the journal's sum (the query before), in one process,
// on a ledger of 200 sold cards with 1,000 spends among a history of
// PUNCHCARD_BENCH_HISTORY journal rows (default 200,000) of the tenant's
// other redemptions (written by SQL: the cost of the read is the
// subject). Reports ms per read and the ratio.
func BenchmarkGiftCardLiability(b *testing.B) {
	history := 200_000
	if n, err := strconv.Atoi(os.Getenv("PUNCHCARD_BENCH_HISTORY")); err == nil && n >= 0 {
		history = n
	}
	ctx := context.Background()
	l, _ := MustOpen(b)
	var rs []protocol.Redemption
	seq := uint64(0)
	for c := range 200 {
		code := protocol.CodeID(fmt.Sprintf("CARD-%04d", c))
		seq++
		rs = append(rs, red("till-1", seq, func(r *protocol.Redemption) {
			r.Kind, r.Code, r.Load, r.Discount = protocol.KindIssue, code, 50_00, 0
		}))
		for range 5 {
			seq++
			rs = append(rs, red("till-1", seq, func(r *protocol.Redemption) {
				r.Kind, r.Code, r.Spend, r.Discount = protocol.KindRedeem, code, 3_00, 0
			}))
		}
	}
	for len(rs) > 0 {
		n := min(len(rs), 256)
		if _, _, err := l.ApplyBatch(ctx, tenant, "till-1", rs[:n]); err != nil {
			b.Fatal(err)
		}
		rs = rs[n:]
	}
	if _, err := l.DB().Exec(`WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)
		INSERT INTO ledger_journal (tenant, entry, agent, seq, store, txn_id, campaign, currency, discount, order_total, hlc, sign, received_at)
		SELECT ?, 'redeem', 'till-h' || (i % 1000), i, 's' || (i % 100), 'h' || i, 'loyalty', 'EUR', 100, 1000, i, 1, i FROM n`, history, tenant); err != nil {
		b.Fatal(err)
	}
	// The history written by SQL is no ledger's: no Verify at cleanup.
	b.Cleanup(func() { l.DB().Exec(`DELETE FROM ledger_journal WHERE agent LIKE 'till-h%'`) })
	var cards, journal time.Duration
	var want int64
	b.ResetTimer()
	for range b.N {
		t0 := time.Now()
		v, err := l.GiftCardLiability(ctx, tenant, "EUR")
		cards += time.Since(t0)
		t1 := time.Now()
		j := journalLiability(b, l, "EUR")
		journal += time.Since(t1)
		if err != nil || v != j {
			b.Fatalf("liability %d (%v), journal's sum %d", v, err, j)
		}
		want = v
	}
	if want != 200*(50_00-15_00) {
		b.Fatalf("liability %d, want %d", want, 200*(50_00-15_00))
	}
	b.ReportMetric(float64(cards.Microseconds())/1000/float64(b.N), "cards-ms/op")
	b.ReportMetric(float64(journal.Microseconds())/1000/float64(b.N), "journal-ms/op")
	b.ReportMetric(float64(journal)/float64(cards), "x-faster")
}
