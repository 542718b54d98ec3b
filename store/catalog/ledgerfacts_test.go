package catalog_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/protocol/snapshot"
	"github.com/punchcard/punchcard/store"
	"github.com/punchcard/punchcard/store/catalog"
	"github.com/punchcard/punchcard/store/ledger"
)

// mustHub opens a catalog and a ledger on one SQLite file, as the hub
// runs them, with tenant "acme" and agent "till-1".
func mustHub(tb testing.TB) (*catalog.Catalog, *ledger.Ledger, *clock) {
	tb.Helper()
	ctx := context.Background()
	db, err := store.Open(ctx, filepath.Join(tb.TempDir(), "hub.db"), store.Options{Sync: store.SyncNormal})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	c, err := catalog.New(ctx, db)
	if err != nil {
		tb.Fatal(err)
	}
	clk := &clock{t: time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)}
	c.Now = clk.Now
	l, err := ledger.New(ctx, db, ledger.Options{Facts: c, Now: clk.Now})
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := c.CreateTenant(ctx, catalog.System, catalog.Tenant{ID: "acme", Name: "Acme", Currency: "EUR"}); err != nil {
		tb.Fatal(err)
	}
	if _, _, err := c.RegisterAgent(ctx, admin, catalog.Agent{Tenant: "acme", ID: "till-1", Store: snapshot.Store{ID: "berlin-1"}}); err != nil {
		tb.Fatal(err)
	}
	return c, l, clk
}

func snapCode(s *snapshot.Snapshot, key protocol.CodeID) (snapshot.Code, bool) {
	for _, c := range s.Codes {
		if c.Code == s.LookupID(key) {
			return c, true
		}
	}
	return snapshot.Code{}, false
}

