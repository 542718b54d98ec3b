package api_test

import (
	"testing"
	"time"

	"github.com/punchcard/punchcard/hub/manage"
	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/store/catalog"
	"github.com/punchcard/punchcard/store/ledger"
)

var _ manage.LotsLedger = (*ledger.Ledger)(nil)

// TestPointsLotsHistory: the customer history lists the lots and sums
// what expires when (issue 12: "the customer sees which points expire
// when").
func TestPointsLotsHistory(t *testing.T) {
	e := newEnv(t)
	mk, sup := e.keys[catalog.RoleMarketer], e.keys[catalog.RoleSupport]
	doc := campaignDoc("club", "active", clubExpiring, "")
	doc["trigger"] = "auto"
	e.wantJSON(e.do("POST", "/v1/tenants/acme/campaigns", mk, doc), 201, nil)
	e.wantJSON(e.do("POST", "/v1/tenants/acme/customers", sup, map[string]any{"id": "c1"}), 201, nil)
	e.wantJSON(e.do("POST", "/v1/tenants/acme/earn", sup, map[string]any{"store": web, "order": order(100_00), "customer": "c1"}, "Idempotency-Key", "e1"), 200, nil)
	e.clk.Add(time.Hour) // the same day: the same expiry
	e.wantJSON(e.do("POST", "/v1/tenants/acme/earn", sup, map[string]any{"store": web, "order": order(20_00), "customer": "c1"}, "Idempotency-Key", "e2"), 200, nil)
	var h struct {
		Points   int64              `json:"points"`
		Lots     []manage.PointsLot `json:"lots"`
		Expiring []manage.Expiring  `json:"expiring"`
	}
	e.wantJSON(e.do("GET", "/v1/tenants/acme/customers/c1/history", sup, nil), 200, &h)
	// Earned 23 November 2026 in Berlin, one month: valid through 23
	// December, gone at 24 December 00:00 Berlin (23:00 UTC).
	exp := time.Date(2026, 12, 23, 23, 0, 0, 0, time.UTC)
	if h.Points != 120 || len(h.Lots) != 2 || h.Lots[0].Remaining != 100 || !h.Lots[0].ExpiresAt.Equal(exp) ||
		len(h.Expiring) != 1 || h.Expiring[0].Points != 120 || !h.Expiring[0].At.Equal(exp) {
		t.Fatalf("history: %+v", h)
	}
	if l := h.Lots[0]; l.Source.Agent != protocol.HubSender || l.Campaign != "club" || l.Amount != 100 {
		t.Fatalf("lot %+v", l)
	}
}

var _ manage.SupportLedger = (*ledger.Ledger)(nil)
