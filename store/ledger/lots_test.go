package ledger_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/punchcard/punchcard/internal/testutil"
	"github.com/punchcard/punchcard/protocol"
	pledger "github.com/punchcard/punchcard/protocol/ledger"
	"github.com/punchcard/punchcard/protocol/rules"
	"github.com/punchcard/punchcard/store/ledger"
)

// earnAt is a till's earn fact of n points for customer at t, expiring
// at exp (zero: never).
func earnAt(agent protocol.AgentID, seq uint64, cu protocol.CustomerID, n int64, t, exp time.Time) protocol.Redemption {
	return red(agent, seq, func(r *protocol.Redemption) {
		r.Kind, r.Customer, r.Points, r.Discount, r.HLC = protocol.KindEarn, cu, n, 0, ledger.HLCFromTime(t)
		if !exp.IsZero() {
			r.Expires = exp.UnixMicro()
		}
	})
}

// onlineBurn is the hub's burn of n points.
func onlineBurn(l *ledger.Ledger, cu protocol.CustomerID, n int64, txn string) (protocol.Redemption, error) {
	return l.Redeem(context.Background(), protocol.Redemption{Kind: protocol.KindBurn, Tenant: tenant, Store: "web", TxnID: txn,
		Campaign: "loyalty", Customer: cu, Currency: "EUR", Points: -n})
}

func mustPoints(t *testing.T, l *ledger.Ledger, cu protocol.CustomerID, want int64) {
	t.Helper()
	if p, err := l.Points(context.Background(), tenant, cu); err != nil || p != want {
		t.Fatalf("points of %s: %d, %v; want %d", cu, p, err, want)
	}
}

