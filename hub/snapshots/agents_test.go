package snapshots_test

import (
	"context"
	"testing"

	"github.com/punchcard/punchcard/hub/snapshots"
	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/protocol/snapshot"
	"github.com/punchcard/punchcard/store/catalog"
)

// TestAgentsListedPerVersion: the agents' records come from one list per
// tenant and catalog version, so a change to one agent (which moves the
// version) reaches its next snapshot, and an agent registered after the
// list was read gets its own.
func TestAgentsListedPerVersion(t *testing.T) {
	ctx := context.Background()
	cat, led := mustStores(t)
	storeFleet(t, cat, 3)
	s, err := snapshots.New(cat, snapshots.Options{Ledger: led})
	if err != nil {
		t.Fatal(err)
	}
	get := func(agent string) *snapshot.Snapshot {
		t.Helper()
		a, err := s.Snapshot(ctx, snapshots.Request{Tenant: "acme", Agent: protocol.AgentID(agent)})
		if err != nil {
			t.Fatal(err)
		}
		return a.Snapshot
	}
	get("till-1")
	if got := get("till-2"); got.Agent != "till-2" || got.Envelope.Count == 7 {
		t.Fatalf("till-2: %+v", got.Envelope)
	}
	env := snapshot.RiskEnvelope{Currency: "EUR", PerRedemption: 100, PerCampaign: 500, TotalAmount: 1000, Count: 7, MaxStaleSeconds: 3600}
	if _, err := cat.SetEnvelope(ctx, catalog.System, "acme", "till-2", env); err != nil {
		t.Fatal(err)
	}
	if got := get("till-2"); got.Envelope != env {
		t.Fatalf("till-2 after its envelope changed: %+v, want %+v", got.Envelope, env)
	}
	get("till-1") // the list at the new version
	if _, _, err := cat.RegisterAgent(ctx, catalog.System, catalog.Agent{Tenant: "acme", ID: "till-new", Store: snapshot.Store{ID: "s2"}}); err != nil {
		t.Fatal(err)
	}
	if got := get("till-new"); got.Agent != "till-new" || got.Store.ID != "s2" {
		t.Fatalf("a new agent: %s at %+v", got.Agent, got.Store)
	}
	if _, err := s.Snapshot(ctx, snapshots.Request{Tenant: "acme", Agent: "till-none"}); err == nil {
		t.Fatal("an unknown agent got a snapshot")
	}
}
