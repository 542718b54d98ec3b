package ledger_test

import (
	"context"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/store/ledger"
)

// TestSnapshotRead: the one-statement read of a snapshot body equals the
// reads it replaces (Reflected, CustomerHead, CodeChanges), for an agent
// with a gap in its seqs, codes and a gift card, from every code-use
// position, with and without changes, and at the limit.
func TestSnapshotRead(t *testing.T) {
	ctx := context.Background()
	l, _ := MustOpen(t)
	gift := red("till-1", 2, func(r *protocol.Redemption) { r.Code, r.Spend, r.Discount = "GIFT-0001", 1200, 0 })
	batches := [][]protocol.Redemption{
		{red("till-1", 1, func(r *protocol.Redemption) { r.Code = "ONCE-1" }), gift},
		{red("till-1", 4, func(r *protocol.Redemption) { r.Code = "MULTI" }), red("till-1", 6, func(r *protocol.Redemption) { r.Code = "MULTI" })},
		{red("till-2", 1, func(r *protocol.Redemption) { r.Code = "OTHER" })},
		{rollbackOf("till-1", 7, gift.ID, gift)},
	}
	check := func(t *testing.T, agent protocol.AgentID) {
		t.Helper()
		head, wm, beyond, err := l.Reflected(ctx, tenant, agent)
		if err != nil {
			t.Fatal(err)
		}
		cust, err := l.CustomerHead(ctx, tenant)
		if err != nil {
			t.Fatal(err)
		}
		for after := uint64(0); after <= head+1; after++ {
			for _, limit := range []int{1, 2, 100} {
				got, err := l.SnapshotRead(ctx, tenant, agent, after, true, true, limit)
				if err != nil {
					t.Fatal(err)
				}
				states, h, ok, err := l.CodeChanges(ctx, tenant, after, limit)
				if err != nil {
					t.Fatal(err)
				}
				if got.Codes != head || h != head || got.Customers != cust || got.Watermark != wm || !slices.Equal(got.Beyond, beyond) {
					t.Fatalf("after %d: %+v, want head %d customers %d watermark %d beyond %v", after, got, head, cust, wm, beyond)
				}
				if got.StatesOK != ok || !maps.Equal(got.States, states) {
					t.Fatalf("after %d limit %d: states %v %v, want %v %v", after, limit, got.States, got.StatesOK, states, ok)
				}
				// Positions: the same positions, the same codes, each
				// with the position of its last change (after after).
				pc, pcu, changed, pok, err := l.Positions(ctx, tenant, after, limit)
				if err != nil {
					t.Fatal(err)
				}
				if pc != head || pcu != cust || pok != ok || len(changed) != len(states) {
					t.Fatalf("positions after %d limit %d: %d %d %v %v, want %d %d %v %v", after, limit, pc, pcu, changed, pok, head, cust, states, ok)
				}
				for code, at := range changed {
					if _, listed := states[code]; !listed || at <= after || at > head {
						t.Fatalf("positions after %d: %s at %d, want listed in (%d, %d]", after, code, at, after, head)
					}
				}
			}
		}
		if got, err := l.SnapshotRead(ctx, tenant, agent, 0, false, false, 100); err != nil || got.StatesOK || got.States != nil || got.Escrow != nil || got.Codes != head {
			t.Fatalf("without changes and escrow: %+v %v", got, err)
		}
		esc, err := l.Escrow(ctx, tenant, agent)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := l.SnapshotRead(ctx, tenant, agent, 0, false, true, 100); err != nil || !slices.Equal(got.Escrow, esc) {
			t.Fatalf("escrow %+v %v, want %+v", got.Escrow, err, esc)
		}
	}
	t.Run("OK/Empty", func(t *testing.T) { check(t, "till-1") })
	for _, c := range []protocol.CampaignID{"budget100", "money"} {
		if _, err := l.GrantAllowance(ctx, tenant, "till-1", c); err != nil {
			t.Fatal(err)
		}
	}
	for _, b := range batches {
		if _, _, err := l.ApplyBatch(ctx, tenant, b[0].ID.Agent, b); err != nil {
			t.Fatal(err)
		}
	}
	t.Run("OK/Gap", func(t *testing.T) {
		if _, wm, beyond, _ := l.Reflected(ctx, tenant, "till-1"); wm != 2 || len(beyond) == 0 {
			t.Fatalf("setup: watermark %d beyond %v, want a gap", wm, beyond)
		}
		if esc, _ := l.Escrow(ctx, tenant, "till-1"); len(esc) != 3 {
			t.Fatalf("setup: escrow %+v, want three campaigns", esc)
		}
		check(t, "till-1")
	})
	t.Run("OK/OtherAgent", func(t *testing.T) { check(t, "till-2") })
	t.Run("OK/UnknownAgent", func(t *testing.T) { check(t, "till-9") })
}

// BenchmarkSnapshotRead is the ledger's read of one snapshot body as the
// fleet's fetches after a campaign change make it: 1,000 agents with an
// allowance and 20 facts each (a third with a multi-use code), and
// between two reads another agent's batch commits, as ingest does, so
// each read starts on a changed database. Full reads everything a delta
// needs (the code states changed after a position 50 changes back and
// the escrow); NoChanges leaves out the code states; Bare the escrow too.
// read-cpu-µs is the process CPU per read.
func BenchmarkSnapshotRead(b *testing.B) {
	ctx := context.Background()
	const agents = 1000
	for _, mode := range []string{"Full", "NoChanges", "Bare"} {
		b.Run(mode, func(b *testing.B) {
			// Not MustOpen: the allowance rows are written directly,
			// without the journal entries its check at the end wants.
			l, err := ledger.Open(ctx, filepath.Join(b.TempDir(), "hub.db"), ledger.Options{Facts: MustFacts(b)})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { l.Close() })
			for i := range agents {
				a := protocol.AgentID(fmt.Sprintf("till-%04d", i))
				if _, err := l.DB().ExecContext(ctx, `INSERT INTO ledger_allowances (tenant, agent, campaign, grants, granted_count) VALUES (?, ?, 'loyalty', 1, 5)`,
					string(tenant), string(a)); err != nil {
					b.Fatal(err)
				}
				if _, _, err := l.ApplyBatch(ctx, tenant, a, benchRedemptions(a, 1, 20)); err != nil {
					b.Fatal(err)
				}
			}
			seqs := make([]uint64, agents)
			for i := range seqs {
				seqs[i] = 21
			}
			var cpu time.Duration
			i := 0
			for b.Loop() {
				w := protocol.AgentID(fmt.Sprintf("till-%04d", (i+agents/2)%agents))
				if _, _, err := l.ApplyBatch(ctx, tenant, w, benchRedemptions(w, seqs[(i+agents/2)%agents], 3)); err != nil {
					b.Fatal(err)
				}
				seqs[(i+agents/2)%agents] += 3
				head, err := l.CodeHead(ctx, tenant)
				if err != nil {
					b.Fatal(err)
				}
				a := protocol.AgentID(fmt.Sprintf("till-%04d", i%agents))
				i++
				c0 := processCPU()
				r, err := l.SnapshotRead(ctx, tenant, a, head-min(head, 50), mode == "Full", mode != "Bare", ledger.DefaultMaxCodeChanges)
				cpu += processCPU() - c0
				if err != nil || r.Watermark == 0 {
					b.Fatalf("snapshot read: %+v, %v", r, err)
				}
			}
			b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "read-cpu-µs")
		})
	}
}
