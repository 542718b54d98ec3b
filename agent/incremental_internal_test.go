package agent

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/punchcard/punchcard/agent/agenttest"
	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/protocol/rules"
	"github.com/punchcard/punchcard/protocol/snapshot"
	"github.com/punchcard/punchcard/store/agentdb"
)

func openAgent(t *testing.T, path string) (*Agent, *agentdb.DB) {
	t.Helper()
	db, err := agentdb.Open(context.Background(), path, agentdb.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	a, err := New(context.Background(), agenttest.Tenant, agenttest.Agent, db)
	if err != nil {
		t.Fatal(err)
	}
	a.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	return a, db
}

// baseSnapshot has 3 campaigns and n multi-use codes (gift cards among
// them), at code-use position 1.
func baseSnapshot(n int) *snapshot.Snapshot {
	s := agenttest.Large(3, n)
	s.Campaigns = append(s.Campaigns, agenttest.Small(1, -1).Campaigns[2]) // gift cards
	for i := range s.Codes {
		s.Codes[i].Uses, s.Codes[i].Stores = -1, nil
		if i%5 == 0 {
			s.Codes[i].Campaign = agenttest.CampGift
			s.Codes[i].Balance = &protocol.Money{Amount: 100_00, Currency: "EUR"}
		}
	}
	s.Uses = 1
	return s
}

// codesOf is every code as the view sees it, by ID.
func codesOf(v *view) map[protocol.CodeID]snapshot.Code {
	out := map[protocol.CodeID]snapshot.Code{}
	for _, c := range v.full().Codes {
		got, ok := v.code(c.Code)
		if !ok || !reflect.DeepEqual(*got, c) {
			panic(fmt.Sprintf("view lookup of %s: %+v, snapshot %+v", c.Code, got, c))
		}
		out[c.Code] = c
	}
	return out
}

// TestIncrementalEqualsFull: after random code-use deltas (uses up and
// down with rollbacks, spending, new codes, the odd catalog change that
// takes the full merge path, and compactions), the agent's codes equal
// those of an agent given the equivalent full snapshot, and those of the
// same agent reopened from its database.
func TestIncrementalEqualsFull(t *testing.T) {
	ctx := context.Background()
	for _, seed := range []uint64{1, 2, 3} {
		t.Run(fmt.Sprintf("OK/Seed%d", seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 0))
			path := filepath.Join(t.TempDir(), "agent.db")
			a, _ := openAgent(t, path)
			base := baseSnapshot(500)
			if _, err := a.ApplySnapshot(ctx, agenttest.Encode(t, base), "e0"); err != nil {
				t.Fatal(err)
			}
			truth := map[protocol.CodeID]snapshot.Code{}
			for _, c := range base.Codes {
				truth[c.Code] = c
			}
			campaigns := append([]rules.Campaign(nil), base.Campaigns...)
			version, pos := base.Version, base.Uses
			incremental := 0
			for round := range 150 {
				d := *base
				d.Codes, d.Campaigns, d.Revocations = nil, nil, nil
				d.Since, d.UsesSince = version, pos
				if round == 100 || round == 130 || round == 131 {
					version++ // a catalog change: a new campaign
					c := campaigns[0]
					c.ID = protocol.CampaignID(fmt.Sprintf("new%03d", round))
					campaigns = append(campaigns, c)
					d.Campaigns = []rules.Campaign{c}
				} else {
					incremental++
				}
				changed := map[protocol.CodeID]snapshot.Code{}
				for range 1 + rng.IntN(20) {
					var c snapshot.Code
					if rng.IntN(15) == 0 {
						c = snapshot.Code{Code: protocol.CodeID(fmt.Sprintf("N%07d", round)), Campaign: campaigns[0].ID, Uses: -1}
					} else {
						c = base.Codes[rng.IntN(len(base.Codes))]
						c = truth[c.Code]
					}
					c.Used = max(c.Used+int64(rng.IntN(5))-1, 0) // rollbacks too
					if c.Balance != nil {
						c.Spent = min(max(c.Spent+int64(rng.IntN(3_00))-50, 0), c.Balance.Amount)
					}
					changed[c.Code] = c
				}
				for _, c := range changed {
					d.Codes = append(d.Codes, c)
					truth[c.Code] = c
				}
				pos += uint64(len(changed))
				d.Version, d.Uses = version, pos
				if _, err := a.ApplySnapshot(ctx, agenttest.Encode(t, &d), fmt.Sprintf("e%d", round+1)); err != nil {
					t.Fatalf("round %d: %v", round, err)
				}
			}
			if incremental < DefaultCompactAfter+20 {
				t.Fatalf("only %d incremental deltas: no compaction tested", incremental)
			}
			full := *base
			full.Version, full.Uses, full.Campaigns, full.Codes = version, pos, campaigns, nil
			for _, c := range truth {
				full.Codes = append(full.Codes, c)
			}
			b, _ := openAgent(t, filepath.Join(t.TempDir(), "full.db"))
			if _, err := b.ApplySnapshot(ctx, agenttest.Encode(t, &full), "full"); err != nil {
				t.Fatal(err)
			}
			want := codesOf(b.view.Load())
			if got := codesOf(a.view.Load()); !reflect.DeepEqual(got, want) {
				t.Fatalf("incremental: %d codes, full: %d codes; they differ", len(got), len(want))
			}
			if v, _ := a.SnapshotVersion(); v != version || a.SnapshotUses() != pos {
				t.Fatalf("at version %d position %d, want %d %d", v, a.SnapshotUses(), version, pos)
			}
			// The same agent from its database: snapshot plus stored deltas.
			a.db.Close()
			r, _ := openAgent(t, path)
			if got := codesOf(r.view.Load()); !reflect.DeepEqual(got, want) {
				t.Fatalf("reopened: %d codes, full: %d codes; they differ", len(got), len(want))
			}
			if v, etag := r.SnapshotVersion(); v != version || etag != "e150" || r.SnapshotUses() != pos {
				t.Fatalf("reopened at %d %q position %d", v, etag, r.SnapshotUses())
			}
		})
	}
}

