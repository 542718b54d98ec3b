package ledger_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/store/ledger"
)

// openReferrals opens a ledger whose facts know the referral campaign
// "refer" (500 points to the referrer, at most 2 referees) and alice's
// referral code REFALICE.
func openReferrals(tb testing.TB) (*ledger.Ledger, *clock) {
	tb.Helper()
	f := MustFacts(tb)
	f.SetCampaign(tenant, "refer", ledger.CampaignFacts{Currency: "EUR",
		Referral: &protocol.Referral{ReferrerPoints: 500, PointsCampaign: "points", MaxReferees: 2, SameAttributes: []string{"email_hash"}}})
	f.SetCode(tenant, "REFALICE", ledger.CodeFacts{Referrer: "alice"})
	segs := &ledger.MemSegments{}
	segs.SetAttributes(tenant, "alice", map[string]string{"email_hash": "h-alice"})
	segs.SetAttributes(tenant, "mallory", map[string]string{"email_hash": "h-alice"}) // alice's second account
	segs.SetAttributes(tenant, "bob", map[string]string{"email_hash": "h-bob"})
	c := &clock{t: t0}
	l, err := ledger.Open(context.Background(), filepath.Join(tb.TempDir(), "hub.db"), ledger.Options{Facts: f, Segments: segs, Now: c.Now})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		rep, err := l.Verify(context.Background())
		if err != nil {
			tb.Error(err)
		} else if !rep.OK() {
			tb.Errorf("ledger does not verify: %v", rep.Diffs)
		}
		l.Close()
	})
	return l, c
}

// referral is a till's offline redeem of alice's code by customer cu.
func referral(agent protocol.AgentID, seq uint64, cu protocol.CustomerID) protocol.Redemption {
	return red(agent, seq, func(r *protocol.Redemption) { r.Campaign, r.Code, r.Customer = "refer", "REFALICE", cu })
}

