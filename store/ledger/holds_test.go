package ledger_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	pledger "github.com/punchcard/punchcard/protocol/ledger"
	"github.com/punchcard/punchcard/store/ledger"
)

// TestHolds pins the online-first holds as the ledger database keeps them
// (ledger_holds): replaced per owner, read while not expired, a lapsed one
// dropped only as it was read, long-expired ones swept; and seen by a
// second ledger on the same file and after a reopen (a restarted hub, or
// several hubs on one database).
func TestHolds(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "hub.db")
	open := func() *ledger.Ledger {
		t.Helper()
		l, err := ledger.Open(ctx, path, ledger.Options{Facts: &ledger.MemFacts{}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { l.Close() })
		return l
	}
	a, b := open(), open()
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	k := pledger.HoldKey{Kind: pledger.HoldCode, A: "GIFT1"}
	hold := func(owner string, spend int64, exp time.Time) pledger.Hold {
		return pledger.Hold{HoldKey: k, Owner: owner, Uses: 1, Spend: spend, BaseSpent: 20_00, Expires: exp}
	}
	owners := func(l *ledger.Ledger, at time.Time) map[string]int64 {
		t.Helper()
		hs, err := l.Holds(ctx, tenant, k, at)
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]int64{}
		for _, h := range hs {
			m[h.Owner] += h.Spend
		}
		return m
	}
	if err := a.ReplaceHolds(ctx, tenant, "till-1/t1", []pledger.Hold{hold("till-1/t1", 30_00, now.Add(time.Minute))}, now); err != nil {
		t.Fatal(err)
	}
	if m := owners(b, now); m["till-1/t1"] != 30_00 || len(m) != 1 {
		t.Fatalf("the other ledger on the file sees %v", m)
	}
	// A repeat of the same transaction replaces its hold.
	if err := b.ReplaceHolds(ctx, tenant, "till-1/t1", []pledger.Hold{hold("till-1/t1", 10_00, now.Add(time.Minute))}, now); err != nil {
		t.Fatal(err)
	}
	if m := owners(a, now); m["till-1/t1"] != 10_00 || len(m) != 1 {
		t.Fatalf("after a repeat: %v", m)
	}
	// Expired: not read.
	if m := owners(a, now.Add(2*time.Minute)); len(m) != 0 {
		t.Fatalf("expired hold read: %v", m)
	}
	// A lapsed hold is dropped as read; replaced meanwhile, it stays.
	read, err := a.Holds(ctx, tenant, k, now)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.ReplaceHolds(ctx, tenant, "till-1/t1", []pledger.Hold{hold("till-1/t1", 10_00, now.Add(90*time.Second))}, now); err != nil {
		t.Fatal(err)
	}
	if err := a.DropHolds(ctx, tenant, read); err != nil {
		t.Fatal(err)
	}
	if m := owners(a, now); m["till-1/t1"] != 10_00 {
		t.Fatalf("a replaced hold was dropped: %v", m)
	}
	read, _ = a.Holds(ctx, tenant, k, now)
	if err := a.DropHolds(ctx, tenant, read); err != nil {
		t.Fatal(err)
	}
	if m := owners(a, now); len(m) != 0 {
		t.Fatalf("lapsed hold kept: %v", m)
	}
	// Survives a reopen; a hold nobody reads again is swept by a later
	// replace, long after it expired.
	if err := a.ReplaceHolds(ctx, tenant, "till-3/t1", []pledger.Hold{hold("till-3/t1", 0, now.Add(time.Minute))}, now); err != nil {
		t.Fatal(err)
	}
	a.Close()
	c := open()
	if m := owners(c, now); len(m) != 1 {
		t.Fatalf("after a reopen: %v", m)
	}
	later := now.Add(time.Hour)
	if err := c.ReplaceHolds(ctx, tenant, "till-4/t1", nil, later); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := c.DB().QueryRow(`SELECT COUNT(*) FROM ledger_holds`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("stale holds not swept: %d %v", n, err)
	}
	// Lapse: the ledger's figure passes the base by what is held.
	h := hold("x", 30_00, now)
	if h.Reflected(0, 20_00) || h.Reflected(1, 40_00) || !h.Reflected(1, 50_00) {
		t.Fatal("Reflected")
	}
}
