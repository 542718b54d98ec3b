package chaos_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/punchcard/punchcard/agent"
	"github.com/punchcard/punchcard/cmd/punchcard/internal/chaos"
	"github.com/punchcard/punchcard/cmd/punchcard/internal/cluster"
	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/protocol/rules"
)

// TestTierUpgradeReachesTill: issue 12's "a tier upgrade reaches the
// tills", with real processes (bin/hub, bin/agent). A customer's purchase
// online at the hub earns the points that qualify for gold; the upgrade is
// a catalog change announced to the till, whose next snapshot carries the
// customer's tier; the till, deciding from its snapshot alone (it never
// asks the hub online first here), then applies a gold-only automatic
// campaign to the customer, whom the POS presents by ID only.
func TestTierUpgradeReachesTill(t *testing.T) {
	e := chaos.SetupWith(t, 1, 0, cluster.Options{AgentArgs: []string{"-online-timeout=-1ns"}})
	ctx := context.Background()
	till := e.Agents[0]
	tp := "/v1/tenants/" + string(chaos.Tenant)
	if err := e.Admin.CreateCustomer(ctx, chaos.Tenant, cluster.Customer{ID: "alice"}); err != nil {
		t.Fatal(err)
	}
	prog := json.RawMessage(`{"tiers":[{"name":"silver","min":100},{"name":"gold","min":300}],"measure":"points",
		"window":{"kind":"rolling","days":365},"grace_days":30,"time_zone":"Europe/Berlin"}`)
	if err := e.Admin.C.Do(ctx, http.MethodPut, tp+"/tier-program", prog, nil); err != nil {
		t.Fatal(err)
	}
	for _, doc := range []string{
		`{"schema":1,"id":"club","tenant":"chaos-brand","status":"active","trigger":"auto","currency":"EUR",
			"reward":{"kind":"points","points":{"earn":[{"id":"spend","on":"spend","per_amount":100,"milli_points":1000}]}}}`,
		`{"schema":1,"id":"gold-day","tenant":"chaos-brand","status":"active","trigger":"auto","currency":"EUR",
			"eligibility":{"tiers":["gold"]},"reward":{"kind":"amount_off","amount":500}}`,
	} {
		var c rules.Campaign
		if err := json.Unmarshal([]byte(doc), &c); err != nil {
			t.Fatal(err)
		}
		if _, err := e.Admin.CreateCampaign(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	// goldOff is the gold-only discount the till gives the customer.
	goldOff := func(cu protocol.Customer) (int64, error) {
		q, err := till.POS.Validate(ctx, agent.Basket{
			Order:    protocol.Order{ID: "o", Currency: chaos.Currency, Lines: []protocol.Line{{SKU: "tea", Quantity: 1, UnitPrice: 20_00}}},
			Customer: &cu,
		})
		if err != nil {
			return 0, err
		}
		for _, r := range q.Decision.Results {
			if r.Campaign == "gold-day" && r.Applied {
				return r.Discount, nil
			}
		}
		return 0, nil
	}
	alice := protocol.Customer{ID: "alice"}
	tv, err := e.Admin.GetTenant(ctx, chaos.Tenant)
	if err != nil {
		t.Fatal(err)
	}
	if err := till.WaitSynced(ctx, tv.Version, time.Minute); err != nil {
		t.Fatal(err)
	}
	// The till has the campaign (a POS presenting a gold customer the
	// snapshot does not list gets it) and alice is not gold yet.
	if off, err := goldOff(protocol.Customer{ID: "bob", Tier: "gold"}); err != nil || off != 5_00 {
		t.Fatalf("a gold customer as the POS presents them: discount %d, %v", off, err)
	}
	if off, err := goldOff(alice); err != nil || off != 0 {
		t.Fatalf("before the upgrade: gold discount %d, %v; want none", off, err)
	}
	var out cluster.OnlineResponse
	if err := e.Admin.C.DoHeader(ctx, http.MethodPost, tp+"/earn", http.Header{"Idempotency-Key": {"tier-earn-1"}}, cluster.OnlineRequest{
		Store:    cluster.OnlineStore{ID: "web", TimeZone: "Europe/Berlin"},
		Order:    protocol.Order{ID: "web-1", Currency: chaos.Currency, Lines: []protocol.Line{{SKU: "espresso-machine", Quantity: 1, UnitPrice: 400_00}}},
		Customer: "alice",
	}, &out); err != nil {
		t.Fatal(err)
	}
	h, err := e.Admin.Customer(ctx, chaos.Tenant, "alice")
	if err != nil || h.Customer.Tier != "gold" {
		t.Fatalf("after 400 points: tier %q (%v), want gold at once", h.Customer.Tier, err)
	}
	waitFor(t, time.Minute, "the till applies the gold-only campaign", func() (bool, string) {
		off, err := goldOff(alice)
		return err == nil && off == 5_00, fmt.Sprint(off, err)
	})
}
