package api_test

import (
	"strings"
	"testing"

	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/store/catalog"
)

// POST /v1/agent/authorize takes what a till sends and nothing else: a
// missing or foreign key, a body that is not JSON, a hold without the
// till's txn_id, an order the validator refuses, too many redeemables each
// get their reason code, and none of them holds anything: a second till's
// view of the single-use code is unchanged, and the ledger verifies.
func TestAuthorizeBadInput(t *testing.T) {
	e := newEnv(t)
	mk := e.keys[catalog.RoleMarketer]
	e.wantJSON(e.do("POST", "/v1/tenants/acme/campaigns", mk, campaignDoc("once", "active", percent10, "")), 201, nil)
	e.wantJSON(e.do("POST", "/v1/tenants/acme/campaigns/once/codes/import", mk, map[string]any{"codes": []string{"ONCE-1"}, "uses": 1}), 201, nil)
	order := map[string]any{"id": "o-1", "currency": "EUR", "lines": []map[string]any{{"sku": "tee", "quantity": 1, "unit_price": 20_00}}}
	good := map[string]any{"txn_id": "t-1", "hold": true, "order": order, "redeemables": []map[string]any{{"code": "ONCE-1"}}}

	e.wantErr(e.do("POST", "/v1/agent/authorize", "", good), 401, protocol.CodeUnauthenticated, "")
	e.wantErr(e.do("POST", "/v1/agent/authorize", e.keys[catalog.RoleAdmin], good), 403, protocol.CodeForbidden, "")
	e.wantErr(e.do("POST", "/v1/agent/authorize", e.agent, []byte(`{"txn_id":`)), 400, protocol.CodeInvalidInput, "")
	noTxn := map[string]any{"hold": true, "order": order, "redeemables": good["redeemables"]}
	e.wantErr(e.do("POST", "/v1/agent/authorize", e.agent, noTxn), 400, protocol.CodeInvalidInput, "txn_id")
	badOrder := map[string]any{"txn_id": "t-2", "hold": true, "redeemables": good["redeemables"],
		"order": map[string]any{"id": "o-2", "currency": "EUR", "lines": []map[string]any{{"sku": "tee", "quantity": -3, "unit_price": 20_00}}}}
	if r := e.do("POST", "/v1/agent/authorize", e.agent, badOrder); r.status != 400 || !strings.Contains(string(r.body), string(protocol.CodeInvalidInput)) {
		t.Fatalf("a negative quantity: %d %s, want 400 invalid_input", r.status, r.body)
	}
	many := make([]map[string]any, 200)
	for i := range many {
		many[i] = map[string]any{"code": "ONCE-1"}
	}
	if r := e.do("POST", "/v1/agent/authorize", e.agent, map[string]any{"txn_id": "t-3", "hold": true, "order": order, "redeemables": many}); r.status < 400 || r.status >= 500 {
		t.Fatalf("200 redeemables: %d %s, want a 4xx refusal", r.status, r.body)
	}

	// None of the refused requests held the code: the web shop may still
	// redeem it, once.
	web := map[string]any{"store": map[string]any{"id": "web", "time_zone": "Europe/Berlin"}, "order": order, "redeemables": []map[string]any{{"code": "ONCE-1"}}}
	var out struct {
		Redemptions []protocol.Redemption `json:"redemptions"`
	}
	e.wantJSON(e.do("POST", "/v1/tenants/acme/redeem", e.keys[catalog.RoleAdmin], web, "Idempotency-Key", "web-1"), 200, &out)
	if len(out.Redemptions) != 1 {
		t.Fatalf("the web shop's redeem recorded %d redemptions, want 1: the refused authorisations held the code", len(out.Redemptions))
	}
	rep, err := e.led.Verify(t.Context())
	if err != nil || !rep.OK() {
		t.Fatalf("verify: %+v %v", rep, err)
	}
}
