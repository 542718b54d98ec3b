package ledger_test

import (
	"context"
	"testing"

	"github.com/punchcard/punchcard/protocol"
)

// FuzzApplyBatch applies redemptions with arbitrary field values, as a
// hostile or broken agent could send them: every one is either recorded or
// refused with a protocol error (never an internal error), and the ledger
// still verifies.
func FuzzApplyBatch(f *testing.F) {
	f.Add(uint64(1), uint8(1), "loyalty", "ONCE-1", "alice", int64(100), int64(0), int64(10), int64(1000), uint64(1<<40), "till-1", uint64(0))
	f.Add(uint64(2), uint8(2), "summer", "GIFT-0001", "", int64(0), int64(6000), int64(0), int64(0), uint64(0), "till-1", uint64(1))
	f.Add(uint64(3), uint8(4), "", "", "bob", int64(0), int64(0), int64(-50), int64(0), uint64(1<<63), "till-2", uint64(9))
	ctx := context.Background()
	l, _ := MustOpen(f)
	f.Fuzz(func(t *testing.T, seq uint64, kind uint8, campaign, code, customer string, discount, spend, points, orderTot int64, hlc uint64, refAgent string, refSeq uint64) {
		r := protocol.Redemption{ID: protocol.RedemptionID{Agent: "till-1", Seq: seq}, Kind: protocol.RedemptionKind(kind), Tenant: tenant,
			Campaign: protocol.CampaignID(campaign), Code: protocol.CodeID(code), Customer: protocol.CustomerID(customer),
			Discount: discount, Spend: spend, Points: points, OrderTot: orderTot, HLC: hlc}
		if refSeq != 0 {
			r.Ref = &protocol.RedemptionID{Agent: protocol.AgentID(refAgent), Seq: refSeq}
		}
		_, _, err := l.ApplyBatch(ctx, tenant, "till-1", []protocol.Redemption{r})
		if err != nil && protocol.ErrorCode(err) == protocol.CodeInternal {
			t.Fatalf("internal error for %+v: %v", r, err)
		}
		rep, err := l.Verify(ctx)
		if err != nil || !rep.OK() {
			t.Fatalf("verify after %+v: %v %v", r, rep.Diffs, err)
		}
	})
}
