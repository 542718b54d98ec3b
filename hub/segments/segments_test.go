package segments_test

import (
	"context"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/punchcard/punchcard/hub/segments"
	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/protocol/segment"
	"github.com/punchcard/punchcard/store"
	"github.com/punchcard/punchcard/store/catalog"
	"github.com/punchcard/punchcard/store/ledger"
)

// TestRunTenant: the periodic run moves customers in and out of the
// time-based segments ("no purchase for 90 days", "birthday this month")
// as the clock passes, with no fact; a second run at the same moment
// changes nothing.
func TestRunTenant(t *testing.T) {
	ctx := context.Background()
	db, err := store.Open(ctx, filepath.Join(t.TempDir(), "hub.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	cat, err := catalog.New(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 30, 23, 30, 0, 0, time.UTC) // Dec 1, 00:30 in Berlin (CET)
	led, err := ledger.New(ctx, db, ledger.Options{Facts: cat, Segments: cat, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { led.Close() })
	if _, err := cat.CreateTenant(ctx, catalog.System, catalog.Tenant{ID: "acme", Name: "acme", Currency: "EUR"}); err != nil {
		t.Fatal(err)
	}
	for _, d := range []segment.Definition{
		{ID: "lapsed", TimeZone: "Europe/Berlin", Rules: []segment.Rule{{Kind: segment.KindLapsed, Days: 90}}},
		{ID: "bday", TimeZone: "Europe/Berlin", Rules: []segment.Rule{{Kind: segment.KindBirthdayMonth}}},
	} {
		if _, err := cat.PutSegment(ctx, "acme", d); err != nil {
			t.Fatal(err)
		}
	}
	for _, cu := range []catalog.Customer{{ID: "c1", Attributes: map[string]string{"birthday": "1990-12-05"}}, {ID: "c2"}} {
		if _, err := cat.CreateCustomer(ctx, catalog.System, "acme", cu); err != nil {
			t.Fatal(err)
		}
	}
	// c2 bought on Sep 2, 12:00 UTC (a hub fact).
	buy := protocol.Redemption{ID: protocol.RedemptionID{Agent: "till-1", Seq: 1}, Kind: protocol.KindRedeem, Tenant: "acme", Store: "s1", TxnID: "t1",
		Customer: "c2", Currency: "EUR", OrderTot: 50_00, HLC: ledger.HLCFromTime(time.Date(2026, 9, 2, 12, 0, 0, 0, time.UTC)), Offline: true}
	if _, _, err := led.ApplyBatch(ctx, "acme", "till-1", []protocol.Redemption{buy}); err != nil {
		t.Fatal(err)
	}
	svc := segments.New(cat, led)
	stored := func(c protocol.CustomerID) []string {
		gs, err := led.CustomerSegments(ctx, "acme", c)
		if err != nil {
			t.Fatal(err)
		}
		return gs
	}
	// Nov 30 23:30 UTC is Dec 1 in Berlin: c1's birthday month; c2's
	// purchase (Sep 2) is before the 90 Berlin days Sep 3 .. Dec 1.
	if got := stored("c2"); !slices.Equal(got, []string{"lapsed"}) {
		t.Fatalf("c2 after its (old) purchase arrived: %v, want [lapsed] (computed with the fact)", got)
	}
	if n, err := svc.RunTenant(ctx, "acme", now); err != nil || n != 1 {
		t.Fatalf("first run: %d changed, %v; want 1 (c1's birthday month)", n, err)
	}
	if got := stored("c1"); !slices.Equal(got, []string{"bday"}) {
		t.Fatalf("c1 %v", got)
	}
	if got := stored("c2"); !slices.Equal(got, []string{"lapsed"}) {
		t.Fatalf("c2 %v", got)
	}
	if n, err := svc.RunTenant(ctx, "acme", now); err != nil || n != 0 {
		t.Fatalf("second run: %d changed, %v (idempotent)", n, err)
	}
	// One hour earlier it is still November in Berlin, and c2's purchase
	// is inside the window.
	if n, _ := svc.RunTenant(ctx, "acme", now.Add(-time.Hour)); n != 2 || len(stored("c1")) != 0 || len(stored("c2")) != 0 {
		t.Fatalf("Nov 30 in Berlin: %d changed, c1 %v c2 %v", n, stored("c1"), stored("c2"))
	}
	// On-fact recomputation: a new purchase of c2 takes it out of lapsed
	// in the fact's transaction (the ledger has the definitions).
	svc.RunTenant(ctx, "acme", now)
	buy.ID.Seq, buy.TxnID, buy.HLC = 2, "t2", ledger.HLCFromTime(now.Add(-time.Minute))
	if _, _, err := led.ApplyBatch(ctx, "acme", "till-1", []protocol.Redemption{buy}); err != nil {
		t.Fatal(err)
	}
	if got := stored("c2"); len(got) != 0 {
		t.Fatalf("c2 after a new purchase: %v", got)
	}
}