// TestLotsQuarterGolden is the seeds' worked example (issue 12): points
// earned in a quarter expire together at the end of the same quarter two
// years later, on the store's calendar, across the DST changes of
// Europe/Berlin (29 March and 25 October 2026), and the customer sees
// which points expire when.
func TestLotsQuarterGolden(t *testing.T) {
	ctx := context.Background()
	l, clk := MustOpen(t)
	ber, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	q2y := rules.Expiry{Kind: rules.ExpiryBucketed, Bucket: rules.PeriodQuarter, Years: 2}
	cases := []struct {
		earned time.Time
		points int64
		want   time.Time // the exact expiry, UTC
	}{
		// Q1 2026, before and after clocks went forward on 29 March: both
		// end 1 April 2028 00:00 CEST (+02:00).
		{time.Date(2026, 3, 28, 12, 0, 0, 0, ber), 100, time.Date(2028, 3, 31, 22, 0, 0, 0, time.UTC)},
		{time.Date(2026, 3, 30, 9, 0, 0, 0, ber), 50, time.Date(2028, 3, 31, 22, 0, 0, 0, time.UTC)},
		// Q2 2026 from its first minute: 1 July 2028 00:00 CEST.
		{time.Date(2026, 4, 1, 0, 30, 0, 0, ber), 30, time.Date(2028, 6, 30, 22, 0, 0, 0, time.UTC)},
		// Q4 2026, after clocks went back on 25 October: 1 January 2029
		// 00:00 CET (+01:00).
		{time.Date(2026, 10, 26, 8, 0, 0, 0, ber), 20, time.Date(2028, 12, 31, 23, 0, 0, 0, time.UTC)},
	}
	var facts []protocol.Redemption
	for i, c := range cases {
		exp := rules.ExpiresAt(q2y, c.earned, ber)
		if !exp.Equal(c.want) {
			t.Fatalf("case %d: the engine says %v, want %v", i, exp.UTC(), c.want)
		}
		facts = append(facts, earnAt("till-1", uint64(i+1), "c1", c.points, c.earned, exp))
	}
	clk.t = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	if _, _, err := l.ApplyBatch(ctx, tenant, "till-1", facts); err != nil {
		t.Fatal(err)
	}
	mustPoints(t, l, "c1", 200)
	lots, err := l.PointsLots(ctx, tenant, "c1")
	if err != nil || len(lots) != 4 {
		t.Fatalf("lots %+v, %v", lots, err)
	}
	for i, c := range cases[:2] {
		if !lots[i].ExpiresAt.Equal(c.want) || !lots[i].EarnedAt.Equal(c.earned.UTC()) {
			t.Fatalf("lot %d: %+v, want earned %v expiring %v", i, lots[i], c.earned.UTC(), c.want)
		}
	}

	// A burn of 120 takes the 150 of Q1 first (the oldest lot first).
	if _, err := onlineBurn(l, "c1", 120, "b1"); err != nil {
		t.Fatal(err)
	}
	lots, _ = l.PointsLots(ctx, tenant, "c1")
	if len(lots) != 3 || lots[0].Remaining != 30 || lots[0].Amount != 50 || lots[1].Remaining != 30 || lots[2].Remaining != 20 {
		t.Fatalf("after the burn: %+v", lots)
	}

	// The last instant of Q1 2028 in Berlin: nothing expires yet.
	clk.t = cases[0].want.Add(-time.Microsecond)
	if n, _, err := l.ExpireLots(ctx, clk.Now(), 0); err != nil || n != 0 {
		t.Fatalf("expired %d lots before their time, %v", n, err)
	}
	mustPoints(t, l, "c1", 80)
	// At 1 April 2028 00:00 Berlin the Q1 lots expire together.
	clk.t = cases[0].want
	if n, p, err := l.ExpireLots(ctx, clk.Now(), 0); err != nil || n != 1 || p != 30 {
		t.Fatalf("expired %d lots, %d points, %v; want 1 lot of 30 (the other Q1 lot was spent)", n, p, err)
	}
	mustPoints(t, l, "c1", 50)
	if n, _, err := l.ExpireLots(ctx, clk.Now(), 0); err != nil || n != 0 {
		t.Fatalf("a second run expired %d lots, %v", n, err)
	}
	es, err := l.CustomerEntries(ctx, tenant, "c1", 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	var expired []ledger.CustomerEntry
	for _, e := range es {
		if e.Entry == pledger.EntryPointsExpired {
			expired = append(expired, e)
		}
	}
	if len(expired) != 1 || expired[0].Points != -30 || !expired[0].At.Equal(cases[0].want) {
		t.Fatalf("points_expired entries %+v", expired)
	}
	// Q2 and Q4 at theirs.
	clk.t = cases[3].want
	if n, p, err := l.ExpireLots(ctx, clk.Now(), 0); err != nil || n != 2 || p != 50 {
		t.Fatalf("expired %d lots, %d points, %v; want 2 and 50", n, p, err)
	}
	mustPoints(t, l, "c1", 0)
}

// TestLotsBurnOrder: burns take the lots that expire first, never-expiring
// lots last, and the oldest of equal expiry first; a rollback gives back
// exactly the lots the burn took, and a given-back lot that expired
// meanwhile expires again at once, journaled.
func TestLotsBurnOrder(t *testing.T) {
	ctx := context.Background()
	l, clk := MustOpen(t)
	now := clk.Now()
	soon, later := now.Add(24*time.Hour), now.Add(48*time.Hour)
	if _, _, err := l.ApplyBatch(ctx, tenant, "till-1", []protocol.Redemption{
		earnAt("till-1", 1, "c1", 40, now, time.Time{}),
		earnAt("till-1", 2, "c1", 30, now, later),
		earnAt("till-1", 3, "c1", 20, now, soon),
	}); err != nil {
		t.Fatal(err)
	}
	b, err := onlineBurn(l, "c1", 35, "b1")
	if err != nil {
		t.Fatal(err)
	}
	lots, _ := l.PointsLots(ctx, tenant, "c1")
	if len(lots) != 2 || lots[0].Remaining != 15 || !lots[0].ExpiresAt.Equal(later) || lots[1].Remaining != 40 {
		t.Fatalf("after burning 35: %+v", lots)
	}
	if _, err := onlineBurn(l, "c1", 56, "b2"); protocol.ErrorCode(err) != protocol.CodeInsufficientPts {
		t.Fatalf("burning 56 of 55: %v", err)
	}
	// The 20 of "soon" expire; the rollback gives them back, and they
	// expire again at once.
	clk.t = soon.Add(time.Minute)
	if _, err := l.Redeem(ctx, protocol.Redemption{Kind: protocol.KindRollback, Tenant: tenant, TxnID: "rb1", Ref: &b.ID}); err != nil {
		t.Fatal(err)
	}
	mustPoints(t, l, "c1", 70)
	lots, _ = l.PointsLots(ctx, tenant, "c1")
	if len(lots) != 2 || lots[0].Remaining != 30 || lots[1].Remaining != 40 {
		t.Fatalf("after the rollback: %+v", lots)
	}
	es, _ := l.CustomerEntries(ctx, tenant, "c1", 0, 100)
	var n int
	for _, e := range es {
		if e.Entry == pledger.EntryPointsExpired {
			n++
			if e.Points != -20 {
				t.Fatalf("expired %+v", e)
			}
		}
	}
	if n != 1 {
		t.Fatalf("%d points_expired entries, want 1", n)
	}
}

// TestLotsTillOverdraw: a till's offline burn beyond the live lots is
// recorded (a fact), flagged points_overdrawn, and kept as the
// customer's debt, which the next earn pays off first.
func TestLotsTillOverdraw(t *testing.T) {
	ctx := context.Background()
	l, clk := MustOpen(t)
	now := clk.Now()
	burn := red("till-1", 2, func(r *protocol.Redemption) {
		r.Kind, r.Customer, r.Points, r.Discount = protocol.KindBurn, "c1", -50, 0
	})
	_, cs, err := l.ApplyBatch(ctx, tenant, "till-1", []protocol.Redemption{earnAt("till-1", 1, "c1", 30, now, now.Add(time.Hour)), burn})
	if err != nil {
		t.Fatal(err)
	}
	if len(cs) != 1 || cs[0].Kind != ledger.ConflictPointsOverdrawn {
		t.Fatalf("conflicts %+v", cs)
	}
	mustPoints(t, l, "c1", -20)
	if _, _, err := l.ApplyBatch(ctx, tenant, "till-1", []protocol.Redemption{earnAt("till-1", 3, "c1", 50, now, now.Add(2*time.Hour))}); err != nil {
		t.Fatal(err)
	}
	mustPoints(t, l, "c1", 30)
	lots, _ := l.PointsLots(ctx, tenant, "c1")
	if len(lots) != 1 || lots[0].Remaining != 30 || lots[0].Amount != 50 {
		t.Fatalf("lots %+v", lots)
	}
}

// TestLotsBackfillSQL runs the migration's backfill statement on balances
// as an old ledger kept them.
func TestLotsBackfillSQL(t *testing.T) {
	ctx := context.Background()
	l, _ := MustOpen(t)
	db := l.DB()
	// Old-style history: journal entries and balances, no lots.
	for i, p := range []int64{100, -30} {
		if _, err := db.ExecContext(ctx, `INSERT INTO ledger_journal (tenant, entry, agent, seq, customer, points, psign, received_at) VALUES (?, 'earn', 'old', ?, ?, ?, 1, 0)`,
			string(tenant), i+1, fmt.Sprintf("c%d", i), p); err != nil {
			t.Fatal(err)
		}
		if _, err := db.ExecContext(ctx, `INSERT INTO ledger_customers (tenant, customer, points) VALUES (?, ?, ?)`, string(tenant), fmt.Sprintf("c%d", i), p); err != nil {
			t.Fatal(err)
		}
	}
	rep, _ := l.Verify(ctx)
	if rep.OK() {
		t.Fatal("balances without lots verify")
	}
	if _, err := db.ExecContext(ctx, `INSERT INTO ledger_points_lots (tenant, customer, amount, remaining, earned_at, expires_at, debt)
		SELECT tenant, customer, points, points, 0, 0, points < 0 FROM ledger_customers WHERE points != 0`); err != nil {
		t.Fatal(err)
	}
	if rep, err := l.Verify(ctx); err != nil || !rep.OK() {
		t.Fatalf("after the backfill: %+v, %v", rep, err)
	}
	mustPoints(t, l, "c0", 100)
	if _, err := onlineBurn(l, "c0", 100, "b"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := l.ApplyBatch(ctx, tenant, "till-1", []protocol.Redemption{earnAt("till-1", 1, "c1", 50, t0, time.Time{})}); err != nil {
		t.Fatal(err)
	}
	mustPoints(t, l, "c1", 20)
}

// TestLotsProperty runs random sequences of earns (the hub's and a
// till's, with and without expiry), burns (checked online, and a till's
// offline ones that may overdraw), refunds (rollbacks of earns and
// burns), scheduled expiries and clock moves, and checks after every step
// that Verify is clean (balance = Σ lots, expiry = its journal entries),
// that Points is the balance less what is due, that an online burn is
// refused exactly when it asks more than Points, that no burn ever took
// from a lot past its expiry, and that after an expiry run nothing due
// holds points. Under -race (make test) it runs 2 of the 6 seeds: the
// same checks, the full set in go test without -race and make test-long.
func TestLotsProperty(t *testing.T) {
	for seed := uint64(1); seed <= uint64(testutil.Rounds(6, 2)); seed++ {
		t.Run(fmt.Sprint(seed), func(t *testing.T) { lotsProperty(t, seed, 250) })
	}
}

func lotsProperty(t *testing.T, seed uint64, steps int) {
	ctx := context.Background()
	l, clk := MustOpen(t)
	rng := rand.New(rand.NewPCG(seed, 42))
	customers := []protocol.CustomerID{"c1", "c2"}
	var hubFacts []protocol.RedemptionID // earns and burns of the hub, to roll back
	var tillFacts []uint64               // the till's earns and burns
	var tillSeq uint64
	db := l.DB()
	for step := range steps {
		now := clk.Now()
		cu := customers[rng.IntN(len(customers))]
		exp := time.Time{}
		if rng.IntN(4) > 0 {
			exp = now.Add(time.Duration(1+rng.IntN(72)) * time.Hour)
		}
		what := ""
		switch op := rng.IntN(10); op {
		case 0, 1: // a hub earn
			what = "hub earn"
			r := protocol.Redemption{Kind: protocol.KindEarn, Tenant: tenant, Store: "web", TxnID: fmt.Sprintf("e%d", step),
				Campaign: "loyalty", Customer: cu, Currency: "EUR", Points: int64(1 + rng.IntN(100))}
			if !exp.IsZero() {
				r.Expires = exp.UnixMicro()
			}
			out, err := l.Redeem(ctx, r)
			if err != nil {
				t.Fatal(err)
			}
			hubFacts = append(hubFacts, out.ID)
		case 2: // a till earn
			what = "till earn"
			tillSeq++
			if _, _, err := l.ApplyBatch(ctx, tenant, "till-1", []protocol.Redemption{earnAt("till-1", tillSeq, cu, int64(1+rng.IntN(100)), now, exp)}); err != nil {
				t.Fatal(err)
			}
			tillFacts = append(tillFacts, tillSeq)
		case 3, 4: // a hub burn
			what = "hub burn"
			live, err := l.Points(ctx, tenant, cu)
			if err != nil {
				t.Fatal(err)
			}
			n := int64(1 + rng.IntN(120))
			out, err := onlineBurn(l, cu, n, fmt.Sprintf("b%d", step))
			switch {
			case n <= live && err != nil:
				t.Fatalf("step %d: burning %d of %d live: %v", step, n, live, err)
			case n > live && protocol.ErrorCode(err) != protocol.CodeInsufficientPts:
				t.Fatalf("step %d: burning %d of %d live: %v", step, n, live, err)
			case err == nil:
				hubFacts = append(hubFacts, out.ID)
			}
		case 5: // a till burn, offline: it may overdraw
			what = "till burn"
			tillSeq++
			b := red("till-1", tillSeq, func(r *protocol.Redemption) {
				r.Kind, r.Customer, r.Points, r.Discount, r.HLC = protocol.KindBurn, cu, -int64(1+rng.IntN(60)), 0, ledger.HLCFromTime(now)
			})
			if _, _, err := l.ApplyBatch(ctx, tenant, "till-1", []protocol.Redemption{b}); err != nil {
				t.Fatal(err)
			}
			tillFacts = append(tillFacts, tillSeq)
		case 6: // a refund online: roll back a hub earn or burn
			what = "hub rollback"
			if len(hubFacts) == 0 {
				continue
			}
			i := rng.IntN(len(hubFacts))
			ref := hubFacts[i]
			hubFacts = append(hubFacts[:i], hubFacts[i+1:]...)
			if _, err := l.Redeem(ctx, protocol.Redemption{Kind: protocol.KindRollback, Tenant: tenant, TxnID: fmt.Sprintf("r%d", step), Ref: &ref}); err != nil {
				t.Fatalf("step %d: rollback of %v: %v", step, ref, err)
			}
		case 7: // a till's rollback of its own fact
			what = "till rollback"
			if len(tillFacts) == 0 {
				continue
			}
			i := rng.IntN(len(tillFacts))
			ref := protocol.RedemptionID{Agent: "till-1", Seq: tillFacts[i]}
			tillFacts = append(tillFacts[:i], tillFacts[i+1:]...)
			tillSeq++
			rb := red("till-1", tillSeq, func(r *protocol.Redemption) {
				r.Kind, r.Ref, r.Discount, r.OrderTot, r.Campaign = protocol.KindRollback, &ref, 0, 0, ""
			})
			if _, _, err := l.ApplyBatch(ctx, tenant, "till-1", []protocol.Redemption{rb}); err != nil {
				t.Fatal(err)
			}
		case 8: // the scheduled expiry
			what = "expiry"
			if _, _, err := l.ExpireLots(ctx, now, 1+rng.IntN(3)); err != nil {
				t.Fatal(err)
			}
			var due int64
			if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM ledger_points_lots WHERE remaining > 0 AND expires_at > 0 AND expires_at <= ?`, now.UnixMicro()).Scan(&due); err != nil || due != 0 {
				t.Fatalf("step %d: %d lots due after the expiry, %v", step, due, err)
			}
		case 9: // time passes
			what = "clock"
			clk.Add(time.Duration(rng.IntN(30)) * time.Hour)
		}
		rep, err := l.Verify(ctx)
		if err != nil || !rep.OK() {
			t.Fatalf("step %d (%s): verify %+v, %v", step, what, rep.Diffs, err)
		}
		for _, c := range customers {
			var stored, due int64
			if err := db.QueryRowContext(ctx, `SELECT COALESCE((SELECT points FROM ledger_customers WHERE tenant = ?1 AND customer = ?2), 0),
				COALESCE((SELECT SUM(remaining) FROM ledger_points_lots WHERE tenant = ?1 AND customer = ?2 AND remaining > 0 AND expires_at > 0 AND expires_at <= ?3), 0)`,
				string(tenant), string(c), clk.Now().UnixMicro()).Scan(&stored, &due); err != nil {
				t.Fatal(err)
			}
			mustPoints(t, l, c, stored-due)
		}
		// No burn took from a lot at or past its expiry.
		var bad int64
		if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM ledger_points_takes t
			JOIN ledger_journal j ON j.tenant = t.tenant AND j.agent = t.agent AND j.seq = t.seq
			JOIN ledger_points_lots p ON p.id = t.lot
			WHERE p.expires_at != 0 AND p.expires_at <= j.received_at`).Scan(&bad); err != nil || bad != 0 {
			t.Fatalf("step %d (%s): %d takes of expired points, %v", step, what, bad, err)
		}
	}
	rows, err := db.QueryContext(ctx, `SELECT entry, COUNT(*), SUM(psign != 0) FROM ledger_journal GROUP BY entry`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var e string
		var n, eff int64
		rows.Scan(&e, &n, &eff)
		t.Logf("%s: %d (%d with effect)", e, n, eff)
	}
	var debts, voided int64
	db.QueryRowContext(ctx, `SELECT SUM(debt), SUM(voided) FROM ledger_points_lots`).Scan(&debts, &voided)
	t.Logf("debt lots %d, voided lots %d", debts, voided)
}

// TestLotsExpiryRacesBurn: the scheduled expiry and online burns of the
// same points, at the instant they expire, run concurrently. Each point is
// either burned or expired, never both: burned + expired = earned, and
// the ledger verifies.
func TestLotsExpiryRacesBurn(t *testing.T) {
	ctx := context.Background()
	l, clk := MustOpen(t)
	at := clk.Now().Add(time.Hour)
	var facts []protocol.Redemption
	for i := range 50 {
		facts = append(facts, earnAt("till-1", uint64(i+1), "c1", 10, clk.Now(), at))
	}
	if _, _, err := l.ApplyBatch(ctx, tenant, "till-1", facts); err != nil {
		t.Fatal(err)
	}
	clk.t = at.Add(-time.Microsecond) // the burns' clock: the last instant the points are valid
	done := make(chan int64)
	go func() {
		var burned int64
		for i := 0; ; i++ {
			if _, err := onlineBurn(l, "c1", 7, fmt.Sprintf("b%d", i)); err != nil {
				if protocol.ErrorCode(err) != protocol.CodeInsufficientPts {
					t.Error(err)
				}
				done <- burned
				return
			}
			burned += 7
		}
	}()
	var expired int64
	for range 20 {
		_, p, err := l.ExpireLots(ctx, at, 3)
		if err != nil {
			t.Fatal(err)
		}
		expired += p
	}
	burned := <-done
	_, p, err := l.ExpireLots(ctx, at, 0)
	if err != nil {
		t.Fatal(err)
	}
	expired += p
	if burned+expired != 500 {
		t.Fatalf("burned %d + expired %d != earned 500", burned, expired)
	}
	mustPoints(t, l, "c1", 0)
}

// TestLotsBasketReadsOnce: a burn reads the customer's live lots once,
// for the due lots' expiry and its takes together (lots.go, readLots),
// and what it read is never used after a lot changed: an earn before the
// burn in the same basket, two burns in one basket, a burn refused after
// the due lots expired (the basket undone), and a burn whose read stopped
// at what it needed, then a larger one. After each step the lots hold
// what taking soonest expiry first, never-expiring last, gives, and the
// ledger verifies.
func TestLotsBasketReadsOnce(t *testing.T) {
	ctx := context.Background()
	l, clk := MustOpen(t)
	now := clk.Now()
	hour := func(h int) time.Time { return now.Add(time.Duration(h) * time.Hour) }
	if _, _, err := l.ApplyBatch(ctx, tenant, "till-1", []protocol.Redemption{
		earnAt("till-1", 1, "c1", 40, now, time.Time{}), // never expires
		earnAt("till-1", 2, "c1", 30, now, hour(48)),
		earnAt("till-1", 3, "c1", 20, now, hour(24)),
		earnAt("till-1", 4, "c1", 7, now, hour(2)), // due at step "refused"
	}); err != nil {
		t.Fatal(err)
	}
	earn := func(n int64, exp time.Time) protocol.Redemption {
		return protocol.Redemption{Kind: protocol.KindEarn, Tenant: tenant, Store: "web", Campaign: "loyalty", Customer: "c1",
			Currency: "EUR", Points: n, Expires: exp.UnixMicro()}
	}
	burn := func(n int64) protocol.Redemption {
		return protocol.Redemption{Kind: protocol.KindBurn, Tenant: tenant, Store: "web", Campaign: "loyalty", Customer: "c1",
			Currency: "EUR", Points: -n}
	}
	basket := func(txn string, rs ...protocol.Redemption) error {
		for i := range rs {
			rs[i].TxnID = txn
		}
		_, _, err := l.RedeemBasket(ctx, ledger.Basket{Tenant: tenant, Redemptions: rs})
		return err
	}
	// remaining lists the live lots' remaining points in the order a burn
	// takes them.
	remaining := func() []int64 {
		t.Helper()
		lots, err := l.PointsLots(ctx, tenant, "c1")
		if err != nil {
			t.Fatal(err)
		}
		var out []int64
		for _, lt := range lots {
			if lt.Remaining > 0 && (lt.ExpiresAt.IsZero() || lt.ExpiresAt.After(clk.Now())) {
				out = append(out, lt.Remaining)
			}
		}
		return out
	}
	steps := []struct {
		name   string
		run    func() error
		code   protocol.Code
		points int64
		want   []int64
	}{
		// The earn's lot (1 h) is the soonest: the burn that follows it in
		// the basket takes it first, then 3 of the 7 (2 h).
		{"earn then burn", func() error { return basket("b1", earn(10, hour(1)), burn(13)) }, "", 94, []int64{4, 20, 30, 40}},
		// Two burns in one basket: the second takes after the first (what
		// the first read holds 4; the second must not take 3 of it again).
		{"two burns", func() error { return basket("b2", burn(3), burn(3)) }, "", 88, []int64{18, 30, 40}},
		// Two hours on: nothing is due (the 2 h lot is empty). A burn
		// that stops at what it needs, then one past the expiring lots.
		{"small burn", func() error { clk.t = hour(3); return basket("b3", burn(5)) }, "", 83, []int64{13, 30, 40}},
		{"large burn", func() error { return basket("b4", burn(45)) }, "", 38, []int64{38}},
		// A lot that will be due, then a burn refused after the due lot
		// expired in its basket: the basket (the expiry and the read) is
		// undone, and the next burn expires the lot again.
		{"earn to expire", func() error { return basket("b5", earn(8, hour(4))) }, "", 46, []int64{8, 38}},
		{"refused", func() error { clk.t = hour(5); return basket("b6", burn(40)) }, protocol.CodeInsufficientPts, 38, []int64{38}},
		{"after refused", func() error { return basket("b7", earn(5, hour(6)), burn(6)) }, "", 37, []int64{37}},
	}
	for _, st := range steps {
		err := st.run()
		if got := protocol.ErrorCode(err); got != st.code {
			t.Fatalf("%s: %v, want code %q", st.name, err, st.code)
		}
		mustPoints(t, l, "c1", st.points)
		if got := remaining(); !slices.Equal(got, st.want) {
			t.Fatalf("%s: live lots %v, want %v", st.name, got, st.want)
		}
		if rep, err := l.Verify(ctx); err != nil || !rep.OK() {
			t.Fatalf("%s: verify %+v, %v", st.name, rep, err)
		}
	}
}
