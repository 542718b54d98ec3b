package catalog_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/protocol/snapshot"
	"github.com/punchcard/punchcard/store/catalog"
)

// scopedJSON is campaignJSON with store conditions (a JSON object, "" for none).
func scopedJSON(id, eligibility string) []byte {
	if eligibility == "" {
		return campaignJSON(id, "active", percent10)
	}
	return []byte(fmt.Sprintf(`{"schema":1,"id":%q,"tenant":"acme","status":"active","currency":"EUR","reward":%s,"limits":{"max_redemptions":100,"per_customer":2},"eligibility":%s}`, id, percent10, eligibility))
}

func campaignIDs(s *snapshot.Snapshot) []string {
	var out []string
	for _, c := range s.Campaigns {
		out = append(out, string(c.ID))
	}
	slices.Sort(out)
	return out
}

// codeKeys lists the codes of s by key: the snapshot lists keyed hashes,
// matched here against the codes the tests make.
func codeKeys(s *snapshot.Snapshot) []string {
	byHash := map[protocol.CodeID]string{}
	for _, k := range []protocol.CodeID{"ALL1", "B1", "D1", "F1", "K1", "S1"} {
		byHash[s.LookupID(k)] = string(k)
	}
	var out []string
	for _, c := range s.Codes {
		k, ok := byHash[c.Code]
		if !ok {
			k = "unknown " + string(c.Code)
		}
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func wantList(t *testing.T, what string, got []string, want ...string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Fatalf("%s = %q, want %q", what, got, want)
	}
}

// mergedEqualsFull checks that delta merged onto base encodes to the same
// bytes as full.
func mergedEqualsFull(t *testing.T, base, delta, full *snapshot.Snapshot) {
	t.Helper()
	merged, err := snapshot.Merge(base, delta)
	if err != nil {
		t.Fatal(err)
	}
	mb, err := snapshot.Encode(merged)
	if err != nil {
		t.Fatal(err)
	}
	fb, err := snapshot.Encode(full)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(mb, fb) {
		m, _ := json.Marshal(merged)
		f, _ := json.Marshal(full)
		t.Fatalf("merged delta differs from full:\n%s\n%s", m, f)
	}
}

func TestSnapshotStoreFilter(t *testing.T) {
	ctx := context.Background()
	c, clk := MustOpen(t)
	for _, a := range []catalog.Agent{
		{Tenant: "acme", ID: "till-a", Store: snapshot.Store{ID: "a-1", Region: "north"}},
		{Tenant: "acme", ID: "till-b", Store: snapshot.Store{ID: "b-1", Region: "south"}},
	} {
		if _, _, err := c.RegisterAgent(ctx, admin, a); err != nil {
			t.Fatal(err)
		}
	}
	for _, cp := range []struct{ id, elig, code string }{
		{"all", "", "ALL1"},
		{"onlyb", `{"stores":["b-1"]}`, "B1"},
		{"south", `{"regions":["south"]}`, "S1"},
		{"flip", "", "F1"},
		{"back", `{"stores":["b-1","c-1"]}`, "K1"},
		{"days", `{"days":["mon"],"stores":["a-1","b-1"]}`, "D1"},
	} {
		if _, err := c.CreateCampaign(ctx, admin, "acme", scopedJSON(cp.id, cp.elig)); err != nil {
			t.Fatal(err)
		}
		if _, err := c.ImportCodes(ctx, admin, "acme", protocol.CampaignID(cp.id), []string{cp.code}, catalog.CodeSpec{}); err != nil {
			t.Fatal(err)
		}
	}
	baseA, err := c.Snapshot(ctx, "acme", "till-a", 0)
	if err != nil {
		t.Fatal(err)
	}
	baseB, err := c.Snapshot(ctx, "acme", "till-b", 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Run("OK", func(t *testing.T) {
		// A campaign limited to store B or region south is not for A,
		// nor are its codes; other conditions (days) never drop one.
		wantList(t, "A campaigns", campaignIDs(baseA), "all", "days", "flip")
		wantList(t, "A codes", codeKeys(baseA), "ALL1", "D1", "F1")
		wantList(t, "B campaigns", campaignIDs(baseB), "all", "back", "days", "flip", "onlyb", "south")
		wantList(t, "B codes", codeKeys(baseB), "ALL1", "B1", "D1", "F1", "K1", "S1")
		if len(baseA.Withdrawn) != 0 {
			t.Fatalf("full snapshot withdraws %v", baseA.Withdrawn)
		}
	})

	// "flip" goes from all stores to store B only; "back" from B to all.
	clk.Add(time.Minute)
	if _, err := c.UpdateCampaign(ctx, admin, "acme", "flip", scopedJSON("flip", `{"stores":["b-1"]}`)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.UpdateCampaign(ctx, admin, "acme", "back", scopedJSON("back", "")); err != nil {
		t.Fatal(err)
	}
	// The ledger knows of uses of a code A may keep and of one it may not.
	states := map[protocol.CodeID]protocol.CodeState{"ALL1": {Used: 1}, "F1": {Used: 1}, "B1": {Used: 1}}
	for _, tc := range []struct {
		agent               protocol.AgentID
		base                *snapshot.Snapshot
		withdrawn, camps    []string
		deltaCodes          []string
		fullCamps, allCodes []string
	}{
		{"till-a", baseA, []string{"flip"}, []string{"back"}, []string{"ALL1", "K1"},
			[]string{"all", "back", "days"}, []string{"ALL1", "D1", "K1"}},
		{"till-b", baseB, nil, []string{"back", "flip"}, []string{"ALL1", "B1", "F1", "K1"},
			[]string{"all", "back", "days", "flip", "onlyb", "south"}, []string{"ALL1", "B1", "D1", "F1", "K1", "S1"}},
	} {
		t.Run("OK/"+string(tc.agent), func(t *testing.T) {
			delta, err := c.SnapshotWith(ctx, "acme", tc.agent, tc.base.Version, states)
			if err != nil {
				t.Fatal(err)
			}
			var wd []string
			for _, id := range delta.Withdrawn {
				wd = append(wd, string(id))
			}
			wantList(t, "withdrawn", wd, tc.withdrawn...)
			wantList(t, "delta campaigns", campaignIDs(delta), tc.camps...)
			wantList(t, "delta codes", codeKeys(delta), tc.deltaCodes...)
			full, err := c.SnapshotWith(ctx, "acme", tc.agent, 0, states)
			if err != nil {
				t.Fatal(err)
			}
			wantList(t, "full campaigns", campaignIDs(full), tc.fullCamps...)
			wantList(t, "full codes", codeKeys(full), tc.allCodes...)
			mergedEqualsFull(t, tc.base, delta, full)
			b, err := snapshot.Encode(delta)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := snapshot.Decode(b); err != nil {
				t.Fatalf("the hub's delta does not decode: %v", err)
			}
		})
	}
}
