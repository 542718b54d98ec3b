package online_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/punchcard/punchcard/hub/online"
	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/protocol/decide"
	"github.com/punchcard/punchcard/protocol/snapshot"
	"github.com/punchcard/punchcard/store"
	"github.com/punchcard/punchcard/store/catalog"
	"github.com/punchcard/punchcard/store/ledger"
)

// BenchmarkAuthorizeFresh is what a code newer than the till's snapshot
// costs the hub: an online-first redeem (with its hold) of a single-use
// code among 20,000, each iteration a new code, asked by a till whose
// snapshot knows the code (known: the same-run baseline) and by one that
// names it unknown, so the answer carries the code's record (unknown: one
// more catalog read), alternating. It reports both per operation and
// their ratio; run with -count 5 or more and take medians.
func BenchmarkAuthorizeFresh(b *testing.B) {
	ctx := context.Background()
	db, err := store.Open(ctx, filepath.Join(b.TempDir(), "hub.db"), store.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	cat, err := catalog.New(ctx, db)
	if err != nil {
		b.Fatal(err)
	}
	led, err := ledger.New(ctx, db, ledger.Options{Facts: cat})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { led.Close() })
	if _, err := cat.CreateTenant(ctx, catalog.System, catalog.Tenant{ID: "acme", Name: "Acme", Currency: "EUR"}); err != nil {
		b.Fatal(err)
	}
	if _, err := cat.CreateCampaign(ctx, catalog.System, "acme", []byte(`{"schema":1,"id":"ten","tenant":"acme","status":"active","currency":"EUR","reward":{"kind":"percent_off","percent_bp":1000}}`)); err != nil {
		b.Fatal(err)
	}
	const n = 20_000
	codes := make([]string, n)
	for i := range codes {
		codes[i] = fmt.Sprintf("ONCE%06d", i)
	}
	for i := 0; i < n; i += 10_000 {
		if _, err := cat.ImportCodes(ctx, catalog.System, "acme", "ten", codes[i:i+10_000], catalog.CodeSpec{Uses: 1}); err != nil {
			b.Fatal(err)
		}
	}
	st := snapshot.Store{ID: "store-1", TimeZone: "Europe/Berlin"}
	s := online.New(cat, led)
	next := 0
	ask := func(b *testing.B, unknown []int) time.Duration {
		code := codes[next%n]
		next++
		txn := fmt.Sprintf("t%d", next)
		t0 := time.Now()
		r, err := s.Authorize(ctx, "acme", "till-1", st, decide.AuthorizeRequest{TxnID: txn, Hold: true, Unknown: unknown,
			Order:       protocol.Order{ID: txn, Currency: "EUR", Lines: []protocol.Line{{SKU: "tv", Quantity: 1, UnitPrice: 500_00}}},
			Redeemables: []decide.AuthorizeInput{{Code: code}}})
		d := time.Since(t0)
		if err != nil {
			b.Fatal(err)
		}
		if len(r.Codes) != len(unknown) {
			b.Fatalf("%s: %d records, want %d (%+v)", code, len(r.Codes), len(unknown), r.Decision.Results)
		}
		return d
	}
	// Known and Unknown alternate, so both see the same hold table and
	// ledger as they grow.
	var known, fresh time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		known += ask(b, nil)
		fresh += ask(b, []int{0})
	}
	b.ReportMetric(float64(known.Microseconds())/float64(b.N), "known-µs/op")
	b.ReportMetric(float64(fresh.Microseconds())/float64(b.N), "unknown-µs/op")
	b.ReportMetric(float64(fresh)/float64(known), "unknown/known")
}
