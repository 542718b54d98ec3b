package api_test

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/punchcard/punchcard/hub/api"
	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/protocol/codes"
	"github.com/punchcard/punchcard/store/catalog"
	"github.com/punchcard/punchcard/store/ledger"
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
			{"campaign": "once", "uses": int64(4294967295)},
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
			{"campaign": "once", "uses": int64(1)},
			{"campaign": "pc", "customer": "c1", "uses": int64(2)},
			{"campaign": "pc", "uses": int64(50)},
			{"campaign": "free", "uses": int64(4294967295)},
		} {
			var tk catalog.Token
			e.wantJSON(e.do("POST", "/v1/tenants/acme/tokens", sup, req), 201, &tk)
			if want := req["uses"].(int64); tk.Uses != want {
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

// TestCodesMasked: gift card numbers and codes of limited use are masked
// for read-only and support keys in every route that lists or shows them
// (codes, audit log, conflicts); the roles that manage codes see them.
func TestCodesMasked(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	mk := e.keys[catalog.RoleMarketer]
	e.wantJSON(e.do("POST", "/v1/tenants/acme/campaigns", mk, campaignDoc("gift", "active", `{"kind":"gift_card"}`, "")), 201, nil)
	e.wantJSON(e.do("POST", "/v1/tenants/acme/campaigns", mk, campaignDoc("once", "active", percent10, "")), 201, nil)
	var g struct {
		Codes []string `json:"codes"`
	}
	e.wantJSON(e.do("POST", "/v1/tenants/acme/campaigns/gift/codes/generate", mk, map[string]any{"count": 3, "pattern": "GIFT-####-####-####", "balance": 2500}), 201, &g)
	e.wantJSON(e.do("POST", "/v1/tenants/acme/campaigns/once/codes/import", mk, map[string]any{"codes": []string{"ONCE-SECRET-7788"}}), 201, nil)
	e.wantJSON(e.do("POST", "/v1/tenants/acme/campaigns/once/codes/import", mk, map[string]any{"codes": []string{"POSTER-CODE"}, "uses": -1}), 201, nil)
	e.wantJSON(e.do("POST", "/v1/tenants/acme/codes/"+g.Codes[2]+"/revoke", mk, nil), 200, nil)
	// A code used at two tills: a conflict naming it.
	for i, agent := range []protocol.AgentID{"till-1", "till-2"} {
		r := protocol.Redemption{ID: protocol.RedemptionID{Agent: agent, Seq: 1}, Kind: protocol.KindRedeem, Tenant: "acme", Store: "berlin-1",
			TxnID: fmt.Sprintf("t%d", i), Campaign: "once", Code: "ONCESECRET7788", Currency: "EUR", Discount: 100, OrderTot: 1000,
			HLC: ledger.HLCFromTime(e.clk.Now()), Offline: true}
		if _, _, err := e.led.ApplyBatch(ctx, "acme", agent, []protocol.Redemption{r}); err != nil {
			t.Fatal(err)
		}
	}
	secrets := []string{"ONCESECRET7788", "ONCE-SECRET-7788"}
	for _, c := range g.Codes {
		secrets = append(secrets, c, codes.Normalize(c))
	}
	paths := []string{
		"/v1/tenants/acme/campaigns/gift/codes", "/v1/tenants/acme/campaigns/once/codes", "/v1/tenants/acme/codes/" + g.Codes[0],
		"/v1/tenants/acme/codes/once-secret-7788", "/v1/tenants/acme/audit?limit=1000", "/v1/tenants/acme/conflicts",
	}
	for _, role := range []catalog.Role{catalog.RoleReadOnly, catalog.RoleSupport} {
		for _, p := range paths {
			r := e.do("GET", p, e.keys[role], nil)
			if r.status != 200 {
				t.Fatalf("%s %s: %d %s", role, p, r.status, r.body)
			}
			for _, s := range secrets {
				if bytes.Contains(r.body, []byte(s)) {
					t.Errorf("%s key reads %q in %s", role, s, p)
				}
			}
		}
		var l struct {
			Items []catalog.Code `json:"items"`
		}
		e.wantJSON(e.do("GET", "/v1/tenants/acme/campaigns/once/codes", e.keys[role], nil), 200, &l)
		if len(l.Items) != 2 || !l.Items[0].Masked || l.Items[0].Key != "***********788" || l.Items[1].Key != "POSTERCODE" || l.Items[1].Masked {
			t.Fatalf("%s: %+v", role, l.Items)
		}
	}
	for _, role := range []catalog.Role{catalog.RoleMarketer, catalog.RoleAdmin} {
		for _, p := range paths {
			r := e.do("GET", p, e.keys[role], nil)
			seen := false
			for _, s := range secrets {
				seen = seen || bytes.Contains(r.body, []byte(s))
			}
			if r.status != 200 || !seen {
				t.Fatalf("%s %s: %d, no code in full: %s", role, p, r.status, r.body)
			}
		}
		r := e.do("GET", "/v1/tenants/acme/campaigns/gift/codes", e.keys[role], nil)
		if !bytes.Contains(r.body, []byte(codes.Normalize(g.Codes[1]))) {
			t.Fatalf("%s does not see the gift card numbers: %s", role, r.body)
		}
	}
}

// TestCustomerExport: one route gives everything kept about a customer:
// profile, tokens, points and ledger entries, and the audit entries about
// them and their tokens; token texts only for keys that may read them.
func TestCustomerExport(t *testing.T) {
	e := newEnv(t)
	mk, sup := e.keys[catalog.RoleMarketer], e.keys[catalog.RoleSupport]
	e.wantJSON(e.do("POST", "/v1/tenants/acme/campaigns", mk, campaignDoc("summer", "active", percent10, "")), 201, nil)
	e.wantJSON(e.do("POST", "/v1/tenants/acme/campaigns/summer/codes/import", mk, map[string]any{"codes": []string{"ONCE-1", "ONCE-2"}}), 201, nil)
	e.wantJSON(e.do("POST", "/v1/tenants/acme/customers", sup, map[string]any{"id": "c1", "email": "ann@example.com", "name": "Ann", "tier": "gold"}), 201, nil)
	e.wantJSON(e.do("POST", "/v1/tenants/acme/customers", sup, map[string]any{"id": "c2", "email": "bob@example.com"}), 201, nil)
	e.wantJSON(e.do("PUT", "/v1/tenants/acme/customers/c1", sup, map[string]any{"email": "ann@example.org", "name": "Ann", "tier": "gold"}), 200, nil)
	var tk catalog.Token
	e.wantJSON(e.do("POST", "/v1/tenants/acme/tokens", sup, map[string]any{"campaign": "summer", "customer": "c1"}), 201, &tk)
	e.wantJSON(e.do("POST", "/v1/tenants/acme/tokens", sup, map[string]any{"campaign": "summer", "customer": "c2"}), 201, nil)
	for i, cu := range []string{"c1", "c2"} {
		body := map[string]any{"store": web, "order": order(50_00), "customer": cu,
			"redeemables": []any{map[string]any{"code": fmt.Sprintf("ONCE-%d", i+1)}}}
		e.wantJSON(e.do("POST", "/v1/tenants/acme/redeem", sup, body, "Idempotency-Key", "k"+cu), 200, nil)
	}
	type export struct {
		Format   string           `json:"format"`
		Customer catalog.Customer `json:"customer"`
		Points   *int64           `json:"points"`
		Tokens   []catalog.Token  `json:"tokens"`
		Ledger   []struct {
			Entry    string              `json:"entry"`
			Code     protocol.CodeID     `json:"code"`
			Discount int64               `json:"discount"`
			Campaign protocol.CampaignID `json:"campaign"`
		} `json:"ledger"`
		Audit []catalog.AuditEntry `json:"audit"`
	}
	for _, role := range []catalog.Role{catalog.RoleSupport, catalog.RoleReadOnly} {
		var x export
		r := e.do("GET", "/v1/tenants/acme/customers/c1/export", e.keys[role], nil)
		e.wantJSON(r, 200, &x)
		if x.Format != api.ExportFormat || x.Customer.Email != "ann@example.org" || x.Points == nil || r.header.Get("Cache-Control") != "private, no-store" {
			t.Fatalf("%s: %s", role, r.body)
		}
		if len(x.Tokens) != 1 || x.Tokens[0].Serial != tk.Serial || (x.Tokens[0].Text != "") != (role == catalog.RoleSupport) {
			t.Fatalf("%s tokens: %+v", role, x.Tokens)
		}
		if len(x.Ledger) != 1 || x.Ledger[0].Entry != "redeem" || x.Ledger[0].Code != "ONCE1" || x.Ledger[0].Discount != 5_00 {
			t.Fatalf("%s ledger: %+v", role, x.Ledger)
		}
		var actions []string
		for _, a := range x.Audit {
			actions = append(actions, a.Action+" "+a.Target)
		}
		if want := []string{"customer.create customer/c1", "customer.update customer/c1", "token.issue token/" + string(tk.Serial)}; !slices.Equal(actions, want) {
			t.Fatalf("%s audit %v, want %v", role, actions, want)
		}
		if bytes.Contains(r.body, []byte("bob@example.com")) || bytes.Contains(r.body, []byte(`"c2"`)) {
			t.Fatalf("another customer's data in the export: %s", r.body)
		}
	}
	e.wantErr(e.do("GET", "/v1/tenants/acme/customers/nobody/export", sup, nil), 404, protocol.CodeNotFound, "")
	e.wantErr(e.do("GET", "/v1/tenants/acme/customers/c1/export", e.other, nil), 403, protocol.CodeForbidden, "")
	// After the erase the export shows what is left: no personal data.
	e.wantJSON(e.do("DELETE", "/v1/tenants/acme/customers/c1", sup, nil), 200, nil)
	r := e.do("GET", "/v1/tenants/acme/customers/c1/export", sup, nil)
	for _, s := range []string{"ann@example", "Ann", "gold", tk.Text} {
		if bytes.Contains(r.body, []byte(s)) {
			t.Fatalf("export after erase holds %q: %s", s, r.body)
		}
	}
}