// TestSaleDuringApply: a sale completes while a large snapshot apply is
// in progress (held inside ApplySnapshot), from the view in use; the
// apply then switches to the new version.
func TestSaleDuringApply(t *testing.T) {
	ctx := context.Background()
	a, _ := openAgent(t, filepath.Join(t.TempDir(), "agent.db"))
	base := baseSnapshot(100_000)
	if _, err := a.ApplySnapshot(ctx, agenttest.Encode(t, base), "e1"); err != nil {
		t.Fatal(err)
	}
	next := *base
	next.Version = 2
	body := agenttest.Encode(t, &next)
	entered, release := make(chan struct{}), make(chan struct{})
	applyHook = func() { close(entered); <-release }
	t.Cleanup(func() { applyHook = nil })
	done := make(chan error, 1)
	go func() { _, err := a.ApplySnapshot(ctx, body, "e2"); done <- err }()
	<-entered
	rc, err := a.Redeem(ctx, RedeemRequest{TxnID: "sale-1", Basket: Basket{Order: agenttest.Order("o1", 10_00),
		Redeemables: []Input{{Code: agenttest.LargeCode(1)}}}})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		t.Fatalf("the apply finished (%v) before it was released", err)
	default:
	}
	if len(rc.Facts) != 1 || rc.Facts[0].Discount == 0 {
		t.Fatalf("sale during the apply: %+v", rc)
	}
	if v, _ := a.SnapshotVersion(); v != 1 {
		t.Fatalf("version %d in use during the apply, want 1", v)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if v, _ := a.SnapshotVersion(); v != 2 {
		t.Fatalf("version %d after the apply", v)
	}
}
