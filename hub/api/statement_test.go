package api_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"image/png"
	"testing"
	"time"

	"github.com/punchcard/punchcard/hub/api"
	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/protocol/token"
	"github.com/punchcard/punchcard/store/catalog"
)

// TestPointsStatementRoute: POST …/customers/{c}/points-statement signs
// the customer's balance, capped at the hub's maximum and at the points
// asked, with the tenant key the tills verify; roles, bounds and reason
// codes.
func TestPointsStatementRoute(t *testing.T) {
	e := newEnv(t, func(c *api.Config) { c.StatementMax = 150 })
	mk, sup := e.keys[catalog.RoleMarketer], e.keys[catalog.RoleSupport]
	doc := campaignDoc("club", "active", clubExpiring, "")
	doc["trigger"] = "auto"
	e.wantJSON(e.do("POST", "/v1/tenants/acme/campaigns", mk, doc), 201, nil)
	for _, c := range []string{"c1", "c0"} {
		e.wantJSON(e.do("POST", "/v1/tenants/acme/customers", sup, map[string]any{"id": c}), 201, nil)
	}
	e.wantJSON(e.do("POST", "/v1/tenants/acme/earn", sup, map[string]any{"store": web, "order": order(100_00), "customer": "c1"}, "Idempotency-Key", "e1"), 200, nil)
	const path = "/v1/tenants/acme/customers/c1/points-statement"

	var st struct {
		Statement string    `json:"statement"`
		Serial    string    `json:"serial"`
		Points    int64     `json:"points"`
		Balance   int64     `json:"balance"`
		Expires   time.Time `json:"expires"`
		QR        string    `json:"qr_png"`
	}
	e.wantJSON(e.do("POST", path, sup, nil), 201, &st)
	if st.Points != 100 || st.Balance != 100 || !st.Expires.Equal(e.clk.Now().Add(15*time.Minute).Truncate(time.Second)) {
		t.Fatalf("statement %+v, want all 100 points for 15 minutes", st)
	}
	if b, err := base64.StdEncoding.DecodeString(st.QR); err != nil {
		t.Fatal(err)
	} else if _, err := png.Decode(bytes.NewReader(b)); err != nil {
		t.Fatalf("qr_png: %v", err)
	}
	keys, err := e.cat.KeySet(context.Background(), "acme")
	if err != nil {
		t.Fatal(err)
	}
	s, err := token.VerifyStatement(keys, "acme", "c1", st.Statement, e.clk.Now())
	if err != nil || s.Points != 100 || string(s.Serial) != st.Serial {
		t.Fatalf("verify: %+v %v", s, err)
	}
	e.wantJSON(e.do("POST", path, sup, map[string]any{"points": 40, "ttl_seconds": 60}), 201, &st)
	if st.Points != 40 {
		t.Fatalf("asked 40: %+v", st)
	}
	r := e.do("POST", path, sup, nil, "Accept", "image/png")
	if r.status != 201 || r.header.Get("Content-Type") != "image/png" || r.header.Get("X-Statement-Serial") == "" {
		t.Fatalf("png: %d %v", r.status, r.header)
	}

	for name, c := range map[string]struct {
		path, key string
		body      any
		status    int
		code      protocol.Code
	}{
		"ErrReadOnly":    {path, e.keys[catalog.RoleReadOnly], nil, 403, protocol.CodeForbidden},
		"ErrMarketer":    {path, mk, nil, 403, protocol.CodeForbidden},
		"ErrNoCustomer":  {"/v1/tenants/acme/customers/nobody/points-statement", sup, nil, 404, protocol.CodeNotFound},
		"ErrNoPoints":    {"/v1/tenants/acme/customers/c0/points-statement", sup, nil, 422, protocol.CodeInsufficientPts},
		"ErrNegative":    {path, sup, map[string]any{"points": -1}, 400, protocol.CodeInvalidInput},
		"ErrTTL":         {path, sup, map[string]any{"ttl_seconds": 3601}, 400, protocol.CodeInvalidInput},
		"ErrUnknownBody": {path, sup, map[string]any{"amount": 1}, 400, protocol.CodeInvalidInput},
	} {
		t.Run(name, func(t *testing.T) {
			var pe protocol.Error
			e.wantJSON(e.do("POST", c.path, c.key, c.body), c.status, &pe)
			if pe.Code != c.code {
				t.Fatalf("code %s, want %s", pe.Code, c.code)
			}
		})
	}
}

// TestPointsStatementCapped: the statement states at most the hub's
// -points-statement-max.
func TestPointsStatementCapped(t *testing.T) {
	e := newEnv(t, func(c *api.Config) { c.StatementMax = 30 })
	mk, sup := e.keys[catalog.RoleMarketer], e.keys[catalog.RoleSupport]
	doc := campaignDoc("club", "active", clubExpiring, "")
	doc["trigger"] = "auto"
	e.wantJSON(e.do("POST", "/v1/tenants/acme/campaigns", mk, doc), 201, nil)
	e.wantJSON(e.do("POST", "/v1/tenants/acme/customers", sup, map[string]any{"id": "c1"}), 201, nil)
	e.wantJSON(e.do("POST", "/v1/tenants/acme/earn", sup, map[string]any{"store": web, "order": order(100_00), "customer": "c1"}, "Idempotency-Key", "e1"), 200, nil)
	var st struct {
		Points  int64 `json:"points"`
		Balance int64 `json:"balance"`
	}
	e.wantJSON(e.do("POST", "/v1/tenants/acme/customers/c1/points-statement", sup, nil), 201, &st)
	if st.Points != 30 || st.Balance != 100 {
		t.Fatalf("statement %+v, want 30 of 100", st)
	}
}
