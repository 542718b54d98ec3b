package api_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/punchcard/punchcard/hub/api"
	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/store/catalog"
)

// validateEnv is a hub with a campaign "summer" (code SUMMER10) and a
// customer c1, and no practical rate limit.
func validateEnv(tb testing.TB) *env {
	e := newEnv(tb, func(c *api.Config) { c.RateLimit = 1 << 30 })
	mk := e.keys[catalog.RoleMarketer]
	e.wantJSON(e.do("POST", "/v1/tenants/acme/campaigns", mk, campaignDoc("summer", "active", percent10, `{"max_redemptions":100}`)), 201, nil)
	e.wantJSON(e.do("POST", "/v1/tenants/acme/campaigns/summer/codes/import", mk, map[string]any{"codes": []string{"SUMMER10"}, "uses": -1}), 201, nil)
	e.wantJSON(e.do("POST", "/v1/tenants/acme/customers", mk, map[string]any{"id": "c1", "tier": "gold"}), 201, nil)
	return e
}

func fixtures(tb testing.TB) map[string][]byte {
	tb.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "validate", "*.json"))
	if err != nil || len(files) == 0 {
		tb.Fatalf("no fixtures: %v", err)
	}
	out := map[string][]byte{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			tb.Fatal(err)
		}
		out[strings.TrimSuffix(filepath.Base(f), ".json")] = b
	}
	return out
}

// TestValidateFixtures: ok_* bodies get a decision, bad_* a 4xx error with
// a reason code.
func TestValidateFixtures(t *testing.T) {
	e := validateEnv(t)
	for name, body := range fixtures(t) {
		t.Run(name, func(t *testing.T) {
			r := e.do("POST", "/v1/tenants/acme/validate", e.keys[catalog.RoleSupport], body)
			if strings.HasPrefix(name, "ok_") {
				var out onlineOut
				e.wantJSON(r, 200, &out)
				if len(out.Decision.Results) == 0 {
					t.Fatalf("no results: %s", r.body)
				}
				return
			}
			var pe protocol.Error
			if r.status < 400 || r.status >= 500 || json.Unmarshal(r.body, &pe) != nil || !pe.Code.Known() {
				t.Fatalf("%d %s", r.status, r.body)
			}
		})
	}
}

// FuzzValidate sends arbitrary bodies to the online validate route: the
// answer is a decision or a typed error, never a 5xx or a panic.
func FuzzValidate(f *testing.F) {
	for _, b := range fixtures(f) {
		f.Add(b)
	}
	e := validateEnv(f)
	k := e.keys[catalog.RoleSupport]
	f.Fuzz(func(t *testing.T, body []byte) {
		r := e.doT(t, "POST", "/v1/tenants/acme/validate", k, body)
		if r.status >= 500 {
			t.Fatalf("%d %s for %q", r.status, r.body, body)
		}
		if r.status != 200 {
			var pe protocol.Error
			if err := json.Unmarshal(r.body, &pe); err != nil || !pe.Code.Known() {
				t.Fatalf("%d, not a typed error: %s", r.status, r.body)
			}
		}
	})
}

// bodyRoutes are the routes that read a JSON body, for FuzzBodies.
var bodyRoutes = []struct{ method, path string }{
	{"POST", "/v1/tenants/acme/campaigns"},
	{"PUT", "/v1/tenants/acme/campaigns/summer"},
	{"POST", "/v1/tenants/acme/campaigns/summer/codes/generate"},
	{"POST", "/v1/tenants/acme/campaigns/summer/codes/import"},
	{"POST", "/v1/tenants/acme/tokens"},
	{"POST", "/v1/tenants/acme/customers"},
	{"PUT", "/v1/tenants/acme/customers/c1"},
	{"POST", "/v1/tenants/acme/agents"},
	{"PUT", "/v1/tenants/acme/agents/till-1/envelope"},
	{"POST", "/v1/tenants/acme/keys"},
	{"POST", "/v1/tenants/acme/rollback"},
	{"POST", "/v1/tenants/acme/earn"},
	{"POST", "/v1/tenants/acme/redeem"},
}

// FuzzBodies sends arbitrary bodies to every route that reads one, with an
// admin key: the answer is never a 5xx.
func FuzzBodies(f *testing.F) {
	for i := range bodyRoutes {
		f.Add(uint8(i), []byte(`{}`))
	}
	f.Add(uint8(0), []byte(`{"schema":1,"id":"x","tenant":"acme","status":"draft","currency":"EUR","reward":{"kind":"percent_off","percent_bp":1000}}`))
	f.Add(uint8(2), []byte(`{"count":3,"pattern":"AB-####","check":true}`))
	f.Add(uint8(3), []byte(`{"codes":["a","b"],"uses":-1}`))
	f.Add(uint8(4), []byte(`{"campaign":"summer","customer":"c1","expires":"2027-01-01T00:00:00Z"}`))
	f.Add(uint8(7), []byte(`{"id":"t2","store":{"id":"s","time_zone":"Europe/Paris"}}`))
	f.Add(uint8(10), []byte(`{"redemption":{"agent":"hub","seq":1}}`))
	e := validateEnv(f)
	k := e.keys[catalog.RoleAdmin]
	var n int
	f.Fuzz(func(t *testing.T, route uint8, body []byte) {
		rt := bodyRoutes[int(route)%len(bodyRoutes)]
		n++
		r := e.doT(t, rt.method, rt.path, k, body, "Idempotency-Key", "fz"+strconv.Itoa(n))
		if r.status >= 500 {
			t.Fatalf("%s %s: %d %s for %q", rt.method, rt.path, r.status, r.body, body)
		}
	})
}
