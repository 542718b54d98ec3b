package agent_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/punchcard/punchcard/agent"
	"github.com/punchcard/punchcard/agent/agenttest"
	"github.com/punchcard/punchcard/internal/testutil"
	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/protocol/rules"
	"github.com/punchcard/punchcard/protocol/snapshot"
	"github.com/punchcard/punchcard/store/agentdb"
)

func allowanceOf(t *testing.T, db *agentdb.DB, c protocol.CampaignID) agentdb.AllowanceLeft {
	t.Helper()
	al, _, err := db.Allowance(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	return al
}

// TestRefreshAllowances: a till takes its share of every limited campaign
// when it syncs, before any sale, and tops it up in the background at the
// low-water mark.
func TestRefreshAllowances(t *testing.T) {
	ctx := context.Background()
	t.Run("OK", func(t *testing.T) {
		e := newEnv(t, agenttest.Small(1, 0)) // synced, holding nothing of pct10
		e.link.on.Store(true)
		if err := e.a.RefreshAllowances(ctx); err != nil {
			t.Fatal(err)
		}
		if al := allowanceOf(t, e.db, agenttest.CampPercent); al.Count != 5 || e.link.grants.Load() != 1 {
			t.Fatalf("after sync: %+v, %d requests", al, e.link.grants.Load())
		}
		// Holding enough: a second sync asks for nothing.
		if err := e.a.RefreshAllowances(ctx); err != nil || e.link.grants.Load() != 1 {
			t.Fatalf("second refresh: %v, %d requests", err, e.link.grants.Load())
		}
		// Cut off: the first sale of the campaign is offline, and works.
		e.link.on.Store(false)
		if r := e.post(t, "/v1/redeem", redeem("T1", basket(100_00, agenttest.CodeSummer))); r.Status != 200 || r.Body["offline"] != true {
			t.Fatalf("offline redeem: %d %s", r.Status, r.Raw)
		}
	})
	t.Run("LowWater", func(t *testing.T) {
		e := newEnv(t, agenttest.Small(1, 0))
		e.link.on.Store(true)
		e.link.count = 8
		if err := e.a.RefreshAllowances(ctx); err != nil {
			t.Fatal(err)
		}
		for i, txn := range []string{"T1", "T2", "T3", "T4", "T5"} { // 8 → 3: above 25 %
			if r := e.post(t, "/v1/redeem", redeem(txn, basket(100_00, agenttest.CodeSummer))); r.Status != 200 {
				t.Fatalf("redeem %d: %d %s", i, r.Status, r.Raw)
			}
		}
		time.Sleep(50 * time.Millisecond)
		if n := e.link.grants.Load(); n != 1 {
			t.Fatalf("asked for more above the low-water mark: %d requests", n)
		}
		if r := e.post(t, "/v1/redeem", redeem("T6", basket(100_00, agenttest.CodeSummer))); r.Status != 200 { // 2 left: low
			t.Fatalf("redeem: %d %s", r.Status, r.Raw)
		}
		testutil.Eventually(t, "the background top-up", func() (bool, string) {
			al := allowanceOf(t, e.db, agenttest.CampPercent)
			return al.Count == 10, fmt.Sprintf("%+v", al)
		})
	})
	t.Run("Offline", func(t *testing.T) {
		e := newEnv(t, agenttest.Small(1, 0))
		if err := e.a.RefreshAllowances(ctx); err != nil || e.link.grants.Load() != 0 {
			t.Fatalf("offline refresh asked the hub: %v %d", err, e.link.grants.Load())
		}
	})
}

// TestValidateMatchesRedeem: the quote reports the decision the redeem
// makes in the same state.
func TestValidateMatchesRedeem(t *testing.T) {
	t.Run("OK", func(t *testing.T) {
		// Online with an empty allowance: redeem tops up first, so does
		// validate.
		e := newEnv(t, agenttest.Small(1, 0))
		e.link.on.Store(true)
		q := e.post(t, "/v1/validate", basket(100_00, agenttest.CodeSummer))
		if q.Status != 200 || q.Body["error"] != nil || num(q.Body["discount"]) != 10_00 {
			t.Fatalf("validate: %d %s", q.Status, q.Raw)
		}
		r := e.post(t, "/v1/redeem", redeem("T1", basket(100_00, agenttest.CodeSummer)))
		if r.Status != 200 || num(r.Body["quote"].(map[string]any)["discount"]) != 10_00 {
			t.Fatalf("redeem: %d %s", r.Status, r.Raw)
		}
	})
	t.Run("ErrAllowanceExhausted", func(t *testing.T) {
		e := newEnv(t, agenttest.Small(1, 0))
		q := e.post(t, "/v1/validate", basket(100_00, agenttest.CodeSummer))
		r := e.post(t, "/v1/redeem", redeem("T1", basket(100_00, agenttest.CodeSummer)))
		if q.code() != string(protocol.CodeAllowanceExhausted) || r.code() != q.code() {
			t.Fatalf("validate %s, redeem %s", q.Raw, r.Raw)
		}
	})
	t.Run("ErrNeedsHub", func(t *testing.T) {
		s := agenttest.Small(1, 10)
		s.Envelope.PerRedemption = 0
		e := newEnv(t, s)
		q := e.post(t, "/v1/validate", basket(100_00, agenttest.CodeOnce))
		r := e.post(t, "/v1/redeem", redeem("T1", basket(100_00, agenttest.CodeOnce)))
		if q.code() != string(protocol.CodeNeedsHub) || r.code() != q.code() {
			t.Fatalf("validate %s, redeem %s", q.Raw, r.Raw)
		}
		res := q.Body["results"].([]any)[0].(map[string]any)
		if res["applied"] != false || res["reason"] != string(protocol.CodeNeedsHub) {
			t.Fatalf("result = %v", res)
		}
	})
}

// pointsSnapshot is Small with a loyalty program: 1 point per 1.00 spent
// after discounts.
func pointsSnapshot(t *testing.T) *snapshot.Snapshot {
	t.Helper()
	s := agenttest.Small(1, 10)
	var c rules.Campaign
	doc := `{"schema":1,"id":"loyal","tenant":"acme","status":"active","currency":"EUR","starts_at":"2023-11-14T22:13:20Z",
		"reward":{"kind":"points","points":{"earn":[{"id":"spend","on":"spend","per_amount":100,"milli_points":1000}]}}}`
	if err := json.Unmarshal([]byte(doc), &c); err != nil {
		t.Fatal(err)
	}
	s.Campaigns = append(s.Campaigns, c)
	return s
}

// TestRedeemEarns: redeem records the points its quote promised (on the
// discounted order) in the same transaction; /earn for the same sale
// replays them and records nothing.
func TestRedeemEarns(t *testing.T) {
	cust := &protocol.Customer{ID: "cust-1"}
	withCustomer := func(b agent.Basket) agent.Basket { b.Customer = cust; return b }
	t.Run("OK", func(t *testing.T) {
		e := newEnv(t, pointsSnapshot(t))
		q := e.post(t, "/v1/validate", withCustomer(basket(100_00, agenttest.CodeSummer)))
		if num(q.Body["points_earned"]) != 90 {
			t.Fatalf("quote: %s", q.Raw)
		}
		r := e.post(t, "/v1/redeem", redeem("T1", withCustomer(basket(100_00, agenttest.CodeSummer))))
		if r.Status != 200 || num(r.Body["points_earned"]) != 90 {
			t.Fatalf("redeem: %d %s", r.Status, r.Raw)
		}
		facts := r.Body["redemptions"].([]any)
		if len(facts) != 2 || facts[1].(map[string]any)["kind"] != "earn" || num(facts[1].(map[string]any)["points"]) != 90 {
			t.Fatalf("facts = %v", facts)
		}
		// The POS also calls /earn for the sale: the same points, nothing new.
		en := e.post(t, "/v1/earn", agent.EarnRequest{TxnID: "T1", Order: agenttest.Order("o1", 100_00), Customer: cust})
		if en.Status != 200 || num(en.Body["points_earned"]) != 90 || en.Body["replayed"] != true {
			t.Fatalf("earn after redeem: %d %s", en.Status, en.Raw)
		}
		if st := e.status(t); num(st["last_seq"]) != 2 || num(st["outbox_depth"]) != 2 {
			t.Fatalf("status = %v", st)
		}
		// A rollback voids the points too.
		rb := e.post(t, "/v1/rollback", agent.RollbackRequest{TxnID: "T1"})
		if rb.Status != 200 || len(rb.Body["redemptions"].([]any)) != 2 {
			t.Fatalf("rollback: %d %s", rb.Status, rb.Raw)
		}
	})
	t.Run("EarnFirst", func(t *testing.T) {
		e := newEnv(t, pointsSnapshot(t))
		if en := e.post(t, "/v1/earn", agent.EarnRequest{TxnID: "T1", Order: agenttest.Order("o1", 100_00), Customer: cust}); en.Status != 200 {
			t.Fatalf("earn: %d %s", en.Status, en.Raw)
		}
		r := e.post(t, "/v1/redeem", redeem("T1", withCustomer(basket(100_00, agenttest.CodeSummer))))
		if r.Status != 200 || len(r.Body["redemptions"].([]any)) != 1 || num(r.Body["points_earned"]) != 0 {
			t.Fatalf("redeem after earn earned again: %d %s", r.Status, r.Raw)
		}
	})
	t.Run("ErrConflict", func(t *testing.T) {
		e := newEnv(t, pointsSnapshot(t))
		if r := e.post(t, "/v1/redeem", redeem("T1", basket(100_00, agenttest.CodeSummer))); r.Status != 200 {
			t.Fatalf("redeem: %d %s", r.Status, r.Raw)
		}
		en := e.post(t, "/v1/earn", agent.EarnRequest{TxnID: "T1", Order: agenttest.Order("o1", 100_00), Customer: cust})
		if en.code() != string(protocol.CodeConflict) {
			t.Fatalf("earn on the undiscounted order: %d %s", en.Status, en.Raw)
		}
	})
}

// TestRequireWatermark: a database that never heard the hub's watermark
// records nothing; once it has, it numbers past it.
func TestRequireWatermark(t *testing.T) {
	ctx := context.Background()
	t.Run("ErrNeverSynced", func(t *testing.T) {
		e := newEnv(t, agenttest.Small(1, 10))
		e.a.RequireWatermark = true
		e.a.AllowanceWait = 50 * time.Millisecond
		for _, on := range []bool{false, true} {
			e.link.on.Store(on)
			r := e.post(t, "/v1/redeem", redeem("T1", basket(100_00, agenttest.CodeSummer)))
			if r.code() != string(protocol.CodeNeverSynced) {
				t.Fatalf("online=%v: %d %s", on, r.Status, r.Raw)
			}
		}
		if st := e.status(t); st["never_synced"] != true {
			t.Fatalf("status = %v", st)
		}
	})
	t.Run("OK", func(t *testing.T) {
		e := newEnv(t, agenttest.Small(1, 10))
		e.a.RequireWatermark = true
		e.link.on.Store(true)
		go func() {
			time.Sleep(100 * time.Millisecond)
			e.db.Ack(ctx, 41, nil) // the answer to the first heartbeat
		}()
		r := e.post(t, "/v1/redeem", redeem("T1", basket(100_00, agenttest.CodeSummer)))
		if r.Status != 200 {
			t.Fatalf("redeem: %d %s", r.Status, r.Raw)
		}
		if seq := num(r.Body["redemptions"].([]any)[0].(map[string]any)["id"].(map[string]any)["seq"]); seq != 42 {
			t.Fatalf("seq = %d, want 42", seq)
		}
	})
}
