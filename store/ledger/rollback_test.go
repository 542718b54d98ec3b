package ledger_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/store/ledger"
)

// rollbackOf is a rollback by agent seq of ref, claiming the fields of
// claim (what a forger would send).
func rollbackOf(agent protocol.AgentID, seq uint64, ref protocol.RedemptionID, claim protocol.Redemption) protocol.Redemption {
	r := claim
	r.ID, r.Kind, r.Ref, r.TxnID = protocol.RedemptionID{Agent: agent, Seq: seq}, protocol.KindRollback, &ref, "undo"
	return r
}

func kinds(cs []ledger.Conflict) []ledger.ConflictKind {
	var out []ledger.ConflictKind
	for _, c := range cs {
		out = append(out, c.Kind)
	}
	return out
}

// TestRollbackSafety: a rollback reverses what its original applied, never
// what it claims; one whose original is unknown is deferred; an agent
// cannot void another agent's redemption. MustOpen's cleanup checks that
// the ledger verifies after each case.
func TestRollbackSafety(t *testing.T) {
	ctx := context.Background()
	once := func(r *protocol.Redemption) { r.Code, r.Campaign, r.Discount = "ONCE-1", "loyalty", 100 }
	t.Run("OK/UsesOriginalFields", func(t *testing.T) {
		l, _ := MustOpen(t)
		orig := red("till-1", 1, once)
		// The rollback claims another code and a bigger discount.
		forged := rollbackOf("till-1", 2, orig.ID, red("till-1", 0, func(r *protocol.Redemption) { r.Code, r.Discount = "ONCE-2", 900 }))
		if _, cs, err := l.ApplyBatch(ctx, tenant, "till-1", []protocol.Redemption{orig, forged}); err != nil || len(cs) != 0 {
			t.Fatalf("apply: %v %v", kinds(cs), err)
		}
		u1, _ := l.CodeUses(ctx, tenant, "ONCE-1")
		u2, _ := l.CodeUses(ctx, tenant, "ONCE-2")
		b, _ := l.Campaign(ctx, tenant, "loyalty")
		if u1 != 0 || u2 != 0 || b.Count != 0 || b.Discount != 0 {
			t.Fatalf("ONCE-1 %d, ONCE-2 %d, campaign %+v; want all zero", u1, u2, b)
		}
	})
	t.Run("ErrForeignAgent", func(t *testing.T) {
		l, _ := MustOpen(t)
		orig := red("till-1", 1, once)
		if _, _, err := l.ApplyBatch(ctx, tenant, "till-1", []protocol.Redemption{orig}); err != nil {
			t.Fatal(err)
		}
		// till-2 tries to free till-1's single-use code.
		_, cs, err := l.ApplyBatch(ctx, tenant, "till-2", []protocol.Redemption{rollbackOf("till-2", 1, orig.ID, orig)})
		if err != nil || len(cs) != 1 || cs[0].Kind != ledger.ConflictRollbackForeign {
			t.Fatalf("foreign rollback: %v %v; want one %s", kinds(cs), err, ledger.ConflictRollbackForeign)
		}
		if u, _ := l.CodeUses(ctx, tenant, "ONCE-1"); u != 1 {
			t.Fatalf("uses %d after a foreign rollback, want 1", u)
		}
		// The foreign rollback does not stop the hub from voiding it.
		if _, err := l.Redeem(ctx, protocol.Redemption{Kind: protocol.KindRollback, Tenant: tenant, TxnID: "support-1", Ref: &orig.ID}); err != nil {
			t.Fatalf("hub rollback: %v", err)
		}
		if u, _ := l.CodeUses(ctx, tenant, "ONCE-1"); u != 0 {
			t.Fatalf("uses %d after the hub's rollback, want 0", u)
		}
	})
	t.Run("ErrForgedUnknownOriginal", func(t *testing.T) {
		l, _ := MustOpen(t)
		if _, _, err := l.ApplyBatch(ctx, tenant, "till-1", []protocol.Redemption{red("till-1", 1, once)}); err != nil {
			t.Fatal(err)
		}
		// A rollback of a redemption nobody sent, claiming the code:
		// before the fix it freed ONCE-1.
		ghost := protocol.RedemptionID{Agent: "till-2", Seq: 99}
		if _, _, err := l.ApplyBatch(ctx, tenant, "till-2", []protocol.Redemption{rollbackOf("till-2", 1, ghost, red("till-2", 0, once))}); err != nil {
			t.Fatal(err)
		}
		if u, _ := l.CodeUses(ctx, tenant, "ONCE-1"); u != 1 {
			t.Fatalf("uses %d after a rollback of an unknown redemption, want 1", u)
		}
		// Another till's use is still a reuse.
		_, cs, err := l.ApplyBatch(ctx, tenant, "till-3", []protocol.Redemption{red("till-3", 1, once)})
		if err != nil || len(cs) != 1 || cs[0].Kind != ledger.ConflictCodeReused {
			t.Fatalf("reuse: %v %v", kinds(cs), err)
		}
	})
	t.Run("OK/OutOfOrder", func(t *testing.T) {
		l, _ := MustOpen(t)
		orig := red("till-1", 1, func(r *protocol.Redemption) { once(r); r.Customer, r.Points = "alice", 10 })
		undo := rollbackOf("till-1", 2, orig.ID, orig)
		// The rollback arrives first (seq 1 lost and resent later).
		ack, _, err := l.ApplyBatch(ctx, tenant, "till-1", []protocol.Redemption{undo})
		if err != nil || ack.Watermark != 0 {
			t.Fatalf("rollback first: %+v %v", ack, err)
		}
		if u, _ := l.CodeUses(ctx, tenant, "ONCE-1"); u != 0 {
			t.Fatalf("a deferred rollback changed uses to %d", u)
		}
		ack, cs, err := l.ApplyBatch(ctx, tenant, "till-1", []protocol.Redemption{orig})
		if err != nil || len(cs) != 0 || ack.Watermark != 2 {
			t.Fatalf("original: %+v %v %v", ack, kinds(cs), err)
		}
		u, _ := l.CodeUses(ctx, tenant, "ONCE-1")
		p, _ := l.Points(ctx, tenant, "alice")
		b, _ := l.Campaign(ctx, tenant, "loyalty")
		if u != 0 || p != 0 || b.Count != 0 {
			t.Fatalf("after the pair: uses %d, points %d, campaign %+v; want zeros", u, p, b)
		}
		// Nothing is left to reverse: a second rollback changes nothing,
		// and the hub reports it rolled back.
		if _, _, err := l.ApplyBatch(ctx, tenant, "till-1", []protocol.Redemption{rollbackOf("till-1", 3, orig.ID, orig)}); err != nil {
			t.Fatal(err)
		}
		if u, _ := l.CodeUses(ctx, tenant, "ONCE-1"); u != 0 {
			t.Fatalf("second rollback: uses %d, want 0", u)
		}
		_, err = l.Redeem(ctx, protocol.Redemption{Kind: protocol.KindRollback, Tenant: tenant, TxnID: "support-2", Ref: &orig.ID})
		if protocol.ErrorCode(err) != protocol.CodeAlreadyRolledBack {
			t.Fatalf("hub rollback of a voided redemption: %v, want %s", err, protocol.CodeAlreadyRolledBack)
		}
	})
	t.Run("OK/OutOfOrderSameBatch", func(t *testing.T) {
		l, _ := MustOpen(t)
		orig := red("till-1", 1, once)
		if _, _, err := l.ApplyBatch(ctx, tenant, "till-1", []protocol.Redemption{rollbackOf("till-1", 2, orig.ID, orig), orig}); err != nil {
			t.Fatal(err)
		}
		if u, _ := l.CodeUses(ctx, tenant, "ONCE-1"); u != 0 {
			t.Fatalf("uses %d, want 0", u)
		}
	})
	t.Run("OK/NeverMoreThanApplied", func(t *testing.T) {
		l, _ := MustOpen(t)
		earn := red("till-1", 1, func(r *protocol.Redemption) {
			r.Kind, r.Campaign, r.Discount, r.Customer, r.Points = protocol.KindEarn, "", 0, "bob", 50
		})
		// The rollback of an earn claims to be a redeem of a code.
		claim := red("till-1", 0, once)
		if _, _, err := l.ApplyBatch(ctx, tenant, "till-1", []protocol.Redemption{earn, rollbackOf("till-1", 2, earn.ID, claim)}); err != nil {
			t.Fatal(err)
		}
		p, _ := l.Points(ctx, tenant, "bob")
		u, _ := l.CodeUses(ctx, tenant, "ONCE-1")
		b, _ := l.Campaign(ctx, tenant, "loyalty")
		if p != 0 || u != 0 || b.Count != 0 {
			t.Fatalf("points %d, uses %d, campaign %+v; want zeros", p, u, b)
		}
	})
}

