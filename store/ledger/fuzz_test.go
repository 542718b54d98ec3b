package ledger_test

import (
	"context"
	"testing"

	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/store/ledger"
)

// FuzzApplyBatch applies redemptions with arbitrary field values, as a
// hostile or broken agent could send them: the batch is never refused (the
// agent's identity is fine), every fact is applied, quarantined (when it
// fails the fact validator) or dropped (when it names no usable seq), and
// the ledger still verifies.
func FuzzApplyBatch(f *testing.F) {
	f.Add(uint64(1), uint8(1), "loyalty", "ONCE-1", "alice", int64(100), int64(0), int64(10), int64(1000), uint64(1<<40), "till-1", uint64(0))
	f.Add(uint64(2), uint8(2), "summer", "GIFT-0001", "", int64(0), int64(6000), int64(0), int64(0), uint64(0), "till-1", uint64(1))
	f.Add(uint64(3), uint8(4), "", "", "bob", int64(0), int64(0), int64(-50), int64(0), uint64(1<<63), "till-2", uint64(9))
	ctx := context.Background()
	l, _ := MustOpen(f)
	seen := map[uint64]bool{} // seqs this worker's ledger has recorded
	f.Fuzz(func(t *testing.T, seq uint64, kind uint8, campaign, code, customer string, discount, spend, points, orderTot int64, hlc uint64, refAgent string, refSeq uint64) {
		r := protocol.Redemption{ID: protocol.RedemptionID{Agent: "till-1", Seq: seq}, Kind: protocol.RedemptionKind(kind), Tenant: tenant,
			Campaign: protocol.CampaignID(campaign), Code: protocol.CodeID(code), Customer: protocol.CustomerID(customer),
			Discount: discount, Spend: spend, Points: points, OrderTot: orderTot, HLC: hlc}
		if refSeq != 0 {
			r.Ref = &protocol.RedemptionID{Agent: protocol.AgentID(refAgent), Seq: refSeq}
		}
		res, err := l.ApplyBatches(ctx, []ledger.Batch{{Tenant: tenant, Agent: "till-1", Redemptions: []protocol.Redemption{r}}})
		if err != nil || res[0].Err != nil {
			t.Fatalf("batch of %+v refused: %v %v", r, err, res)
		}
		bad := r.ValidateFrom(tenant, "till-1") != nil
		switch {
		case !protocol.FactSeqOK(seq):
			if res[0].Dropped != 1 {
				t.Fatalf("fact without a usable seq not dropped: %+v", res[0])
			}
		case bad && !seen[seq] && len(res[0].Quarantined) != 1:
			t.Fatalf("invalid fact %+v not quarantined: %+v", r, res[0])
		case !bad && len(res[0].Quarantined) != 0:
			t.Fatalf("valid fact %+v quarantined: %+v", r, res[0])
		}
		if protocol.FactSeqOK(seq) {
			seen[seq] = true
		}
		rep, err := l.Verify(ctx)
		if err != nil || !rep.OK() {
			t.Fatalf("verify after %+v: %v %v", r, rep.Diffs, err)
		}
	})
}
