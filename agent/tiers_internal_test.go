package agent

import (
	"context"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/punchcard/punchcard/agent/agenttest"
	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/protocol/rules"
	"github.com/punchcard/punchcard/protocol/snapshot"
)

// TestSnapshotTiers: the customers' tiers of snapshot key 19 reach the
// till's decisions (over the tier the POS presents) through a full
// snapshot, an incremental delta (a tier gained and one lost), a delta
// that takes the merge path (with a catalog change), and a reopen from
// the database.
func TestSnapshotTiers(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "agent.db")
	a, _ := openAgent(t, path)
	base := baseSnapshot(20)
	base.Tiers = []snapshot.CustomerTier{{Customer: "ann", Tier: "gold"}, {Customer: "bob", Tier: "silver"}}
	if _, err := a.ApplySnapshot(ctx, agenttest.Encode(t, base), "e0"); err != nil {
		t.Fatal(err)
	}
	tierOf := func(a *Agent, id protocol.CustomerID, presented string) string {
		f := &tillFacts{a: a, v: a.view.Load()}
		cu, _, err := f.Customer(ctx, protocol.Customer{ID: id, Tier: presented})
		if err != nil {
			t.Fatal(err)
		}
		return cu.Tier
	}
	check := func(a *Agent, want map[protocol.CustomerID]string) {
		t.Helper()
		for id, w := range want {
			if got := tierOf(a, id, "pos-tier"); got != w {
				t.Fatalf("%s: tier %q, want %q", id, got, w)
			}
		}
	}
	check(a, map[protocol.CustomerID]string{"ann": "gold", "bob": "silver", "cid": "pos-tier"})
	d := *base
	d.Codes, d.Campaigns, d.Revocations = nil, nil, nil
	d.Since, d.Version = base.Version, base.Version+1
	d.Tiers = []snapshot.CustomerTier{{Customer: "ann"}, {Customer: "cid", Tier: "gold"}}
	if _, err := a.ApplySnapshot(ctx, agenttest.Encode(t, &d), "e1"); err != nil {
		t.Fatal(err)
	}
	// ann lost her tier: the POS's stands (the snapshot no longer lists her).
	check(a, map[protocol.CustomerID]string{"ann": "pos-tier", "bob": "silver", "cid": "gold"})
	d2 := d
	d2.Since, d2.Version = d.Version, d.Version+1
	c := base.Campaigns[0]
	c.ID = "new-one"
	d2.Campaigns = []rules.Campaign{c}
	d2.Tiers = []snapshot.CustomerTier{{Customer: "bob", Tier: "gold"}}
	if _, err := a.ApplySnapshot(ctx, agenttest.Encode(t, &d2), "e2"); err != nil {
		t.Fatal(err)
	}
	want := map[protocol.CustomerID]string{"ann": "pos-tier", "bob": "gold", "cid": "gold"}
	check(a, want)
	if got := a.view.Load().full().Tiers; !reflect.DeepEqual(got, []snapshot.CustomerTier{{Customer: "bob", Tier: "gold"}, {Customer: "cid", Tier: "gold"}}) {
		t.Fatalf("full snapshot tiers %+v", got)
	}
	a.db.Close()
	r, _ := openAgent(t, path)
	check(r, want)
}