// TestSnapshotCodeStates: snapshots carry the ledger's uses and gift card
// spending, in full snapshots and in deltas at an unchanged version.
func TestSnapshotCodeStates(t *testing.T) {
	ctx := context.Background()
	c, l, _ := mustHub(t)
	if _, err := c.CreateCampaign(ctx, admin, "acme", campaignJSON("a", "active", percent10)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateCampaign(ctx, admin, "acme", campaignJSON("g", "active", giftCard)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ImportCodes(ctx, admin, "acme", "a", []string{"A-1", "A-2", "A-3"}, catalog.CodeSpec{}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ImportCodes(ctx, admin, "acme", "g", []string{"GIFT-1"}, catalog.CodeSpec{Balance: 5000}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.RevokeCode(ctx, admin, "acme", "A-3"); err != nil {
		t.Fatal(err)
	}
	base, err := c.Snapshot(ctx, "acme", "till-1", 0)
	if err != nil {
		t.Fatal(err)
	}
	// Online redemptions through the ledger: A-1 used, GIFT-1 spent 1200,
	// A-3 (revoked) used before its revocation.
	for _, r := range []protocol.Redemption{
		{Kind: protocol.KindRedeem, Tenant: "acme", TxnID: "t1", Campaign: "a", Code: "A1", Customer: "alice", Currency: "EUR", Discount: 100},
		{Kind: protocol.KindRedeem, Tenant: "acme", TxnID: "t2", Campaign: "g", Code: "GIFT1", Customer: "alice", Currency: "EUR", Spend: 1200},
	} {
		if _, err := l.Redeem(ctx, r); err != nil {
			t.Fatalf("redeem %s: %v", r.Code, err)
		}
	}
	states, err := l.CodeStates(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	t.Run("OK/Full", func(t *testing.T) {
		s, err := c.SnapshotWith(ctx, "acme", "till-1", 0, states)
		if err != nil {
			t.Fatal(err)
		}
		a1, _ := snapCode(s, "A1")
		a2, _ := snapCode(s, "A2")
		g, _ := snapCode(s, "GIFT1")
		if a1.Used != 1 || a2.Used != 0 || g.Used != 1 || g.Spent != 1200 || g.Balance == nil || g.Balance.Amount != 5000 {
			t.Fatalf("A1 %+v, A2 %+v, GIFT1 %+v", a1, a2, g)
		}
		if err := s.Validate(); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("OK/DeltaAtSameVersion", func(t *testing.T) {
		d, err := c.SnapshotWith(ctx, "acme", "till-1", base.Version, states)
		if err != nil {
			t.Fatal(err)
		}
		if d.Version != base.Version || len(d.Codes) != 2 {
			t.Fatalf("delta v%d codes %+v; want v%d with A1 and GIFT1", d.Version, d.Codes, base.Version)
		}
		if a1, ok := snapCode(d, "A1"); !ok || a1.Used != 1 || a1.Campaign != "a" || a1.Uses != 1 {
			t.Fatalf("A1 %+v", a1)
		}
		merged, err := snapshot.Merge(base, d)
		if err != nil {
			t.Fatal(err)
		}
		if g, _ := snapCode(merged, "GIFT1"); g.Spent != 1200 {
			t.Fatalf("merged GIFT1 %+v", g)
		}
	})
	t.Run("OK/DeltaWithoutStates", func(t *testing.T) {
		d, err := c.Snapshot(ctx, "acme", "till-1", base.Version)
		if err != nil || len(d.Codes) != 0 {
			t.Fatalf("delta without ledger: %+v %v", d.Codes, err)
		}
	})
	t.Run("OK/SkipsRevokedAndSerials", func(t *testing.T) {
		extra := map[protocol.CodeID]protocol.CodeState{"A3": {Used: 1}, "TK-SERIAL": {Used: 1}}
		d, err := c.SnapshotWith(ctx, "acme", "till-1", base.Version, extra)
		if err != nil || len(d.Codes) != 0 {
			t.Fatalf("delta %+v %v; want no codes", d.Codes, err)
		}
	})
}

// TestCampaignStops: a restart keeps the stopped interval, so a
// redemption made offline while the campaign was stopped is flagged when
// it syncs after the restart; one made before the stop is not.
func TestCampaignStops(t *testing.T) {
	ctx := context.Background()
	c, l, clk := mustHub(t)
	t0 := clk.Now()
	if _, err := c.CreateCampaign(ctx, admin, "acme", campaignJSON("flash", "active", percent10)); err != nil {
		t.Fatal(err)
	}
	clk.Add(time.Hour)
	if _, err := c.StopCampaign(ctx, admin, "acme", "flash"); err != nil {
		t.Fatal(err)
	}
	clk.Add(time.Hour)
	if _, err := c.StartCampaign(ctx, admin, "acme", "flash"); err != nil {
		t.Fatal(err)
	}
	f, ok, err := c.CampaignFacts(ctx, "acme", "flash")
	if err != nil || !ok {
		t.Fatal(ok, err)
	}
	if !f.StoppedAt.IsZero() || len(f.Stops) != 1 || !f.Stops[0].From.Equal(t0.Add(time.Hour)) || !f.Stops[0].To.Equal(t0.Add(2*time.Hour)) {
		t.Fatalf("facts %+v", f)
	}
	clk.Add(time.Hour)
	for _, tc := range []struct {
		name string
		seq  uint64
		at   time.Duration
		want int
	}{
		{"OK/BeforeStop", 1, 30 * time.Minute, 0},
		{"ErrStoppedWindow", 2, 90 * time.Minute, 1},
		{"OK/AfterRestart", 3, 150 * time.Minute, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := protocol.Redemption{ID: protocol.RedemptionID{Agent: "till-1", Seq: tc.seq}, Kind: protocol.KindRedeem, Tenant: "acme",
				Campaign: "flash", Currency: "EUR", Discount: 100, HLC: ledger.HLCFromTime(t0.Add(tc.at)), Offline: true}
			// The campaign has a budget and till-1 no allowance: every
			// redemption is also an allowance_overrun; count the others.
			_, cs, err := l.ApplyBatch(ctx, "acme", "till-1", []protocol.Redemption{r})
			n := 0
			for _, c := range cs {
				if c.Kind == ledger.ConflictAfterKillSwitch {
					n++
				}
			}
			if err != nil || n != tc.want {
				t.Fatalf("conflicts %+v, err %v; want %d after_kill_switch", cs, err, tc.want)
			}
		})
	}
	t.Run("OK/Draft", func(t *testing.T) {
		if _, err := c.CreateCampaign(ctx, admin, "acme", campaignJSON("later", "draft", percent10)); err != nil {
			t.Fatal(err)
		}
		f, _, err := c.CampaignFacts(ctx, "acme", "later")
		if err != nil || len(f.Stops) != 1 || !f.Stops[0].To.IsZero() {
			t.Fatalf("draft facts %+v %v; want one open interval", f, err)
		}
	})
	if rep, err := l.Verify(ctx); err != nil || !rep.OK() {
		t.Fatalf("verify: %v %v", rep.Diffs, err)
	}
}
