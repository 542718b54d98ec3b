package api_test

import (
	"slices"
	"strconv"
	"sync"
	"testing"

	"github.com/punchcard/punchcard/hub/api"
	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/protocol/snapshot"
	"github.com/punchcard/punchcard/store/catalog"
)

func codeOf(t *testing.T, s *snapshot.Snapshot, key protocol.CodeID) snapshot.Code {
	t.Helper()
	for _, c := range s.Codes {
		if c.Code == s.LookupID(key) {
			return c
		}
	}
	t.Fatalf("code %s not in snapshot %+v", key, s.Codes)
	return snapshot.Code{}
}

// TestSnapshotLedgerFacts: a code redeemed online shows as used in the
// agent's next snapshot (full and delta at the same catalog version), a
// gift card shows what was spent, the ETag changes with them, and the
// change is reported through OnChange.
func TestSnapshotLedgerFacts(t *testing.T) {
	e := newEnv(t)
	mk, sup := e.keys[catalog.RoleMarketer], e.keys[catalog.RoleSupport]
	e.wantJSON(e.do("POST", "/v1/tenants/acme/campaigns", mk, campaignDoc("summer", "active", percent10, "")), 201, nil)
	e.wantJSON(e.do("POST", "/v1/tenants/acme/campaigns/summer/codes/import", mk, map[string]any{"codes": []string{"ONCE-1", "ONCE-2"}}), 201, nil)
	e.wantJSON(e.do("POST", "/v1/tenants/acme/campaigns", mk, campaignDoc("gift", "active", `{"kind":"gift_card"}`, "")), 201, nil)
	e.wantJSON(e.do("POST", "/v1/tenants/acme/campaigns/gift/codes/import", mk, map[string]any{"codes": []string{"GIFT-1"}, "balance": 30_00}), 201, nil)
	get := func(since uint64, etag string) resp {
		return e.do("GET", "/v1/agent/snapshot?since="+strconv.FormatUint(since, 10), e.agent, nil, "If-None-Match", etag)
	}
	r := get(0, "")
	full, err := snapshot.Decode(r.body)
	if err != nil {
		t.Fatal(err)
	}
	etag := r.header.Get("ETag")
	if c := codeOf(t, full, "ONCE1"); c.Used != 0 {
		t.Fatalf("before: %+v", c)
	}
	if r := get(0, etag); r.status != 304 {
		t.Fatalf("unchanged: %d", r.status)
	}
	changes := len(e.changes)
	e.wantJSON(e.do("POST", "/v1/tenants/acme/redeem", sup, map[string]any{"store": web, "order": order(100_00),
		"redeemables": []any{map[string]any{"code": "ONCE-1"}, map[string]any{"code": "GIFT-1"}}}, "Idempotency-Key", "k1"), 200, nil)
	if len(e.changes) != changes+1 || e.changes[len(e.changes)-1] != full.Version {
		t.Fatalf("OnChange calls %v after the redemption, want one more with v%d", e.changes, full.Version)
	}
	t.Run("OK/Full", func(t *testing.T) {
		r := get(0, etag)
		if r.status != 200 || r.header.Get("ETag") == etag {
			t.Fatalf("after an online redemption: %d, ETag %s (was %s)", r.status, r.header.Get("ETag"), etag)
		}
		s, err := snapshot.Decode(r.body)
		if err != nil {
			t.Fatal(err)
		}
		if c := codeOf(t, s, "ONCE1"); c.Used != 1 {
			t.Fatalf("ONCE1 %+v, want Used 1", c)
		}
		if c := codeOf(t, s, "ONCE2"); c.Used != 0 {
			t.Fatalf("ONCE2 %+v", c)
		}
		g := codeOf(t, s, "GIFT1")
		if g.Balance == nil || g.Balance.Amount != 30_00 || g.Spent <= 0 || g.Spent > 30_00 || g.Used != 1 {
			t.Fatalf("GIFT1 %+v", g)
		}
		if r2 := get(0, r.header.Get("ETag")); r2.status != 304 {
			t.Fatalf("the new ETag is not current: %d", r2.status)
		}
	})
	t.Run("OK/Delta", func(t *testing.T) {
		r := get(full.Version, etag)
		if r.status != 200 {
			t.Fatalf("%d", r.status)
		}
		d, err := snapshot.Decode(r.body)
		if err != nil {
			t.Fatal(err)
		}
		m, err := snapshot.Merge(full, d)
		if err != nil {
			t.Fatal(err)
		}
		if d.Version != full.Version || codeOf(t, m, "ONCE1").Used != 1 || codeOf(t, m, "GIFT1").Spent == 0 {
			t.Fatalf("delta %+v", d.Codes)
		}
	})
}

// TestStopRecalls: stopping a campaign calls OnStop with it.
func TestStopRecalls(t *testing.T) {
	var mu sync.Mutex
	var stops []protocol.CampaignID
	e := newEnv(t, func(c *api.Config) {
		c.OnStop = func(tenant protocol.TenantID, campaign protocol.CampaignID) {
			mu.Lock()
			defer mu.Unlock()
			if tenant == "acme" {
				stops = append(stops, campaign)
			}
		}
	})
	mk := e.keys[catalog.RoleMarketer]
	e.wantJSON(e.do("POST", "/v1/tenants/acme/campaigns", mk, campaignDoc("summer", "active", percent10, `{"max_redemptions":100}`)), 201, nil)
	e.wantJSON(e.do("POST", "/v1/tenants/acme/campaigns/summer/start", mk, nil), 200, nil)
	e.wantErr(e.do("POST", "/v1/tenants/acme/campaigns/nope/stop", mk, nil), 404, protocol.CodeNotFound, "")
	e.wantJSON(e.do("POST", "/v1/tenants/acme/campaigns/summer/stop", mk, nil), 200, nil)
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(stops, []protocol.CampaignID{"summer"}) {
		t.Fatalf("OnStop calls %v, want [summer]", stops)
	}
}