// TestStopIntervals: a redemption from a window the campaign was stopped
// in is flagged even after the campaign was restarted; one outside is not.
func TestStopIntervals(t *testing.T) {
	ctx := context.Background()
	f := &ledger.MemFacts{}
	f.SetCampaign(tenant, "flash", ledger.CampaignFacts{Currency: "EUR", Stops: []ledger.StopInterval{
		{From: t0.Add(time.Hour), To: t0.Add(2 * time.Hour)}, // stopped, then restarted
	}})
	l, err := ledger.Open(ctx, filepath.Join(t.TempDir(), "hub.db"), ledger.Options{Facts: f, Now: func() time.Time { return t0.Add(3 * time.Hour) }})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	at := func(seq uint64, d time.Duration) protocol.Redemption {
		return red("till-1", seq, func(r *protocol.Redemption) { r.Campaign, r.HLC = "flash", ledger.HLCFromTime(t0.Add(d)) })
	}
	for _, tc := range []struct {
		name string
		r    protocol.Redemption
		want int
	}{
		{"OK/BeforeStop", at(1, 30*time.Minute), 0},
		{"ErrInStoppedWindow", at(2, 90*time.Minute), 1},
		{"OK/AfterRestart", at(3, 150*time.Minute), 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, cs, err := l.ApplyBatch(ctx, tenant, "till-1", []protocol.Redemption{tc.r})
			if err != nil || len(cs) != tc.want || (tc.want == 1 && cs[0].Kind != ledger.ConflictAfterKillSwitch) {
				t.Fatalf("conflicts %v, err %v; want %d after_kill_switch", kinds(cs), err, tc.want)
			}
		})
	}
}
