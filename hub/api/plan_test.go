package api_test

import (
	"context"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/punchcard/punchcard/store"
	"github.com/punchcard/punchcard/store/catalog"
)

// TestOnlinePathQueryPlans runs every online call (validate, redeem with
// a limited code, a gift card, a customer and automatic promotions, earn,
// rollback, an idempotent replay) on a traced database and checks the plan
// of every statement they ran with EXPLAIN QUERY PLAN: each table is
// reached by an index search, none is scanned, so no request's cost grows
// with the ledger's history.
func TestOnlinePathQueryPlans(t *testing.T) {
	var mu sync.Mutex
	on := false
	seen := map[string]bool{}
	e := newEnvStore(t, store.Options{Sync: store.SyncNormal, Trace: func(q string) {
		mu.Lock()
		defer mu.Unlock()
		if on {
			seen[q] = true
		}
	}})
	mk, sup := e.keys[catalog.RoleMarketer], e.keys[catalog.RoleSupport]
	e.wantJSON(e.do("POST", "/v1/tenants/acme/campaigns", mk, campaignDoc("summer", "active", percent10, `{"max_redemptions":100,"per_customer":5}`)), 201, nil)
	e.wantJSON(e.do("POST", "/v1/tenants/acme/campaigns/summer/codes/import", mk, map[string]any{"codes": []string{"ONCE-1", "ONCE-2"}}), 201, nil)
	e.wantJSON(e.do("POST", "/v1/tenants/acme/campaigns", mk, campaignDoc("gift", "active", `{"kind":"gift_card"}`, "")), 201, nil)
	e.wantJSON(e.do("POST", "/v1/tenants/acme/campaigns/gift/codes/import", mk, map[string]any{"codes": []string{"GIFT-1"}, "balance": 30_00}), 201, nil)
	auto := campaignDoc("auto", "active", `{"kind":"amount_off","amount":100}`, `{"max_discount":1000000}`)
	auto["trigger"] = "auto"
	e.wantJSON(e.do("POST", "/v1/tenants/acme/campaigns", mk, auto), 201, nil)
	club := campaignDoc("club", "active", `{"kind":"points","points":{"earn":[{"id":"spend","on":"spend","per_amount":100,"milli_points":1000}]}}`, "")
	club["trigger"] = "auto"
	e.wantJSON(e.do("POST", "/v1/tenants/acme/campaigns", mk, club), 201, nil)
	e.wantJSON(e.do("POST", "/v1/tenants/acme/customers", sup, map[string]any{"id": "c1"}), 201, nil)

	mu.Lock()
	on = true
	mu.Unlock()
	basket := map[string]any{"store": web, "order": order(100_00), "customer": "c1",
		"redeemables": []any{map[string]any{"code": "ONCE-1"}, map[string]any{"code": "GIFT-1", "amount": 5_00}}}
	e.wantJSON(e.do("POST", "/v1/tenants/acme/validate", sup, basket), 200, nil)
	var out onlineOut
	e.wantJSON(e.do("POST", "/v1/tenants/acme/redeem", sup, basket, "Idempotency-Key", "p1"), 200, &out)
	e.wantJSON(e.do("POST", "/v1/tenants/acme/redeem", sup, basket, "Idempotency-Key", "p1"), 200, nil)
	if r := e.do("POST", "/v1/tenants/acme/redeem", sup, basket, "Idempotency-Key", "p2"); r.status != 409 {
		t.Fatalf("a used code: %d %s", r.status, r.body)
	}
	e.wantJSON(e.do("POST", "/v1/tenants/acme/earn", sup, map[string]any{"store": web, "order": order(42_00), "customer": "c1"}, "Idempotency-Key", "p3"), 200, nil)
	e.wantJSON(e.do("POST", "/v1/tenants/acme/rollback", sup, map[string]any{"redemption": out.Redemptions[0].ID}, "Idempotency-Key", "p4"), 200, nil)
	mu.Lock()
	on = false
	queries := make([]string, 0, len(seen))
	for q := range seen {
		queries = append(queries, q)
	}
	mu.Unlock()

	scan := regexp.MustCompile(`(^|\s)SCAN (\S+)`)
	checked := 0
	for _, q := range queries {
		verb := strings.ToUpper(strings.Fields(q)[0])
		switch verb {
		case "SELECT", "INSERT", "UPDATE", "DELETE", "WITH":
		default:
			continue // BEGIN, COMMIT, SAVEPOINT, RELEASE, ROLLBACK, PRAGMA
		}
		rows, err := e.cat.DB().QueryContext(context.Background(), "EXPLAIN QUERY PLAN "+q, params(q)...)
		if err != nil {
			t.Fatalf("explain %s: %v", q, err)
		}
		var plan []string
		for rows.Next() {
			var id, parent, notused int
			var detail string
			if err := rows.Scan(&id, &parent, &notused, &detail); err != nil {
				t.Fatal(err)
			}
			plan = append(plan, detail)
		}
		rows.Close()
		checked++
		for _, d := range plan {
			if m := scan.FindStringSubmatch(d); m != nil && m[2] != "CONSTANT" && !strings.Contains(d, "VALUES CLAUSE") {
				t.Errorf("a scan on the online path:\n%s\nplan:\n  %s", q, strings.Join(plan, "\n  "))
				break
			}
		}
	}
	// The ledger's prepared statements are prepared before the trace
	// starts; store/ledger's TestHotStatementPlans checks those.
	if checked < 10 {
		t.Fatalf("only %d statements traced", checked)
	}
	t.Logf("%d statements checked", checked)
}

// params returns NULL arguments for q's placeholders (? or ?N): a plan
// does not depend on the values.
func params(q string) []any {
	n := 0
	for _, m := range regexp.MustCompile(`\?(\d*)`).FindAllStringSubmatch(q, -1) {
		if m[1] == "" {
			n++
			continue
		}
		i, _ := strconv.Atoi(m[1])
		n = max(n, i)
	}
	return make([]any, n)
}
