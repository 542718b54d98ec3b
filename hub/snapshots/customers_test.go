package snapshots_test

import (
	"context"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/punchcard/punchcard/hub/snapshots"
	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/protocol/segment"
	"github.com/punchcard/punchcard/protocol/snapshot"
	"github.com/punchcard/punchcard/protocol/tiers"
	"github.com/punchcard/punchcard/store"
	"github.com/punchcard/punchcard/store/catalog"
	"github.com/punchcard/punchcard/store/ledger"
)

// segCountingLedger counts the reads of every stored membership.
type segCountingLedger struct {
	*ledger.Ledger
	whole atomic.Int64
}

func (l *segCountingLedger) SnapshotSegments(ctx context.Context, tenant protocol.TenantID, segs []string, limit int) ([]snapshot.CustomerSegments, error) {
	l.whole.Add(1)
	return l.Ledger.SnapshotSegments(ctx, tenant, segs, limit)
}

// customerStores is a catalog and ledger on one file with a tier
// programme (gold from 100 points), customers c1..c3, a till and an
// active campaign naming the segment "vip".
func customerStores(t *testing.T) (*catalog.Catalog, *segCountingLedger) { return customerStoresB(t) }

func customerStoresB(t testing.TB) (*catalog.Catalog, *segCountingLedger) {
	t.Helper()
	ctx := context.Background()
	db, err := store.Open(ctx, filepath.Join(t.TempDir(), "hub.db"), store.Options{Sync: store.SyncNormal})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	cat, err := catalog.New(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	led, err := ledger.New(ctx, db, ledger.Options{Facts: cat, Rules: cat, Tiers: cat})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { led.Close() })
	if _, err := cat.CreateTenant(ctx, catalog.System, catalog.Tenant{ID: "acme", Name: "Acme", Currency: "EUR"}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := cat.RegisterAgent(ctx, catalog.System, catalog.Agent{Tenant: "acme", ID: "till-1", Store: snapshot.Store{ID: "s1"}}); err != nil {
		t.Fatal(err)
	}
	for _, id := range []protocol.CustomerID{"c1", "c2", "c3"} {
		if _, err := cat.CreateCustomer(ctx, catalog.System, "acme", catalog.Customer{ID: id}); err != nil {
			t.Fatal(err)
		}
	}
	doc := `{"schema":1,"id":"vipdeal","tenant":"acme","status":"active","currency":"EUR","eligibility":{"segments":["vip"]},"reward":{"kind":"percent_off","percent_bp":1000}}`
	if _, err := cat.CreateCampaign(ctx, catalog.System, "acme", []byte(doc)); err != nil {
		t.Fatal(err)
	}
	p := tiers.Program{Tiers: []tiers.Level{{Name: "gold", Min: 100}}, Measure: tiers.MeasurePoints, Window: tiers.Window{Kind: tiers.WindowRolling, Days: 365}}
	if _, err := cat.SetTierProgram(ctx, catalog.System, "acme", p); err != nil {
		t.Fatal(err)
	}
	// c3 is already in "vip" and gold before the tills' first snapshot.
	if _, err := led.SetSegments(ctx, "acme", []segment.Update{{Customer: "c3", Segments: []string{"vip"}}}, time.Now()); err != nil {
		t.Fatal(err)
	}
	earnPoints(t, led, "c3", "t0", 150)
	return cat, &segCountingLedger{Ledger: led}
}

func earnPoints(t testing.TB, led *ledger.Ledger, cu protocol.CustomerID, txn string, points int64) {
	t.Helper()
	if _, err := led.Redeem(context.Background(), protocol.Redemption{Kind: protocol.KindEarn, Tenant: "acme", Store: "web", TxnID: txn,
		Customer: cu, Points: points, OrderTot: points * 10, Currency: "EUR"}); err != nil {
		t.Fatal(err)
	}
}

// TestCustomerStateDelta pins issue 10's "customer state must not bump
// the catalog version": a tier change and a segment change each leave
// the catalog version where it was and reach a till as a small
// customer-state delta (only the changed customer, laid over what the
// till holds), and a poll or a delta when nothing else changed does not
// read every stored membership. On the old code a tier change moved the
// catalog version (every till of the tenant fetched a catalog delta)
// and each request read the memberships whole.
func TestCustomerStateDelta(t *testing.T) {
	ctx := context.Background()
	cat, led := customerStores(t)
	svc, err := snapshots.New(cat, snapshots.Options{Ledger: led})
	if err != nil {
		t.Fatal(err)
	}
	v0, err := cat.Version(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	full, err := svc.Snapshot(ctx, snapshots.Request{Tenant: "acme", Agent: "till-1"})
	if err != nil {
		t.Fatal(err)
	}
	base := full.Snapshot
	if base.Customers == 0 || len(base.Tiers) != 1 || base.Tiers[0] != (snapshot.CustomerTier{Customer: "c3", Tier: "gold"}) ||
		len(base.Segments) != 1 || base.Segments[0].Customer != "c3" {
		t.Fatalf("full snapshot: position %d, tiers %+v, segments %+v", base.Customers, base.Tiers, base.Segments)
	}
	poll := func(name string, etag string) snapshots.Answer {
		t.Helper()
		ans, err := svc.Snapshot(ctx, snapshots.Request{Tenant: "acme", Agent: "till-1", Since: base.Version, Uses: base.Uses, HasUses: true,
			Customers: base.Customers, HasCustomers: true, IfNoneMatch: etag})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return ans
	}
	reads := led.whole.Load()
	if ans := poll("poll", full.ETag); !ans.NotModified {
		t.Fatal("a poll while nothing changed is not 304")
	}
	if n := led.whole.Load(); n != reads {
		t.Fatalf("a poll while nothing changed read every membership (%d reads)", n-reads)
	}

	// A tier change: c1 earns gold.
	earnPoints(t, led.Ledger, "c1", "t1", 120)
	if v, err := cat.Version(ctx, "acme"); err != nil || v != v0 {
		t.Fatalf("catalog version %d after a tier change, want %d unmoved (%v)", v, v0, err)
	}
	if cu, err := cat.Customer(ctx, "acme", "c1"); err != nil || cu.Tier != "gold" {
		t.Fatalf("the catalog's customer c1 has tier %q (%v), want gold at once", cu.Tier, err)
	}
	ans := poll("tier delta", full.ETag)
	d := ans.Snapshot
	if ans.NotModified || d == nil {
		t.Fatal("the tier change did not reach the till")
	}
	if d.Since != v0 || len(d.Campaigns) != 0 || d.CustomersSince != base.Customers || d.Customers <= base.Customers {
		t.Fatalf("delta since %d (%d campaigns), customers since %d at %d; want a customer-state delta since %d", d.Since, len(d.Campaigns), d.CustomersSince, d.Customers, base.Customers)
	}
	if len(d.Tiers) != 1 || d.Tiers[0] != (snapshot.CustomerTier{Customer: "c1", Tier: "gold"}) || len(d.Segments) != 1 || len(d.Segments[0].Segments) != 0 {
		t.Fatalf("tier delta lists tiers %+v, segments %+v; want c1 alone", d.Tiers, d.Segments)
	}
	if n := led.whole.Load(); n != reads {
		t.Fatalf("a customer-state delta read every membership (%d reads)", n-reads)
	}
	merged, err := snapshot.Merge(base, d)
	if err != nil {
		t.Fatal(err)
	}
	if len(merged.Tiers) != 2 || len(merged.Segments) != 1 || merged.Customers != d.Customers {
		t.Fatalf("merged tiers %+v, segments %+v", merged.Tiers, merged.Segments)
	}
	base, full = merged, ans

	// A segment change: c2 enters "vip", c3 leaves it.
	if _, err := led.SetSegments(ctx, "acme", []segment.Update{{Customer: "c2", Segments: []string{"vip"}}, {Customer: "c3"}}, time.Now()); err != nil {
		t.Fatal(err)
	}
	if v, err := cat.Version(ctx, "acme"); err != nil || v != v0 {
		t.Fatalf("catalog version %d after a segment change, want %d unmoved (%v)", v, v0, err)
	}
	ans = poll("segment delta", full.ETag)
	d = ans.Snapshot
	if ans.NotModified || d == nil || d.CustomersSince != base.Customers {
		t.Fatalf("the segment change did not reach the till as a customer-state delta: %+v", d)
	}
	if len(d.Segments) != 2 || d.Segments[0].Customer != "c2" || len(d.Segments[0].Segments) != 1 || d.Segments[1].Customer != "c3" || len(d.Segments[1].Segments) != 0 {
		t.Fatalf("segment delta %+v, want c2 in vip and c3 in none", d.Segments)
	}
	if n := led.whole.Load(); n != reads {
		t.Fatalf("a customer-state delta read every membership (%d reads)", n-reads)
	}
	merged, err = snapshot.Merge(base, d)
	if err != nil {
		t.Fatal(err)
	}
	if len(merged.Segments) != 1 || merged.Segments[0].Customer != "c2" {
		t.Fatalf("merged segments %+v", merged.Segments)
	}
	// The merged lists equal a full snapshot's.
	again, err := svc.Snapshot(ctx, snapshots.Request{Tenant: "acme", Agent: "till-1"})
	if err != nil {
		t.Fatal(err)
	}
	if len(again.Snapshot.Tiers) != len(merged.Tiers) || len(again.Snapshot.Segments) != len(merged.Segments) || again.Snapshot.Customers != merged.Customers {
		t.Fatalf("full %+v %+v at %d, merged %+v %+v at %d", again.Snapshot.Tiers, again.Snapshot.Segments, again.Snapshot.Customers,
			merged.Tiers, merged.Segments, merged.Customers)
	}
	// An agent before the sequence (no position) still gets whole
	// segments and the catalog's tiers.
	old, err := svc.Snapshot(ctx, snapshots.Request{Tenant: "acme", Agent: "till-1", Since: v0, Uses: base.Uses, HasUses: true})
	if err != nil || old.Snapshot == nil || len(old.Snapshot.Segments) != 1 || old.Snapshot.Customers != 0 {
		t.Fatalf("old agent's delta %+v, %v", old.Snapshot, err)
	}
}

// TestWholeCustomersShared: after a catalog change every till's fetch
// takes the whole customer lists; the tills that read the same catalog
// version and customer-state position share one read of them, and a
// change of either position (a tier the ledger sets, a customer erased in
// the catalog) is in the next fetch's lists. On the old code each fetch
// read the lists (the second till's fetch read the memberships again).
func TestWholeCustomersShared(t *testing.T) {
	ctx := context.Background()
	cat, led := customerStores(t)
	if _, _, err := cat.RegisterAgent(ctx, catalog.System, catalog.Agent{Tenant: "acme", ID: "till-2", Store: snapshot.Store{ID: "s1"}}); err != nil {
		t.Fatal(err)
	}
	svc, err := snapshots.New(cat, snapshots.Options{Ledger: led})
	if err != nil {
		t.Fatal(err)
	}
	held := map[protocol.AgentID]*snapshot.Snapshot{}
	for _, a := range []protocol.AgentID{"till-1", "till-2"} {
		ans, err := svc.Snapshot(ctx, snapshots.Request{Tenant: "acme", Agent: a})
		if err != nil {
			t.Fatal(err)
		}
		held[a] = ans.Snapshot
	}
	doc := `{"schema":1,"id":"other","tenant":"acme","status":"active","currency":"EUR","reward":{"kind":"percent_off","percent_bp":500}}`
	if _, err := cat.CreateCampaign(ctx, catalog.System, "acme", []byte(doc)); err != nil {
		t.Fatal(err)
	}
	fetch := func(a protocol.AgentID) *snapshot.Snapshot {
		t.Helper()
		h := held[a]
		ans, err := svc.Snapshot(ctx, snapshots.Request{Tenant: "acme", Agent: a, Since: h.Version, Uses: h.Uses, HasUses: true,
			Customers: h.Customers, HasCustomers: true})
		if err != nil {
			t.Fatal(err)
		}
		if s := ans.Snapshot; s == nil || s.Since != h.Version || s.CustomersSince != 0 {
			t.Fatalf("%s: %+v, want a catalog delta with whole customer lists", a, s)
		}
		return ans.Snapshot
	}
	tiersOf := func(s *snapshot.Snapshot) map[protocol.CustomerID]string {
		out := map[protocol.CustomerID]string{}
		for _, ct := range s.Tiers {
			out[ct.Customer] = ct.Tier
		}
		return out
	}
	reads := led.whole.Load()
	for _, a := range []protocol.AgentID{"till-1", "till-2"} {
		s := fetch(a)
		if got := tiersOf(s); len(got) != 1 || got["c3"] != "gold" || len(s.Segments) != 1 || s.Segments[0].Customer != "c3" {
			t.Fatalf("%s: tiers %v, segments %+v, want c3 gold and vip", a, got, s.Segments)
		}
	}
	if got := led.whole.Load() - reads; got != 1 {
		t.Errorf("two fetches at the same positions read the memberships %d times, want 1", got)
	}
	earnPoints(t, led.Ledger, "c1", "t1", 150) // the ledger makes c1 gold: the customer-state position moves
	if got := tiersOf(fetch("till-1")); len(got) != 2 || got["c1"] != "gold" {
		t.Errorf("after c1's tier change: tiers %v, want c1 and c3 gold", got)
	}
	if _, err := cat.EraseCustomer(ctx, catalog.System, "acme", "c3"); err != nil { // the catalog version moves
		t.Fatal(err)
	}
	if got := tiersOf(fetch("till-2")); len(got) != 1 || got["c1"] != "gold" {
		t.Errorf("after c3's erasure: tiers %v, want c1 gold alone", got)
	}
}
