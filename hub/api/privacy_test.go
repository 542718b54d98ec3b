package api_test

import (
	"testing"

	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/store/catalog"
)

// TestTokenUsesCapped: a token cannot carry more uses than its campaign
// allows (per code, per customer for a customer's token, in total, one for
// a single-use gift card); the rules would otherwise take the token's uses
// in place of the campaign's limit.
func TestTokenUsesCapped(t *testing.T) {
	e := newEnv(t)
	sup, mkt := e.keys[catalog.RoleSupport], e.keys[catalog.RoleMarketer]
	e.wantJSON(e.do("POST", "/v1/tenants/acme/campaigns", mkt, campaignDoc("once", "active", percent10, `{"per_code":1}`)), 201, nil)
	e.wantJSON(e.do("POST", "/v1/tenants/acme/campaigns", mkt, campaignDoc("pc", "active", percent10, `{"per_customer":2,"max_redemptions":50}`)), 201, nil)
	e.wantJSON(e.do("POST", "/v1/tenants/acme/campaigns", mkt, campaignDoc("gift", "active", `{"kind":"gift_card"}`, "")), 201, nil)
	e.wantJSON(e.do("POST", "/v1/tenants/acme/campaigns", mkt, campaignDoc("free", "active", percent10, "")), 201, nil)
	e.wantJSON(e.do("POST", "/v1/tenants/acme/customers", sup, map[string]any{"id": "c1"}), 201, nil)
	t.Run("ErrInvalid", func(t *testing.T) {
		for _, req := range []map[string]any{
			{"campaign": "once", "uses": 4294967295},
			{"campaign": "once", "uses": 2},
			{"campaign": "pc", "customer": "c1", "uses": 3},
			{"campaign": "pc", "uses": 51},
			{"campaign": "gift", "uses": 2, "value": map[string]any{"amount": 1000, "currency": "EUR"}},
		} {
			e.wantErr(e.do("POST", "/v1/tenants/acme/tokens", sup, req), 400, protocol.CodeInvalidInput, "uses")
		}
	})
	t.Run("OK", func(t *testing.T) {
		for _, req := range []map[string]any{
			{"campaign": "once", "uses": 1},
			{"campaign": "pc", "customer": "c1", "uses": 2},
			{"campaign": "pc", "uses": 50},
			{"campaign": "free", "uses": 4294967295},
		} {
			var tk catalog.Token
			e.wantJSON(e.do("POST", "/v1/tenants/acme/tokens", sup, req), 201, &tk)
			if want := int64(req["uses"].(int)); tk.Uses != want {
				t.Fatalf("uses %d, want %d", tk.Uses, want)
			}
		}
	})
}
