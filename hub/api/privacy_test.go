package api_test

import (
	"strconv"
	"testing"
	"time"

	"github.com/punchcard/punchcard/hub/api"
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

// TestRateLimitEdge: a client that spends its budget just before a window
// boundary and again just after gets about the limit through, not twice
// (a fixed window let 19 of a limit of 10 through in 3 ms).
func TestRateLimitEdge(t *testing.T) {
	const limit = 10
	e := newEnv(t, func(c *api.Config) { c.RateLimit = limit; c.RateWindow = time.Minute })
	k := e.keys[catalog.RoleReadOnly]
	burst := func() (n int) {
		for range 2 * limit {
			if e.do("GET", "/v1/tenants/acme", k, nil).status == 200 {
				n++
			}
		}
		return n
	}
	e.wantJSON(e.do("GET", "/v1/tenants/acme", k, nil), 200, nil) // starts a window
	e.clk.Add(time.Minute - 2*time.Millisecond)
	before := burst()
	e.clk.Add(3 * time.Millisecond)
	after := burst()
	if got := before + after; got > limit+1 {
		t.Fatalf("%d + %d requests allowed within 3 ms, limit %d per minute", before, after, limit)
	}
	// The bucket refills evenly: a tenth of the window gives one request.
	e.clk.Add(time.Minute / limit)
	if got := burst(); got != 1 {
		t.Fatalf("%d requests after a tenth of the window, want 1", got)
	}
}

// TestRateLimitAnonymous: requests without a valid key are limited per
// remote address (public routes, unknown routes, wrong keys), and while an
// address has nothing left even a right key from it gets 429, so keys
// cannot be guessed faster than the limit.
func TestRateLimitAnonymous(t *testing.T) {
	e := newEnv(t, func(c *api.Config) { c.AnonRateLimit = 3; c.RateWindow = time.Minute })
	e.clk.Add(time.Hour) // the setup's requests are forgotten
	for i := 2; i >= 0; i-- {
		r := e.do("GET", "/healthz", "", nil)
		if r.status != 200 || r.header.Get("X-RateLimit-Limit") != "3" || r.header.Get("X-RateLimit-Remaining") != strconv.Itoa(i) {
			t.Fatalf("%d %v", r.status, r.header)
		}
	}
	r := e.do("GET", "/healthz", "", nil)
	e.wantErr(r, 429, protocol.CodeRateLimited, "")
	if ra, err := strconv.Atoi(r.header.Get("Retry-After")); err != nil || ra != 20 {
		t.Fatalf("Retry-After %q, want 20 (a minute / 3)", r.header.Get("Retry-After"))
	}
	e.wantErr(e.do("GET", "/openapi.yaml", "", nil), 429, protocol.CodeRateLimited, "")
	e.wantErr(e.do("GET", "/v9/nothing", "", nil), 429, protocol.CodeRateLimited, "")
	// Wrong keys: 401 while the address has budget, then 429 for any key.
	e.clk.Add(time.Minute)
	for range 3 {
		e.wantErr(e.do("GET", "/v1/tenants/acme", "wrong-key-guess", nil), 401, protocol.CodeUnauthenticated, "")
	}
	e.wantErr(e.do("GET", "/v1/tenants/acme", "wrong-key-guess", nil), 429, protocol.CodeRateLimited, "")
	e.wantErr(e.do("GET", "/v1/tenants/acme", e.keys[catalog.RoleReadOnly], nil), 429, protocol.CodeRateLimited, "")
	e.clk.Add(20 * time.Second)
	e.wantJSON(e.do("GET", "/v1/tenants/acme", e.keys[catalog.RoleReadOnly], nil), 200, nil)
}
