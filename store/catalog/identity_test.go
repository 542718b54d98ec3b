package catalog_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"testing"

	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/protocol/snapshot"
	"github.com/punchcard/punchcard/store/catalog"
)

// TestIdentityRules: tenant and agent IDs become MQTT topic levels,
// usernames and client IDs, so registration refuses what a supported
// broker would not take ('.' is refused as a client ID by NATS 2.15) and
// the reserved names (agent "hub" is the hub's own sender).
func TestIdentityRules(t *testing.T) {
	ctx := context.Background()
	c, _ := MustOpen(t)
	for _, id := range []string{"hub", "HUB", "punchcard-hub", "punchcard", "till.1", "a/b", "a+b", "a#b", "$SYS", "a b", ""} {
		_, _, err := c.RegisterAgent(ctx, catalog.System, catalog.Agent{Tenant: "acme", ID: protocol.AgentID(id), Store: snapshot.Store{ID: "s1"}})
		wantCode(t, err, protocol.CodeInvalidInput, "id")
		_, err = c.CreateTenant(ctx, catalog.System, catalog.Tenant{ID: protocol.TenantID(id), Name: "X", Currency: "EUR"})
		wantCode(t, err, protocol.CodeInvalidInput, "id")
	}
	if _, _, err := c.RegisterAgent(ctx, catalog.System, catalog.Agent{Tenant: "acme", ID: "till_1-A", Store: snapshot.Store{ID: "s1"}}); err != nil {
		t.Fatal(err)
	}
}

// TestHubSigningKey: one key per database, created on first use, the same
// for every catalog (every hub) on that database.
func TestHubSigningKey(t *testing.T) {
	ctx := context.Background()
	c, _ := MustOpen(t)
	k1, err := c.HubSigningKey(ctx)
	if err != nil {
		t.Fatal(err)
	}
	other, err := catalog.New(ctx, c.DB())
	if err != nil {
		t.Fatal(err)
	}
	k2, err := other.HubSigningKey(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(k1, k2) || len(k1) != ed25519.PrivateKeySize {
		t.Fatal("two hubs on one database have different keys")
	}
	pub, err := c.HubPublicKey(ctx)
	if err != nil || !pub.Equal(k1.Public()) {
		t.Fatalf("public key: %v", err)
	}
}
