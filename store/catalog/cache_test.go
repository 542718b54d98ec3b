package catalog_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/store"
	"github.com/punchcard/punchcard/store/catalog"
	"github.com/punchcard/punchcard/store/ledger"
)

// twoHubs opens one hub database file twice, as two hub processes sharing
// it would: two pools, two catalogs, each with its own read cache. The
// first has a ledger on it; tenant "acme" has campaign "summer" with code
// SUMMER.
func twoHubs(t *testing.T, ttl time.Duration) (a, b *catalog.Catalog, l *ledger.Ledger) {
	t.Helper()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "hub.db")
	open := func() *catalog.Catalog {
		db, err := store.Open(ctx, path, store.Options{Sync: store.SyncNormal})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		c, err := catalog.New(ctx, db)
		if err != nil {
			t.Fatal(err)
		}
		c.CacheTTL = ttl
		return c
	}
	a = open()
	if _, err := a.CreateTenant(ctx, catalog.System, catalog.Tenant{ID: "acme", Name: "Acme", Currency: "EUR"}); err != nil {
		t.Fatal(err)
	}
	var err error
	if l, err = ledger.New(ctx, a.DB(), ledger.Options{Facts: a}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	b = open()
	if _, err := a.CreateCampaign(ctx, admin, "acme", campaignJSON("summer", "active", percent10)); err != nil {
		t.Fatal(err)
	}
	if _, err := a.ImportCodes(ctx, admin, "acme", "summer", []string{"SUMMER"}, catalog.CodeSpec{Uses: -1}); err != nil {
		t.Fatal(err)
	}
	return a, b, l
}

// TestCacheRevokedKey: a revoked API key stops working at once in the hub
// that revoked it, and within the cache TTL in another hub sharing the
// file; until then it was served from the cache.
func TestCacheRevokedKey(t *testing.T) {
	ctx := context.Background()
	a, b, _ := twoHubs(t, 200*time.Millisecond)
	k1, s1, err := a.CreateKey(ctx, admin, "acme", catalog.RoleSupport, "shop-1")
	if err != nil {
		t.Fatal(err)
	}
	k2, s2, err := a.CreateKey(ctx, admin, "acme", catalog.RoleSupport, "shop-2")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{s1, s2} {
		if _, err := a.Authenticate(ctx, s); err != nil { // cached now
			t.Fatal(err)
		}
	}
	// Revoked by the same hub: refused on the next request.
	if err := a.RevokeKey(ctx, admin, "acme", k1.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Authenticate(ctx, s1); protocol.ErrorCode(err) != protocol.CodeUnauthenticated {
		t.Fatalf("revoked key: err = %v, want unauthenticated at once", err)
	}
	// Revoked by the other hub: refused once the TTL has passed.
	if _, err := a.Authenticate(ctx, s2); err != nil {
		t.Fatal(err)
	}
	revoked := time.Now()
	if err := b.RevokeKey(ctx, admin, "acme", k2.ID); err != nil {
		t.Fatal(err)
	}
	for {
		_, err := a.Authenticate(ctx, s2)
		if protocol.ErrorCode(err) == protocol.CodeUnauthenticated {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if time.Since(revoked) > time.Minute {
			t.Fatal("a key revoked by another hub still works after a minute")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestCacheFollowsVersion: codes, customers and facts come from the cache
// until the catalog version moves: by this hub, seen at once, or by
// another one, seen within the cache TTL.
func TestCacheFollowsVersion(t *testing.T) {
	ctx := context.Background()
	a, b, _ := twoHubs(t, 100*time.Millisecond)
	if _, err := a.CreateCustomer(ctx, admin, "acme", catalog.Customer{ID: "c1", Tier: "gold"}); err != nil {
		t.Fatal(err)
	}
	cu, err := a.Customer(ctx, "acme", "c1")
	if err != nil || cu.Tier != "gold" {
		t.Fatalf("%+v %v", cu, err)
	}
	if _, err := a.Code(ctx, "acme", "summer"); err != nil {
		t.Fatal(err)
	}
	f, found, err := a.CampaignFacts(ctx, "acme", "summer")
	if err != nil || !found || !f.StoppedAt.IsZero() {
		t.Fatalf("%+v %v %v", f, found, err)
	}
	// Changed by this hub: seen at once.
	if _, err := a.UpdateCustomer(ctx, admin, "acme", catalog.Customer{ID: "c1", Tier: "silver"}); err != nil {
		t.Fatal(err)
	}
	if cu, _ := a.Customer(ctx, "acme", "c1"); cu.Tier != "silver" {
		t.Fatalf("tier %q after this hub's update", cu.Tier)
	}
	// Changed by the other hub: the cache answers until the TTL has
	// passed, then reads the stored version again.
	if _, err := a.Code(ctx, "acme", "summer"); err != nil {
		t.Fatal(err)
	}
	v0, err := a.Version(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.RevokeCode(ctx, admin, "acme", "SUMMER"); err != nil {
		t.Fatal(err)
	}
	if _, err := b.StopCampaign(ctx, admin, "acme", "summer"); err != nil {
		t.Fatal(err)
	}
	changed := time.Now()
	for {
		v, err := a.Version(ctx, "acme")
		if err != nil {
			t.Fatal(err)
		}
		if v != v0 {
			if cd, _ := a.Code(ctx, "acme", "SUMMER"); cd.RevokedAt.IsZero() {
				t.Fatal("code revoked by another hub still shown unrevoked at the new version")
			}
			if f, _, _ := a.CampaignFacts(ctx, "acme", "summer"); f.StoppedAt.IsZero() {
				t.Fatal("campaign stopped by another hub still running at the new version")
			}
			break
		}
		if time.Since(changed) > time.Minute {
			t.Fatal("another hub's change not seen after a minute")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestCacheKillSwitchOtherHub: the ledger's online writer checks a basket
// against the facts of the stored catalog version, inside its write
// transaction, even when the cache it decided on does not know yet of a
// kill switch another hub pulled (cache TTL one hour, no version read).
func TestCacheKillSwitchOtherHub(t *testing.T) {
	ctx := context.Background()
	a, b, l := twoHubs(t, time.Hour)
	r := protocol.Redemption{Kind: protocol.KindRedeem, Tenant: "acme", Store: "web", Campaign: "summer", Code: "SUMMER",
		Customer: "c1", Currency: "EUR", Discount: 100, OrderTot: 1000}
	r.TxnID = "t1"
	if _, err := l.Redeem(ctx, r); err != nil { // warms the cache
		t.Fatal(err)
	}
	if _, err := b.StopCampaign(ctx, admin, "acme", "summer"); err != nil {
		t.Fatal(err)
	}
	if f, _, _ := a.CampaignFacts(ctx, "acme", "summer"); !f.StoppedAt.IsZero() {
		t.Fatal("the cache should not know of the stop yet")
	}
	r.TxnID = "t2"
	if _, err := l.Redeem(ctx, r); protocol.ErrorCode(err) != protocol.CodeCampaignStopped {
		t.Fatalf("redeem after another hub's kill switch: err = %v, want campaign_stopped", err)
	}
	if n, _ := l.CodeUses(ctx, "acme", "SUMMER"); n != 1 {
		t.Fatalf("code uses = %d, want 1", n)
	}
}
