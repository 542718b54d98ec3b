package api_test

import (
	"encoding/json"
	"strconv"
	"testing"

	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/store/catalog"
)

// FuzzSupportBodies sends arbitrary bodies to the support desk's routes
// (points adjustments, a reward after the sale): the answer is never a
// 5xx, and every refusal is a typed error with a known code.
func FuzzSupportBodies(f *testing.F) {
	paths := []string{"/v1/tenants/acme/customers/c1/points-adjustments", "/v1/tenants/acme/customers/c1/rewards-after-sale"}
	for _, s := range []struct {
		route uint8
		body  string
	}{
		{0, `{"points":5,"reason":"goodwill"}`},
		{0, `{"points":-5,"reason":"other","note":"x","reference":"T-1"}`},
		{0, `{"points":5,"reason":"lost_points","expires_at":"2099-01-01T00:00:00Z"}`},
		{1, `{"sale":{"agent":"till-1","txn_id":"t1"},"code":"WELCOME-1"}`},
		{1, `{"sale":{"agent":"hub","txn_id":"x"},"campaign":"spring","order":{"currency":"EUR","lines":[{"sku":"a","quantity":1,"unit_price":100}]}}`},
		{1, `{}`},
	} {
		f.Add(s.route, []byte(s.body))
	}
	e := afterSaleEnv(f)
	k := e.keys[catalog.RoleSupport]
	var n int
	f.Fuzz(func(t *testing.T, route uint8, body []byte) {
		n++
		p := paths[int(route)%len(paths)]
		r := e.doT(t, "POST", p, k, body, "Idempotency-Key", "fz"+strconv.Itoa(n))
		if r.status >= 500 {
			t.Fatalf("%s: %d %s for %q", p, r.status, r.body, body)
		}
		if r.status >= 300 {
			var pe protocol.Error
			if err := json.Unmarshal(r.body, &pe); err != nil || !pe.Code.Known() {
				t.Fatalf("%d, not a typed error: %s", r.status, r.body)
			}
		}
	})
}
