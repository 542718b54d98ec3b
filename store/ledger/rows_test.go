package ledger_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

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

// TestPurchaseAggregates pins the purchase history written at flush
// (rows.go: a drain's or a group's orders in multi-row statements): after
// till drains (orders repeated within a drain, in a later drain and
// resent, several stores per customer) and online baskets committed in
// groups with refused ones among them, the per-day and per-store
// aggregates equal what the purchase rows sum to, and each order is one
// row.
func TestPurchaseAggregates(t *testing.T) {
	ctx := context.Background()
	l, _ := MustOpen(t)
	order := func(ag protocol.AgentID, seq uint64, cust, txn string, value int64) protocol.Redemption {
		return red(ag, seq, func(r *protocol.Redemption) {
			r.Customer, r.TxnID, r.OrderTot = protocol.CustomerID(cust), txn, value
			if seq%2 == 0 {
				r.Kind, r.Discount, r.Points = protocol.KindEarn, 0, 5
			}
		})
	}
	var drains [][]ledger.Batch
	for d := range 4 {
		var bs []ledger.Batch
		for i := range 5 {
			ag := protocol.AgentID(fmt.Sprintf("pa-%d", i))
			seq := uint64(d*2 + 1)
			cust := fmt.Sprintf("pc-%d", (d/2+i)%3)
			bs = append(bs, ledger.Batch{Tenant: tenant, Agent: ag, Redemptions: []protocol.Redemption{
				order(ag, seq, cust, fmt.Sprintf("x-%d-%d", i, d/2), 100+int64(d)), // an order's facts over two drains
				order(ag, seq+1, cust, fmt.Sprintf("x-%d-%d", i, d/2), 100+int64(d)),
			}})
		}
		drains = append(drains, bs)
	}
	for _, bs := range append(drains, drains[1]) { // the last one resent
		if _, err := l.ApplyBatches(ctx, bs); err != nil {
			t.Fatal(err)
		}
	}
	// Online: 24 baskets at once, every other one refused (a customer
	// limit of 1 on "summer": the second basket of a customer).
	errs := make(chan error, 24)
	for i := range 24 {
		go func() {
			cust := protocol.CustomerID(fmt.Sprintf("po-%d", i/2))
			txn := fmt.Sprint("web-", i)
			_, _, err := l.RedeemBasket(ctx, ledger.Basket{Tenant: tenant, Redemptions: []protocol.Redemption{
				{Kind: protocol.KindRedeem, Store: "web", TxnID: txn, Campaign: "loyalty", Customer: cust, Currency: "EUR", Discount: 10, OrderTot: 1000 + int64(i)},
				{Kind: protocol.KindRedeem, Store: "web", TxnID: txn, Campaign: "summer", Customer: cust, Currency: "EUR", Discount: 10, OrderTot: 1000 + int64(i)},
			}})
			errs <- err
		}()
	}
	refused := 0
	for range 24 {
		if err := <-errs; err != nil {
			refused++
		}
	}
	if refused != 12 {
		t.Fatalf("%d baskets refused, want 12", refused)
	}
	db := l.DB()
	count := func(q string) int {
		t.Helper()
		var n int
		if err := db.QueryRowContext(ctx, q).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if got, want := count(`SELECT COUNT(*) FROM ledger_purchases`), 5*2+12; got != want {
		t.Fatalf("%d purchase rows, want %d", got, want)
	}
	for _, q := range []string{
		`SELECT COUNT(*) FROM (SELECT tenant, customer, at / 86400000000 AS day, SUM(value) AS v, COUNT(*) AS n FROM ledger_purchases GROUP BY 1, 2, 3) p
			FULL JOIN ledger_purchase_days d USING (tenant, customer, day) WHERE p.v IS NOT d.value OR p.n IS NOT d.orders`,
		`SELECT COUNT(*) FROM (SELECT tenant, customer, store, MIN(at) AS f, MAX(at) AS l, COUNT(*) AS n FROM ledger_purchases GROUP BY 1, 2, 3
			UNION ALL SELECT tenant, customer, '', MIN(at), MAX(at), COUNT(*) FROM ledger_purchases GROUP BY 1, 2) p
			FULL JOIN ledger_purchase_stores s USING (tenant, customer, store) WHERE p.f IS NOT s.first_at OR p.l IS NOT s.last_at OR p.n IS NOT s.orders`,
	} {
		if n := count(q); n != 0 {
			t.Fatalf("%d aggregate rows differ from the purchases: %s", n, q)
		}
	}
}

// TestDrainWatermarksPastOnePage: a till with more seqs recorded beyond
// its watermark than one page of qAgentSeqs (4,096) takes the reading
// path (prefetch, loadVoided, watermarkFrom), within the same drain as
// tills that do not, and its watermark still moves over all of them.
func TestDrainWatermarksPastOnePage(t *testing.T) {
	ctx := context.Background()
	l, _ := MustOpen(t)
	const n = 4200
	for lo := uint64(2); lo <= n; lo += 700 {
		var seqs []uint64
		for s := lo; s < lo+700 && s <= n; s++ {
			seqs = append(seqs, s)
		}
		ack, _, err := l.ApplyBatch(ctx, tenant, "page-till", reds("page-till", seqs...))
		if err != nil {
			t.Fatal(err)
		}
		if ack.Watermark != 0 || len(ack.Beyond) != min(int(seqs[len(seqs)-1]-1), ledger.MaxAckBeyond) {
			t.Fatalf("ack %d, %d beyond", ack.Watermark, len(ack.Beyond))
		}
	}
	res, err := l.ApplyBatches(ctx, []ledger.Batch{
		{Tenant: tenant, Agent: "page-other", Redemptions: reds("page-other", 1, 2)},
		{Tenant: tenant, Agent: "page-till", Redemptions: reds("page-till", 1, 7, n+1)}, // the gap, a repeat, the next
		{Tenant: tenant, Agent: "page-other", Redemptions: reds("page-other", 4)},
	})
	if err != nil {
		t.Fatal(err)
	}
	if a := res[1].Ack; a.Watermark != n+1 || len(a.Beyond) != 0 {
		t.Fatalf("page-till ack %d beyond %v; want %d", a.Watermark, a.Beyond, n+1)
	}
	for _, i := range []int{0, 2} {
		if a := res[i].Ack; a.Watermark != 2 || !slices.Equal(a.Beyond, []uint64{4}) {
			t.Fatalf("page-other ack %d beyond %v; want 2 beyond [4]", a.Watermark, a.Beyond)
		}
	}
}

// TestDrainDebtLot pins the earns of a drain that the prefetch found
// without a debt lot (rows.go: noDebt): when a burn in the same drain
// overdraws the customer into a debt lot, a later earn of the drain
// still pays the debt first, and a customer already in debt is never
// taken as without one. Verify (MustOpen) checks points = Σ lots.
func TestDrainDebtLot(t *testing.T) {
	ctx := context.Background()
	l, _ := MustOpen(t)
	burn := func(ag protocol.AgentID, seq uint64, cu protocol.CustomerID, n int64) protocol.Redemption {
		return red(ag, seq, func(r *protocol.Redemption) { r.Kind, r.Customer, r.Points, r.Discount = protocol.KindBurn, cu, -n, 0 })
	}
	// d-2 goes into debt in an earlier drain.
	if _, err := l.ApplyBatches(ctx, []ledger.Batch{{Tenant: tenant, Agent: "debt-b", Redemptions: []protocol.Redemption{burn("debt-b", 1, "d-2", 15)}}}); err != nil {
		t.Fatal(err)
	}
	res, err := l.ApplyBatches(ctx, []ledger.Batch{
		{Tenant: tenant, Agent: "debt-a", Redemptions: []protocol.Redemption{earnAt("debt-a", 1, "d-1", 10, t0, time.Time{})}},
		{Tenant: tenant, Agent: "debt-b", Redemptions: []protocol.Redemption{burn("debt-b", 2, "d-1", 30), earnAt("debt-b", 3, "d-2", 40, t0, time.Time{})}},
		{Tenant: tenant, Agent: "debt-c", Redemptions: []protocol.Redemption{earnAt("debt-c", 1, "d-1", 50, t0, time.Time{})}},
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res {
		if r.Err != nil {
			t.Fatal(r.Err)
		}
	}
	for cu, want := range map[protocol.CustomerID]int64{"d-1": 10 - 30 + 50, "d-2": -15 + 40} {
		got, err := l.Points(ctx, tenant, cu)
		if err != nil || got != want {
			t.Fatalf("%s: points %d, %v; want %d", cu, got, err, want)
		}
		var debt int64
		if err := l.DB().QueryRowContext(ctx, `SELECT COALESCE(SUM(remaining), 0) FROM ledger_points_lots WHERE tenant = ? AND customer = ? AND debt = 1`,
			string(tenant), string(cu)).Scan(&debt); err != nil {
			t.Fatal(err)
		}
		if debt != 0 {
			t.Fatalf("%s: debt lot holds %d after the earns; want it paid", cu, debt)
		}
	}
}

// TestDrainRollbackAheadOfWatermark pins loadAgents' shortcut (rows.go:
// qWatermarksIn says whether anything is recorded after a till's
// watermark, and a till with nothing after it skips qAgentSeqs): a
// rollback recorded in one drain voids the original that arrives in a
// later drain, also when the till's watermark has passed the rollback
// but not the seq it names (nothing in the journal is after the
// watermark then, only the rollback's reference), and when a gap holds
// the watermark back.
func TestDrainRollbackAheadOfWatermark(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name         string
		first, later []uint64 // seqs of redeems (and the rollback, rb) per drain
		rb, ref      uint64   // the rollback's seq and the seq it names
		count        int64    // the campaign's count after both drains
		wm           uint64   // the till's watermark after both drains
	}{
		// 1 redeem, 2 rolls back 4: watermark 2, nothing after it but
		// the reference; 3 and 4 arrive later, 4 voided on arrival.
		{"RefBeyondWatermark", []uint64{1}, []uint64{3, 4}, 2, 4, 2, 4},
		// A gap at 2: the rollback (3) is after the watermark (1).
		{"Gap", []uint64{1}, []uint64{2, 4}, 3, 4, 2, 4},
		// The original first: the rollback voids it (no shortcut in play).
		{"OriginalFirst", []uint64{1, 4}, []uint64{2, 3}, 5, 4, 3, 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l, _ := MustOpen(t)
			const till = protocol.AgentID("rb-till")
			other := protocol.AgentID("rb-other") // another till in the same drains
			rb := red(till, tc.rb, func(r *protocol.Redemption) {
				r.Kind, r.Ref = protocol.KindRollback, &protocol.RedemptionID{Agent: till, Seq: tc.ref}
			})
			drain := func(seqs []uint64, withRB bool, otherSeq uint64) ledger.Result {
				rs := reds(till, seqs...)
				if withRB {
					rs = append(rs, rb)
				}
				res, err := l.ApplyBatches(ctx, []ledger.Batch{
					{Tenant: tenant, Agent: other, Redemptions: reds(other, otherSeq)},
					{Tenant: tenant, Agent: till, Redemptions: rs},
				})
				if err != nil || res[1].Err != nil {
					t.Fatalf("apply %v: %v %v", seqs, err, res)
				}
				return res[1]
			}
			drain(tc.first, tc.rb < tc.ref, 1)
			r := drain(tc.later, tc.rb > tc.ref, 2)
			if r.Ack.Watermark != tc.wm {
				t.Errorf("watermark %d, want %d", r.Ack.Watermark, tc.wm)
			}
			var n int64
			if err := l.DB().QueryRowContext(ctx, `SELECT COALESCE(SUM(sign), 0) FROM ledger_journal WHERE tenant = ? AND agent = ?`,
				string(tenant), string(till)).Scan(&n); err != nil {
				t.Fatal(err)
			}
			if n != tc.count {
				t.Errorf("the till's counted redeems: %d, want %d", n, tc.count)
			}
		})
	}
}

// TestEarnRollbackInLaterDrain pins the rollback of an earn finding its
// lot among its customer's lots (ledger_022_lots_src: by customer and
// source seq, then agent): two tills earn for the same customer with
// the same seq, one rolls its earn back in a later drain; only its lot
// is voided and the customer keeps the other's points.
func TestEarnRollbackInLaterDrain(t *testing.T) {
	ctx := context.Background()
	l, _ := MustOpen(t)
	earn := func(a protocol.AgentID, seq uint64, pts int64) protocol.Redemption {
		return red(a, seq, func(r *protocol.Redemption) {
			r.Kind, r.Customer, r.Points, r.Discount = protocol.KindEarn, "alice", pts, 0
		})
	}
	if _, err := l.ApplyBatches(ctx, []ledger.Batch{
		{Tenant: tenant, Agent: "e-till-1", Redemptions: []protocol.Redemption{earn("e-till-1", 1, 10)}},
		{Tenant: tenant, Agent: "e-till-2", Redemptions: []protocol.Redemption{earn("e-till-2", 1, 7), earn("e-till-2", 2, 5)}},
	}); err != nil {
		t.Fatal(err)
	}
	undo := red("e-till-2", 3, func(r *protocol.Redemption) {
		r.Kind, r.Ref = protocol.KindRollback, &protocol.RedemptionID{Agent: "e-till-2", Seq: 1}
	})
	if res, err := l.ApplyBatches(ctx, []ledger.Batch{{Tenant: tenant, Agent: "e-till-2", Redemptions: []protocol.Redemption{undo}}}); err != nil || res[0].Err != nil {
		t.Fatalf("rollback: %v %v", err, res)
	}
	if pts, err := l.Points(ctx, tenant, "alice"); err != nil || pts != 15 {
		t.Fatalf("points %d (%v), want 15", pts, err)
	}
	lots, err := l.PointsLots(ctx, tenant, "alice")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, lt := range lots {
		got = append(got, fmt.Sprintf("%d/%d", lt.Amount, lt.Remaining))
	}
	slices.Sort(got)
	if want := []string{"10/10", "5/5"}; !slices.Equal(got, want) {
		t.Fatalf("lots %v, want %v", got, want)
	}
}
