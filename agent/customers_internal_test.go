package agent

import (
	"context"
	"errors"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/punchcard/punchcard/agent/agenttest"
	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/protocol/rules"
	"github.com/punchcard/punchcard/protocol/snapshot"
)

// TestSnapshotCustomerState: a customer-state delta (snapshot keys 21,
// 22) is laid over the till's tiers and segments without a catalog
// change (incremental), whole lists replace them, the position survives
// a reopen, and a delta starting after the till's position is refused
// (the till then fetches a full snapshot).
func TestSnapshotCustomerState(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "agent.db")
	a, _ := openAgent(t, path)
	base := baseSnapshot(20)
	base.Customers = 5
	base.Tiers = []snapshot.CustomerTier{{Customer: "ann", Tier: "gold"}, {Customer: "bob", Tier: "silver"}}
	base.Segments = []snapshot.CustomerSegments{{Customer: "bob", Segments: []string{"vip"}}}
	if _, err := a.ApplySnapshot(ctx, agenttest.Encode(t, base), "e0"); err != nil {
		t.Fatal(err)
	}
	check := func(a *Agent, pos uint64, tiers map[protocol.CustomerID]string, segs map[protocol.CustomerID][]string) {
		t.Helper()
		v := a.view.Load()
		if got := a.SnapshotCustomers(); got != pos {
			t.Fatalf("customer-state position %d, want %d", got, pos)
		}
		if !reflect.DeepEqual(v.tiers, tiers) {
			t.Fatalf("tiers %v, want %v", v.tiers, tiers)
		}
		if !reflect.DeepEqual(v.segs, segs) {
			t.Fatalf("segments %v, want %v", v.segs, segs)
		}
	}
	d := *base
	d.Codes, d.Campaigns, d.Revocations = nil, nil, nil
	d.Since = base.Version // the catalog unchanged
	d.Customers, d.CustomersSince = 7, 5
	d.Tiers = []snapshot.CustomerTier{{Customer: "ann"}, {Customer: "cid", Tier: "gold"}}
	d.Segments = []snapshot.CustomerSegments{{Customer: "bob", Segments: []string{}}, {Customer: "cid", Segments: []string{"vip"}}}
	before := a.view.Load()
	if _, err := a.ApplySnapshot(ctx, agenttest.Encode(t, &d), "e1"); err != nil {
		t.Fatal(err)
	}
	if a.view.Load().rules != before.rules {
		t.Fatal("a customer-state delta recompiled the rules")
	}
	check(a, 7, map[protocol.CustomerID]string{"bob": "silver", "cid": "gold"}, map[protocol.CustomerID][]string{"cid": {"vip"}})

	// A delta from after the till's position does not fit.
	bad := d
	bad.Customers, bad.CustomersSince = 12, 9
	if _, err := a.ApplySnapshot(ctx, agenttest.Encode(t, &bad), "bad"); !errors.Is(err, snapshot.ErrBaseMismatch) {
		t.Fatalf("a delta from position 9 over 7: %v, want ErrBaseMismatch", err)
	}

	// A catalog change with the whole customer lists replaces them.
	d2 := d
	d2.Since, d2.Version = d.Version, d.Version+1
	c := base.Campaigns[0]
	c.ID = "new-one"
	d2.Campaigns = []rules.Campaign{c}
	d2.Customers, d2.CustomersSince = 9, 0
	d2.Tiers = []snapshot.CustomerTier{{Customer: "dan", Tier: "gold"}}
	d2.Segments = []snapshot.CustomerSegments{{Customer: "dan", Segments: []string{"vip"}}}
	if _, err := a.ApplySnapshot(ctx, agenttest.Encode(t, &d2), "e2"); err != nil {
		t.Fatal(err)
	}
	wantT, wantS := map[protocol.CustomerID]string{"dan": "gold"}, map[protocol.CustomerID][]string{"dan": {"vip"}}
	check(a, 9, wantT, wantS)
	a.db.Close()
	r, _ := openAgent(t, path)
	check(r, 9, wantT, wantS)
}
