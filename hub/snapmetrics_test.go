package hub_test

import (
	"context"
	"testing"

	"github.com/punchcard/punchcard/hub/snapshots"
	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/protocol/snapshot"
	"github.com/punchcard/punchcard/store/catalog"
)

// TestSnapshotMetrics: the snapshot service's answers (a body, a quiet
// 304) and the announcements are counted in /metrics
// (punchcard_snapshot_*, docs/operations.md).
func TestSnapshotMetrics(t *testing.T) {
	ctx := context.Background()
	h := runIn(t, t.TempDir())
	if _, err := h.Catalog.CreateTenant(ctx, catalog.System, catalog.Tenant{ID: "acme", Name: "Acme", Currency: "EUR"}); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"till-1", "till-2"} {
		if _, _, err := h.Catalog.RegisterAgent(ctx, catalog.System, catalog.Agent{Tenant: "acme", ID: protocol.AgentID(id), Store: snapshot.Store{ID: "s1"}}); err != nil {
			t.Fatal(err)
		}
	}
	req := snapshots.Request{Tenant: "acme", Agent: "till-1"}
	a, err := h.Snapshots.Snapshot(ctx, req)
	if err != nil || a.NotModified {
		t.Fatalf("first snapshot: %+v, %v", a, err)
	}
	req.Since, req.IfNoneMatch = a.Version, a.ETag
	if b, err := h.Snapshots.Snapshot(ctx, req); err != nil || !b.NotModified {
		t.Fatalf("poll: %+v, %v; want 304", b, err)
	}
	if err := h.Announce(ctx, "acme", a.Version); err != nil {
		t.Fatal(err)
	}
	mfs := scrape(t, h)
	for name, want := range map[string]float64{"punchcard_snapshot_bodies_total": 1, "punchcard_snapshot_quiet_total": 1,
		"punchcard_snapshot_unchanged_total": 0, "punchcard_snapshot_busy_total": 0, "punchcard_snapshot_announcements_total": 2} {
		if got, ok := value(t, mfs, name); !ok || got != want {
			t.Errorf("%s = %v (present %v), want %v", name, got, ok, want)
		}
	}
}