// TestReferralTillFacts: a till's offline sale with a referral code
// rewards the referrer once at ingest (a re-sent batch does not reward
// twice); the guard's refusals (self-referral, also by a shared e-mail
// hash; a referee not new; the referrer's limit) are referral_refused conflicts naming the
// reason and reward nobody; a rollback of the referee's sale takes the
// reward back. The ledger verifies throughout (MustOpen's cleanup).
func TestReferralTillFacts(t *testing.T) {
	ctx := context.Background()
	l, _ := openReferrals(t)
	points := func(cu protocol.CustomerID) int64 {
		t.Helper()
		p, err := l.Points(ctx, tenant, cu)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	apply := func(rs ...protocol.Redemption) []ledger.Conflict {
		t.Helper()
		_, cs, err := l.ApplyBatch(ctx, tenant, rs[0].ID.Agent, rs)
		if err != nil {
			t.Fatal(err)
		}
		return cs
	}
	refused := func(cs []ledger.Conflict, reason protocol.Code) {
		t.Helper()
		if len(cs) != 1 || cs[0].Kind != ledger.ConflictReferralRefused || !strings.HasPrefix(cs[0].Detail, string(reason)+":") {
			t.Fatalf("conflicts %+v, want one %s with reason %s", cs, ledger.ConflictReferralRefused, reason)
		}
	}

	// carol bought an hour before; bob is new.
	apply(red("till-2", 1, func(r *protocol.Redemption) {
		r.Customer, r.HLC = "carol", ledger.HLCFromTime(t0.Add(-time.Hour))
	}))
	bob := referral("till-1", 1, "bob")
	if cs := apply(bob); len(cs) != 0 {
		t.Fatalf("bob's referral: conflicts %v", kinds(cs))
	}
	if got := points("alice"); got != 500 {
		t.Fatalf("alice has %d points after bob's first purchase, want 500", got)
	}
	// The till re-sends the batch (a lost ack): nothing changes.
	if cs := apply(bob); len(cs) != 0 {
		t.Fatalf("re-sent batch: conflicts %v", kinds(cs))
	}
	if got := points("alice"); got != 500 {
		t.Fatalf("alice has %d points after the re-sent batch, want 500", got)
	}

	refused(apply(referral("till-1", 2, "alice")), protocol.CodeSelfReferral)
	refused(apply(referral("till-1", 8, "mallory")), protocol.CodeSelfReferral) // the same e-mail hash
	refused(apply(referral("till-1", 3, "carol")), protocol.CodeRefereeNotNew)
	refused(apply(referral("till-3", 1, "bob")), protocol.CodeRefereeNotNew) // bob has bought since (his first sale)
	if cs := apply(referral("till-1", 4, "dave")); len(cs) != 0 {
		t.Fatalf("dave's referral: conflicts %v", kinds(cs))
	}
	refused(apply(referral("till-1", 5, "erin")), protocol.CodeReferralLimit)
	if got := points("alice"); got != 1000 {
		t.Fatalf("alice has %d points, want 1000 (bob and dave)", got)
	}

	// dave's sale is rolled back: alice loses his reward, and frank can
	// now be rewarded within the limit.
	dave := referral("till-1", 4, "dave")
	if cs := apply(rollbackOf("till-1", 6, dave.ID, dave)); len(cs) != 0 {
		t.Fatalf("rollback: conflicts %v", kinds(cs))
	}
	if got := points("alice"); got != 500 {
		t.Fatalf("alice has %d points after dave's rollback, want 500", got)
	}
	if cs := apply(referral("till-1", 7, "frank")); len(cs) != 0 {
		t.Fatalf("frank's referral: conflicts %v", kinds(cs))
	}
	if got := points("alice"); got != 1000 {
		t.Fatalf("alice has %d points, want 1000 (bob and frank)", got)
	}
}

// TestReferralAlreadyReferred: two offline tills both sold gina her
// "first" purchase with a referral code; the one that reaches the hub
// second is refused as already_referred even though it is dated earlier.
func TestReferralAlreadyReferred(t *testing.T) {
	ctx := context.Background()
	l, _ := openReferrals(t)
	g1 := referral("till-1", 1, "gina")
	g2 := referral("till-2", 1, "gina")
	if _, cs, err := l.ApplyBatch(ctx, tenant, "till-1", []protocol.Redemption{g1}); err != nil || len(cs) != 0 {
		t.Fatalf("first: %v %v", kinds(cs), err)
	}
	// till-2's sale is dated before till-1's: not after another purchase,
	// but gina was referred already.
	g2.HLC = ledger.HLCFromTime(t0.Add(-time.Minute))
	_, cs, err := l.ApplyBatch(ctx, tenant, "till-2", []protocol.Redemption{g2})
	if err != nil || len(cs) != 1 || !strings.HasPrefix(cs[0].Detail, string(protocol.CodeAlreadyReferred)) {
		t.Fatalf("second: %+v %v; want already_referred", cs, err)
	}
	if p, _ := l.Points(ctx, tenant, "alice"); p != 500 {
		t.Fatalf("alice has %d points, want 500", p)
	}
}

// TestReferralSameDrainOrder: a referral redeem in an ingest drain sees
// the referee's order from an earlier batch of the same drain (a guard
// for any deferral of the drain's purchase rows to its end): the referee
// is not new, and nobody is rewarded.
func TestReferralSameDrainOrder(t *testing.T) {
	ctx := context.Background()
	l, _ := openReferrals(t)
	sale := red("till-1", 1, func(r *protocol.Redemption) { r.Customer = "dave" })
	sale.HLC = ledger.HLCFromTime(t0.Add(-time.Hour))
	res, err := l.ApplyBatches(ctx, []ledger.Batch{
		{Tenant: tenant, Agent: "till-1", Redemptions: []protocol.Redemption{sale}},
		{Tenant: tenant, Agent: "till-2", Redemptions: []protocol.Redemption{referral("till-2", 1, "dave")}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if cs := res[1].Conflicts; len(cs) != 1 || cs[0].Kind != ledger.ConflictReferralRefused ||
		!strings.HasPrefix(cs[0].Detail, string(protocol.CodeRefereeNotNew)+":") {
		t.Fatalf("conflicts %+v, want one %s (%s)", cs, ledger.ConflictReferralRefused, protocol.CodeRefereeNotNew)
	}
	if p, err := l.Points(ctx, tenant, "alice"); err != nil || p != 0 {
		t.Fatalf("alice's points %d (%v), want 0", p, err)
	}
}
