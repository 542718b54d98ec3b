package api_test

import (
	"context"
	"net/url"
	"testing"
	"time"

	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/store/catalog"
	"github.com/punchcard/punchcard/store/ledger"
)

// historyEntry is an entry of the history's activity as a client reads
// it (pledger.HistoryEntry; declared here so that this test also runs,
// and fails, on the code before the support tools).
type historyEntry struct {
	ID           int64                  `json:"id"`
	Entry        string                 `json:"entry"`
	Channel      string                 `json:"channel"`
	Agent        protocol.AgentID       `json:"agent"`
	Store        protocol.StoreID       `json:"store"`
	OrderID      string                 `json:"order_id"`
	Code         protocol.CodeID        `json:"code"`
	Discount     int64                  `json:"discount"`
	Points       int64                  `json:"points"`
	RolledBackBy *protocol.RedemptionID `json:"rolled_back_by"`
	Adjustment   *struct {
		Reason    string `json:"reason"`
		Reference string `json:"reference"`
		By        string `json:"by"`
	} `json:"adjustment"`
}

type adjustmentRecord struct {
	Points     int64                 `json:"points"`
	Balance    int64                 `json:"balance"`
	Lot        int64                 `json:"lot"`
	By         string                `json:"by"`
	Redemption protocol.RedemptionID `json:"redemption"`
}

type supportHistory struct {
	Points    int64          `json:"points"`
	Activity  []historyEntry `json:"activity"`
	Conflicts []struct {
		ID       int64  `json:"id"`
		Kind     string `json:"kind"`
		Customer string `json:"customer"`
	} `json:"conflicts"`
	Next string `json:"next_cursor"`
}

