package snapshots_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/punchcard/punchcard/hub/snapshots"
	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/protocol/snapshot"
	"github.com/punchcard/punchcard/store/catalog"
)

// singleAgents counts the agent records read one at a time.
type singleAgents struct {
	*catalog.Catalog
	n atomic.Int64
}

func (c *singleAgents) Agent(ctx context.Context, tenant protocol.TenantID, id protocol.AgentID) (catalog.Agent, error) {
	c.n.Add(1)
	return c.Catalog.Agent(ctx, tenant, id)
}

// TestAgentsListedPerVersion: after BulkAfter requests at a catalog
// version read their agent's record on their own, the others come from
// one list per tenant and version; a change to one agent (which moves the
// version) reaches its next snapshot, and an agent registered after the
// list was read gets its own.
func TestAgentsListedPerVersion(t *testing.T) {
	ctx := context.Background()
	c, led := mustStores(t)
	storeFleet(t, c, 3)
	cat := &singleAgents{Catalog: c}
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
	// BulkAfter agents read one at a time, then the list for the others.
	for i := range snapshots.BulkAfter + 3 {
		id := fmt.Sprintf("bulk-%d", i)
		if _, _, err := c.RegisterAgent(ctx, catalog.System, catalog.Agent{Tenant: "acme", ID: protocol.AgentID(id), Store: snapshot.Store{ID: "s1"}}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range snapshots.BulkAfter + 3 {
		get(fmt.Sprintf("bulk-%d", i))
		get(fmt.Sprintf("bulk-%d", i)) // its own record, kept
	}
	if n := cat.n.Load(); n != snapshots.BulkAfter {
		t.Fatalf("%d records read one at a time, want %d", n, snapshots.BulkAfter)
	}
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

// TestAgentsSharedByAnnouncer: the agents a change is announced to
// (AnnouncerOptions.Listed, wired to Service.ShareAgents as the hub does)
// serve the fetches the announcement brings: no agent's record is read
// again, on its own or in another list, and each snapshot carries the
// record at the new version. An announcement made without the version
// read before the list (Announce) shares nothing.
func TestAgentsSharedByAnnouncer(t *testing.T) {
	cases := []struct {
		name    string
		changed bool // announced as a change is (Changed), else Announce
		reads   int64
	}{
		{"change", true, 0},
		{"announce", false, snapshots.BulkAfter},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			c, led := mustStores(t)
			storeFleet(t, c, 3)
			const n = snapshots.BulkAfter + 8
			for i := range n {
				if _, _, err := c.RegisterAgent(ctx, catalog.System, catalog.Agent{Tenant: "acme", ID: protocol.AgentID(fmt.Sprintf("bulk-%d", i)), Store: snapshot.Store{ID: "s1"}}); err != nil {
					t.Fatal(err)
				}
			}
			cat := &singleAgents{Catalog: c}
			s, err := snapshots.New(cat, snapshots.Options{Ledger: led})
			if err != nil {
				t.Fatal(err)
			}
			ags, err := c.Agents(ctx, "acme")
			if err != nil {
				t.Fatal(err)
			}
			pub := &publisher{sent: make(chan struct{}, len(ags))}
			a := snapshots.NewAnnouncer(cat, pub, snapshots.AnnouncerOptions{Listed: s.ShareAgents, AnnounceRate: -1})
			t.Cleanup(func() { a.Close() })
			env := snapshot.RiskEnvelope{Currency: "EUR", PerRedemption: 100, PerCampaign: 500, TotalAmount: 1000, Count: 7, MaxStaleSeconds: 3600}
			if _, err := cat.SetEnvelope(ctx, catalog.System, "acme", "bulk-3", env); err != nil {
				t.Fatal(err)
			}
			v, err := cat.Version(ctx, "acme")
			if err != nil {
				t.Fatal(err)
			}
			if tc.changed {
				a.Changed("acme", v)
			} else if err := a.Announce(ctx, "acme", v); err != nil {
				t.Fatal(err)
			}
			for range ags {
				<-pub.sent
			}
			for i := range n {
				id := protocol.AgentID(fmt.Sprintf("bulk-%d", i))
				ans, err := s.Snapshot(ctx, snapshots.Request{Tenant: "acme", Agent: id})
				if err != nil {
					t.Fatal(err)
				}
				if ans.Snapshot.Version != v || ans.Snapshot.Agent != id {
					t.Fatalf("%s: snapshot of %s at version %d, want version %d", id, ans.Snapshot.Agent, ans.Snapshot.Version, v)
				}
				if id == "bulk-3" && ans.Snapshot.Envelope != env {
					t.Fatalf("bulk-3's envelope %+v, want %+v", ans.Snapshot.Envelope, env)
				}
			}
			if got := cat.n.Load(); got != tc.reads {
				t.Fatalf("%d records read one at a time, want %d", got, tc.reads)
			}
		})
	}
}
