package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/store/catalog"
)

// TestIdempotencyConcurrent: requests sent at once under one
// Idempotency-Key get one result. Of the senders of the body that was
// recorded, every one gets the same 200 answer (or the same refusal when
// none was recorded); the senders of a different body get 422
// idempotency_key_reused; the ledger holds exactly one basket.
func TestIdempotencyConcurrent(t *testing.T) {
	e := newEnv(t)
	mk, sup := e.keys[catalog.RoleMarketer], e.keys[catalog.RoleSupport]
	e.wantJSON(e.do("POST", "/v1/tenants/acme/campaigns", mk, campaignDoc("summer", "active", percent10, "")), 201, nil)
	auto := campaignDoc("auto", "active", `{"kind":"amount_off","amount":100}`, "")
	auto["trigger"] = "auto"
	e.wantJSON(e.do("POST", "/v1/tenants/acme/campaigns", mk, auto), 201, nil)
	const rounds, same, other = 40, 6, 2
	codes := make([]string, rounds)
	for i := range codes {
		codes[i] = fmt.Sprintf("ONE-%d", i)
	}
	e.wantJSON(e.do("POST", "/v1/tenants/acme/campaigns/summer/codes/import", mk, map[string]any{"codes": codes}), 201, nil)
	for round := range rounds {
		key := fmt.Sprintf("round-%d", round)
		bodyA := map[string]any{"store": web, "order": order(10_00), "redeemables": []any{map[string]any{"code": codes[round]}}}
		bodyB := map[string]any{"store": web, "order": order(20_00), "redeemables": []any{map[string]any{"code": codes[round]}}}
		res := make([]resp, same+other)
		var wg sync.WaitGroup
		for i := range res {
			body := bodyA
			if i >= same {
				body = bodyB
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				res[i] = e.do("POST", "/v1/tenants/acme/redeem", sup, body, "Idempotency-Key", key)
			}()
		}
		wg.Wait()
		winA := res[0].status == 200
		var first resp
		for i, r := range res {
			isA := i < same
			if isA == winA {
				if r.status != 200 {
					t.Fatalf("round %d: sender %d of the recorded body: %d %s", round, i, r.status, r.body)
				}
				if first.body == nil {
					first = r
				} else if !bytes.Equal(first.body, r.body) {
					t.Fatalf("round %d: two answers under one key:\n%s\n%s", round, first.body, r.body)
				}
				continue
			}
			var pe protocol.Error
			if err := json.Unmarshal(r.body, &pe); err != nil || r.status != 422 || pe.Code != protocol.CodeIdempotencyReuse {
				t.Fatalf("round %d: sender %d of the other body: %d %s", round, i, r.status, r.body)
			}
		}
		var out onlineOut
		if err := json.Unmarshal(first.body, &out); err != nil {
			t.Fatal(err)
		}
		var n int
		if err := e.cat.DB().QueryRow(`SELECT COUNT(*) FROM ledger_journal WHERE txn_id = ?`, key).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if got, want := n, len(out.Redemptions); got != want || want != 2 {
			t.Fatalf("round %d: %d journal rows, answer lists %d (want 2: the code and the automatic promotion)", round, got, want)
		}
	}
	rep, err := e.led.Verify(t.Context())
	if err != nil || !rep.OK() {
		t.Fatalf("verify: %+v %v", rep, err)
	}
}