// TestSupportHistoryAndAdjustments is the defect of issue 12: "The
// customer history has no redemptions; support cannot add lost points
// back". Through the HTTP API: the history lists the customer's online and
// till redemptions, earns, rollbacks and conflicts, newest first, a page
// at a time; support adds lost points back and takes points off with a
// reason, audited as points_adjusted, once per Idempotency-Key; Verify
// stays clean.
func TestSupportHistoryAndAdjustments(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	mk, sup := e.keys[catalog.RoleMarketer], e.keys[catalog.RoleSupport]
	doc := campaignDoc("club", "active", clubExpiring, "")
	doc["trigger"] = "auto"
	e.wantJSON(e.do("POST", "/v1/tenants/acme/campaigns", mk, doc), 201, nil)
	e.wantJSON(e.do("POST", "/v1/tenants/acme/campaigns", mk, campaignDoc("once", "active", percent10, `{"per_customer":1}`)), 201, nil)
	e.wantJSON(e.do("POST", "/v1/tenants/acme/campaigns/once/codes/import", mk, map[string]any{"codes": []string{"WELCOME-1"}}), 201, nil)
	e.wantJSON(e.do("POST", "/v1/tenants/acme/customers", sup, map[string]any{"id": "c1"}), 201, nil)
	// Online: a redeem of the code with the sale's points.
	e.wantJSON(e.do("POST", "/v1/tenants/acme/redeem", sup, map[string]any{"store": web, "order": order(100_00), "customer": "c1",
		"redeemables": []any{map[string]any{"code": "WELCOME-1"}}}, "Idempotency-Key", "r1"), 200, nil)
	// At two tills: the same campaign once per customer, twice (a
	// conflict about c1), and one of them rolled back.
	for i, agent := range []protocol.AgentID{"till-1", "till-2"} {
		r := protocol.Redemption{ID: protocol.RedemptionID{Agent: agent, Seq: 1}, Kind: protocol.KindRedeem, Tenant: "acme", Store: "berlin-1",
			TxnID: "t" + string(rune('1'+i)), Campaign: "once", Customer: "c1", OrderID: "pos-" + string(agent), Currency: "EUR", Discount: 100, OrderTot: 1000,
			HLC: ledger.HLCFromTime(e.clk.Now()), Offline: true}
		if _, _, err := e.led.ApplyBatch(ctx, "acme", agent, []protocol.Redemption{r}); err != nil {
			t.Fatal(err)
		}
	}
	rb := protocol.Redemption{ID: protocol.RedemptionID{Agent: "till-2", Seq: 2}, Kind: protocol.KindRollback, Tenant: "acme", Store: "berlin-1",
		TxnID: "t2", Ref: &protocol.RedemptionID{Agent: "till-2", Seq: 1}, HLC: ledger.HLCFromTime(e.clk.Now())}
	if _, _, err := e.led.ApplyBatch(ctx, "acme", "till-2", []protocol.Redemption{rb}); err != nil {
		t.Fatal(err)
	}

	var h supportHistory
	e.wantJSON(e.do("GET", "/v1/tenants/acme/customers/c1/history", sup, nil), 200, &h)
	kinds := map[string]int{}
	var till, online bool
	for _, a := range h.Activity {
		kinds[a.Entry]++
		if a.Entry == "redeem" && a.Channel == "till" && a.Agent == "till-2" && a.Store == "berlin-1" && a.OrderID == "pos-till-2" {
			till = a.RolledBackBy != nil && *a.RolledBackBy == rb.ID
		}
		if a.Entry == "redeem" && a.Channel == "online" && a.Code != "" && a.Code != "WELCOME1" && a.Discount > 0 && a.OrderID == "o1" { // masked for support
			online = true
		}
	}
	if !till || !online || kinds["redeem"] != 3 || kinds["rollback"] != 1 || len(h.Conflicts) == 0 || h.Conflicts[0].Customer != "c1" {
		t.Fatalf("history: %+v", h)
	}
	for i := 1; i < len(h.Activity); i++ {
		if h.Activity[i].ID >= h.Activity[i-1].ID {
			t.Fatalf("history not newest first: %+v", h.Activity)
		}
	}
	// Paginated: one at a time, each entry once, then the end.
	n, cursor := 0, ""
	for range 20 {
		var p supportHistory
		e.wantJSON(e.do("GET", "/v1/tenants/acme/customers/c1/history?limit=1&cursor="+url.QueryEscape(cursor), sup, nil), 200, &p)
		n += len(p.Activity)
		if cursor = p.Next; cursor == "" {
			break
		}
	}
	if n != len(h.Activity) || cursor != "" {
		t.Fatalf("paged %d entries (cursor %q), one page %d", n, cursor, len(h.Activity))
	}

	// Lost points back: +50, once per key.
	before := h.Points
	adj := map[string]any{"points": 50, "reason": "lost_points", "note": "receipt 4711 never synced", "reference": "TICKET-9"}
	var rec adjustmentRecord
	e.wantJSON(e.do("POST", "/v1/tenants/acme/customers/c1/points-adjustments", sup, adj, "Idempotency-Key", "a1"), 201, &rec)
	if rec.Points != 50 || rec.Balance != before+50 || rec.Lot == 0 || rec.By == "" || rec.Redemption.Agent != protocol.HubSender {
		t.Fatalf("adjustment: %+v", rec)
	}
	r := e.do("POST", "/v1/tenants/acme/customers/c1/points-adjustments", sup, adj, "Idempotency-Key", "a1")
	if r.status != 201 || r.header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("replay: %d %s", r.status, r.body)
	}
	adj["points"] = 51
	e.wantErr(e.do("POST", "/v1/tenants/acme/customers/c1/points-adjustments", sup, adj, "Idempotency-Key", "a1"), 422, protocol.CodeIdempotencyReuse, "")
	// Taken off: -20; beyond the balance refused.
	e.wantJSON(e.do("POST", "/v1/tenants/acme/customers/c1/points-adjustments", sup, map[string]any{"points": -20, "reason": "correction"}, "Idempotency-Key", "a2"), 201, nil)
	e.wantErr(e.do("POST", "/v1/tenants/acme/customers/c1/points-adjustments", sup, map[string]any{"points": -(before + 31), "reason": "correction"}, "Idempotency-Key", "a3"),
		422, protocol.CodeInsufficientPts, "")
	e.wantJSON(e.do("GET", "/v1/tenants/acme/customers/c1/history", sup, nil), 200, &h)
	if h.Points != before+30 {
		t.Fatalf("points %d, want %d", h.Points, before+30)
	}
	var adjusted []historyEntry
	for _, a := range h.Activity {
		if a.Entry == "points_adjusted" {
			adjusted = append(adjusted, a)
		}
	}
	if len(adjusted) != 2 || adjusted[0].Points != -20 || adjusted[1].Points != 50 || adjusted[1].Adjustment == nil ||
		adjusted[1].Adjustment.Reason != "lost_points" || adjusted[1].Adjustment.Reference != "TICKET-9" || adjusted[1].Adjustment.By != rec.By {
		t.Fatalf("adjustments in the history: %+v", adjusted)
	}
	if rep, err := e.led.Verify(ctx); err != nil || !rep.OK() {
		t.Fatalf("verify: %v %v", err, rep.Diffs)
	}
}

