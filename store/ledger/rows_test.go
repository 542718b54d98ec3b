package ledger_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/store/ledger"
)

// TestDrainWatermarks pins the acks of drains of many tills' batches
// (rows.go: the watermarks read for the whole drain, the new ones
// computed from the seqs the state saw): in random drains with gaps,
// out-of-order and repeated seqs, several batches of one till in one
// drain and quarantined facts, every till's ack is the contiguous end of
// the seqs it sent and the (at most MaxAckBeyond) seqs sent beyond it,
// as a model of the till's sent seqs says, and the journal holds each
// seq once.
func TestDrainWatermarks(t *testing.T) {
	ctx := context.Background()
	l, _ := MustOpen(t)
	rnd := rand.New(rand.NewPCG(17, 23))
	const tills = 6
	sent := make([]map[uint64]bool, tills)
	for i := range sent {
		sent[i] = map[uint64]bool{}
	}
	agent := func(i int) protocol.AgentID { return protocol.AgentID(fmt.Sprintf("wm-till-%d", i)) }
	for drain := range 60 {
		var bs []ledger.Batch
		var who []int
		for range 1 + rnd.IntN(8) {
			i := rnd.IntN(tills)
			var rs []protocol.Redemption
			for range 1 + rnd.IntN(3) {
				seq := uint64(1 + rnd.IntN(40)) // gaps, repeats, out of order
				if drain > 40 {
					seq = uint64(1 + rnd.IntN(1200)) // beyond, many
				}
				rs = append(rs, red(agent(i), seq, func(r *protocol.Redemption) {
					if rnd.IntN(10) == 0 {
						r.Kind = 99 // quarantined: counts toward the watermark
					}
				}))
			}
			bs = append(bs, ledger.Batch{Tenant: tenant, Agent: agent(i), Redemptions: rs})
			who = append(who, i)
		}
		res, err := l.ApplyBatches(ctx, bs)
		if err != nil {
			t.Fatal(err)
		}
		for j, b := range bs {
			for _, r := range b.Redemptions {
				sent[who[j]][r.ID.Seq] = true
			}
		}
		for j, r := range res {
			if r.Err != nil {
				t.Fatalf("drain %d batch %d: %v", drain, j, r.Err)
			}
			m := sent[who[j]]
			var wm uint64
			for m[wm+1] {
				wm++
			}
			var beyond []uint64
			for seq := range m {
				if seq > wm {
					beyond = append(beyond, seq)
				}
			}
			slices.Sort(beyond)
			if len(beyond) > ledger.MaxAckBeyond {
				beyond = beyond[:ledger.MaxAckBeyond]
			}
			if r.Ack.Watermark != wm || !slices.Equal(r.Ack.Beyond, beyond) {
				t.Fatalf("drain %d, %s: ack %d beyond %v; want %d beyond %v", drain, bs[j].Agent, r.Ack.Watermark, r.Ack.Beyond, wm, beyond)
			}
		}
	}
	for i := range tills {
		var n int
		if err := l.DB().QueryRowContext(ctx, `SELECT (SELECT COUNT(*) FROM ledger_journal WHERE tenant = ?1 AND agent = ?2)
			+ (SELECT COUNT(*) FROM ledger_quarantine WHERE tenant = ?1 AND agent = ?2)`, string(tenant), string(agent(i))).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if got, want := n, len(sent[i]); got != want {
			t.Fatalf("%s: %d rows recorded, sent %d distinct seqs", agent(i), got, want)
		}
	}
}
