package api_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/store/catalog"
)

// eventsEnv is a hub with the capped points program of capProgram and
// customer c1.
func eventsEnv(tb testing.TB) *env {
	e := validateEnv(tb)
	doc := campaignDoc("club", "active", capProgram, "")
	doc["trigger"] = "auto"
	e.wantJSON(e.do("POST", "/v1/tenants/acme/campaigns", e.keys[catalog.RoleMarketer], doc), 201, nil)
	return e
}

func eventFixtures(tb testing.TB) map[string][]byte {
	tb.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "events", "*.json"))
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

// TestEventFixtures: ok_* bodies earn (or earn nothing), bad_* get a 400
// invalid_input naming a field.
func TestEventFixtures(t *testing.T) {
	e := eventsEnv(t)
	sup := e.keys[catalog.RoleSupport]
	for name, body := range eventFixtures(t) {
		t.Run(name, func(t *testing.T) {
			r := e.do("POST", "/v1/tenants/acme/customers/c1/events", sup, body, "Idempotency-Key", "fx-"+name)
			if strings.HasPrefix(name, "ok_") {
				if r.status != 200 {
					t.Fatalf("%d %s", r.status, r.body)
				}
				return
			}
			var pe protocol.Error
			if err := json.Unmarshal(r.body, &pe); err != nil || r.status != 400 || pe.Code != protocol.CodeInvalidInput {
				t.Fatalf("%d %s", r.status, r.body)
			}
		})
	}
}

// FuzzCustomerEvent sends arbitrary event bodies: never a 5xx, a refusal
// is a typed error, and the customer never earns past the yearly cap of
// the sign-up rule (25).
func FuzzCustomerEvent(f *testing.F) {
	for _, b := range eventFixtures(f) {
		f.Add(b)
	}
	e := eventsEnv(f)
	sup := e.keys[catalog.RoleSupport]
	var n int
	f.Fuzz(func(t *testing.T, body []byte) {
		n++
		r := e.doT(t, "POST", "/v1/tenants/acme/customers/c1/events", sup, body, "Idempotency-Key", "fz"+strconv.Itoa(n))
		if r.status >= 500 {
			t.Fatalf("%d %s for %q", r.status, r.body, body)
		}
		if r.status != 200 {
			var pe protocol.Error
			if err := json.Unmarshal(r.body, &pe); err != nil || !pe.Code.Known() {
				t.Fatalf("%d, not a typed error: %s", r.status, r.body)
			}
		}
		var pts int64
		if err := e.led.DB().QueryRow(`SELECT COALESCE(SUM(points), 0) FROM ledger_customer_periods WHERE tenant = 'acme' AND customer = 'c1' AND rule = 'news'`).Scan(&pts); err != nil {
			t.Fatal(err)
		}
		if pts > 25*2 { // at most two years in reach (MaxEventAge)
			t.Fatalf("c1 earned %d sign-up points", pts)
		}
	})
}