// TestIdempotencyRetryAfterChange: the key is not looked up before the
// decision, so a retry is decided again over what changed since; it still
// gets the first answer byte for byte: when a new automatic promotion
// adds a redemption (the writer meets the key), when the points it earns
// differ (the ledger's transaction-id check refuses other amounts), and
// when the campaign was stopped (the decision refuses).
func TestIdempotencyRetryAfterChange(t *testing.T) {
	e := newEnv(t)
	mk, sup := e.keys[catalog.RoleMarketer], e.keys[catalog.RoleSupport]
	e.wantJSON(e.do("POST", "/v1/tenants/acme/campaigns", mk, campaignDoc("summer", "active", percent10, "")), 201, nil)
	e.wantJSON(e.do("POST", "/v1/tenants/acme/campaigns/summer/codes/import", mk, map[string]any{"codes": []string{"MANY"}, "uses": -1}), 201, nil)
	club := campaignDoc("club", "active", `{"kind":"points","points":{"earn":[{"id":"spend","on":"spend","per_amount":100,"milli_points":1000}]}}`, "")
	club["trigger"] = "auto"
	e.wantJSON(e.do("POST", "/v1/tenants/acme/campaigns", mk, club), 201, nil)
	e.wantJSON(e.do("POST", "/v1/tenants/acme/customers", sup, map[string]any{"id": "c1"}), 201, nil)
	body := map[string]any{"store": web, "order": order(100_00), "customer": "c1", "redeemables": []any{map[string]any{"code": "MANY"}}}
	first := e.do("POST", "/v1/tenants/acme/redeem", sup, body, "Idempotency-Key", "k1")
	if first.status != 200 || first.header.Get("Idempotent-Replayed") != "" {
		t.Fatalf("first: %d %s", first.status, first.body)
	}
	rows := func() int { return journalRows(t, e, "k1") }
	n := rows()
	retry := func(what string) {
		t.Helper()
		r := e.do("POST", "/v1/tenants/acme/redeem", sup, body, "Idempotency-Key", "k1")
		if r.status != 200 || !bytes.Equal(r.body, first.body) || r.header.Get("Idempotent-Replayed") != "true" {
			t.Fatalf("retry %s: %d %q\nwant the first answer %s", what, r.status, r.body, first.body)
		}
		if got := rows(); got != n {
			t.Fatalf("retry %s: %d journal rows, want %d", what, got, n)
		}
	}
	retry("unchanged")
	auto := campaignDoc("late", "active", `{"kind":"amount_off","amount":1000}`, "")
	auto["trigger"] = "auto"
	e.wantJSON(e.do("POST", "/v1/tenants/acme/campaigns", mk, auto), 201, nil)
	retry("after a new automatic promotion (another discount, other points)")
	e.wantJSON(e.do("POST", "/v1/tenants/acme/campaigns/summer/stop", mk, nil), 200, nil)
	retry("after the code's campaign stopped")
	other := map[string]any{"store": web, "order": order(50_00), "customer": "c1", "redeemables": []any{map[string]any{"code": "MANY"}}}
	e.wantErr(e.do("POST", "/v1/tenants/acme/redeem", sup, other, "Idempotency-Key", "k1"), 422, protocol.CodeIdempotencyReuse, "")
}

// TestIdempotencyRetryAfterPrune checks that an online redeem retried
// after the retention job deleted its idempotency record is not recorded
// twice: the ledger finds its transaction id (the Idempotency-Key).
func TestIdempotencyRetryAfterPrune(t *testing.T) {
	e := newEnv(t)
	mk, sup := e.keys[catalog.RoleMarketer], e.keys[catalog.RoleSupport]
	e.wantJSON(e.do("POST", "/v1/tenants/acme/campaigns", mk, campaignDoc("summer", "active", percent10, "")), 201, nil)
	e.wantJSON(e.do("POST", "/v1/tenants/acme/campaigns/summer/codes/import", mk, map[string]any{"codes": []string{"MANY"}, "uses": -1}), 201, nil)
	e.wantJSON(e.do("POST", "/v1/tenants/acme/customers", sup, map[string]any{"id": "c1"}), 201, nil)
	body := map[string]any{"store": web, "order": order(100_00), "customer": "c1", "redeemables": []any{map[string]any{"code": "MANY"}}}
	first := e.do("POST", "/v1/tenants/acme/redeem", sup, body, "Idempotency-Key", "k1")
	if first.status != 200 {
		t.Fatalf("first: %d %s", first.status, first.body)
	}
	rows := func() int { return journalRows(t, e, "k1") }
	n := rows()
	if n == 0 {
		t.Fatal("the first redeem recorded nothing")
	}
	pruned, err := e.cat.PruneIdempotency(context.Background(), time.Now().Add(time.Hour), 1000)
	if err != nil || pruned == 0 {
		t.Fatalf("prune: %d, %v", pruned, err)
	}
	r := e.do("POST", "/v1/tenants/acme/redeem", sup, body, "Idempotency-Key", "k1")
	if r.status != 200 || r.header.Get("Idempotent-Replayed") != "" {
		t.Fatalf("retry after the prune: %d %s", r.status, r.body)
	}
	if got := rows(); got != n {
		t.Fatalf("retry after the prune: %d journal rows, want %d\nfirst %s\nretry %s", got, n, first.body, r.body)
	}
}

// journalRows is how many journal rows carry transaction id txn.
func journalRows(t *testing.T, e *env, txn string) int {
	t.Helper()
	var n int
	if err := e.cat.DB().QueryRow(`SELECT COUNT(*) FROM ledger_journal WHERE txn_id = ?`, txn).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}
