package api_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sync"
	"testing"

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
