package catalog_test

import (
	"bytes"
	"context"
	"testing"

	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/protocol/codes"
	"github.com/punchcard/punchcard/protocol/snapshot"
	"github.com/punchcard/punchcard/store/catalog"
)

// TestSnapshotNoCodesInClear: a till's snapshot, full or delta, holds no
// gift card number or single-use code in clear, not even a revoked one.
func TestSnapshotNoCodesInClear(t *testing.T) {
	ctx := context.Background()
	c, _, clk := mustHub(t)
	if _, err := c.CreateCampaign(ctx, admin, "acme", campaignJSON("gift", "active", `{"kind":"gift_card"}`)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateCampaign(ctx, admin, "acme", campaignJSON("once", "active", percent10)); err != nil {
		t.Fatal(err)
	}
	gift, err := c.GenerateCodes(ctx, admin, "acme", "gift", catalog.GenerateRequest{Count: 20, Pattern: "####-####-####-####", CodeSpec: catalog.CodeSpec{Balance: 5000}})
	if err != nil {
		t.Fatal(err)
	}
	once := []string{"ONCE-AAAA-1111", "ONCE-BBBB-2222"}
	if _, err := c.ImportCodes(ctx, admin, "acme", "once", once, catalog.CodeSpec{}); err != nil {
		t.Fatal(err)
	}
	all := append(append([]string{}, gift...), once...)
	check := func(what string, s *snapshot.Snapshot, n int) {
		t.Helper()
		enc, err := snapshot.Encode(s)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range all {
			if k := codes.Normalize(p); bytes.Contains(enc, []byte(k)) || bytes.Contains(enc, []byte(p)) {
				t.Fatalf("%s snapshot holds %q in clear", what, p)
			}
		}
		if len(s.Codes)+len(s.Revocations) != n {
			t.Fatalf("%s snapshot: %d codes, %d revocations; want %d in all", what, len(s.Codes), len(s.Revocations), n)
		}
	}
	base, err := c.Snapshot(ctx, "acme", "till-1", 0)
	if err != nil {
		t.Fatal(err)
	}
	check("full", base, len(all))
	clk.Add(1)
	if _, err := c.RevokeCode(ctx, admin, "acme", gift[3]); err != nil {
		t.Fatal(err)
	}
	d, err := c.Snapshot(ctx, "acme", "till-1", base.Version)
	if err != nil {
		t.Fatal(err)
	}
	check("delta", d, 1)
	// What the till looks up by is there.
	if got, want := d.Revocations[0].ID, base.LookupID(protocol.CodeID(codes.Normalize(gift[3]))); got != want {
		t.Fatalf("revocation %s, want the hash %s", got, want)
	}
	found := false
	for _, sc := range base.Codes {
		found = found || sc.Code == base.LookupID(protocol.CodeID(codes.Normalize(once[1])))
	}
	if !found || len(base.CodeKey) != snapshot.CodeKeySize {
		t.Fatalf("ONCE-BBBB-2222 not found by its hash; code key %d bytes", len(base.CodeKey))
	}
	// Another tenant hashes with another key.
	if _, err := c.CreateTenant(ctx, catalog.System, catalog.Tenant{ID: "beta", Name: "Beta", Currency: "EUR"}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.RegisterAgent(ctx, catalog.System, catalog.Agent{Tenant: "beta", ID: "till-1", Store: snapshot.Store{ID: "s1"}}); err != nil {
		t.Fatal(err)
	}
	other, err := c.Snapshot(ctx, "beta", "till-1", 0)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(other.CodeKey, base.CodeKey) {
		t.Fatal("two tenants share a code key")
	}
}