// TestSupportBadInput: each bad request is refused with a stable reason
// code and the field at fault, and records nothing.
func TestSupportBadInput(t *testing.T) {
	e := newEnv(t)
	sup, ro := e.keys[catalog.RoleSupport], e.keys[catalog.RoleReadOnly]
	e.wantJSON(e.do("POST", "/v1/tenants/acme/customers", sup, map[string]any{"id": "c1"}), 201, nil)
	const p = "/v1/tenants/acme/customers/c1/points-adjustments"
	future := e.clk.Now().Add(time.Hour).Format(time.RFC3339)
	past := e.clk.Now().Add(-time.Hour).Format(time.RFC3339)
	for _, c := range []struct {
		name   string
		path   string
		key    string
		body   any
		idem   string
		status int
		code   protocol.Code
		field  string
	}{
		{"ErrNoPoints", p, sup, map[string]any{"reason": "goodwill"}, "k", 400, protocol.CodeInvalidInput, "points"},
		{"ErrTooMany", p, sup, map[string]any{"points": 20_000_000, "reason": "goodwill"}, "k", 400, protocol.CodeInvalidInput, "points"},
		{"ErrNoReason", p, sup, map[string]any{"points": 5}, "k", 400, protocol.CodeInvalidInput, "reason"},
		{"ErrUnknownReason", p, sup, map[string]any{"points": 5, "reason": "because"}, "k", 400, protocol.CodeInvalidInput, "reason"},
		{"ErrOtherNoNote", p, sup, map[string]any{"points": 5, "reason": "other"}, "k", 400, protocol.CodeInvalidInput, "note"},
		{"ErrExpiryPast", p, sup, map[string]any{"points": 5, "reason": "goodwill", "expires_at": past}, "k", 400, protocol.CodeInvalidInput, "expires_at"},
		{"ErrExpiryNegative", p, sup, map[string]any{"points": -5, "reason": "goodwill", "expires_at": future}, "k", 400, protocol.CodeInvalidInput, "expires_at"},
		{"ErrUnknownField", p, sup, map[string]any{"points": 5, "reason": "goodwill", "who": "me"}, "k", 400, protocol.CodeInvalidInput, "who"},
		{"ErrNoIdempotencyKey", p, sup, map[string]any{"points": 5, "reason": "goodwill"}, "", 400, protocol.CodeInvalidInput, "Idempotency-Key"},
		{"ErrUnknownCustomer", "/v1/tenants/acme/customers/c9/points-adjustments", sup, map[string]any{"points": 5, "reason": "goodwill"}, "k", 404, protocol.CodeNotFound, ""},
		{"ErrReadOnly", p, ro, map[string]any{"points": 5, "reason": "goodwill"}, "k", 403, protocol.CodeForbidden, ""},
		{"ErrInsufficient", p, sup, map[string]any{"points": -1, "reason": "fraud"}, "k", 422, protocol.CodeInsufficientPts, ""},
		{"ErrCursor", "/v1/tenants/acme/customers/c1/history?cursor=x", sup, nil, "", 400, protocol.CodeInvalidInput, "cursor"},
		{"ErrCursorTierZero", "/v1/tenants/acme/customers/c1/history?cursor=5.0.0", sup, nil, "", 400, protocol.CodeInvalidInput, "cursor"},
		{"ErrCursorFourParts", "/v1/tenants/acme/customers/c1/history?cursor=5.0.1.2", sup, nil, "", 400, protocol.CodeInvalidInput, "cursor"},
		{"ErrLimit", "/v1/tenants/acme/customers/c1/history?limit=0", sup, nil, "", 400, protocol.CodeInvalidInput, "limit"},
		{"ErrLimitHigh", "/v1/tenants/acme/customers/c1/history?limit=201", sup, nil, "", 400, protocol.CodeInvalidInput, "limit"},
	} {
		t.Log(c.name)
		method, hdr := "POST", []string{}
		if c.body == nil {
			method = "GET"
		}
		if c.idem != "" {
			hdr = append(hdr, "Idempotency-Key", c.idem)
		}
		e.wantErr(e.do(method, c.path, c.key, c.body, hdr...), c.status, c.code, c.field)
	}
	if p, err := e.led.Points(context.Background(), "acme", "c1"); err != nil || p != 0 {
		t.Fatalf("points %d %v", p, err)
	}
}
