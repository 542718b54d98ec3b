package api_test

import (
	"encoding/json"
	"testing"

	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/store/catalog"
)

// TestWebhookRoutes: an admin adds, reads, changes, rotates, pages and
// removes an endpoint over HTTP; the secret shows only at create and
// rotate; another tenant's admin and a marketer cannot see it; bad bodies
// are typed refusals.
func TestWebhookRoutes(t *testing.T) {
	e := newEnv(t, withWebhooks)
	admin := e.keys[catalog.RoleAdmin]
	var ep protocol.WebhookEndpoint
	e.wantJSON(e.do("POST", "/v1/tenants/acme/webhooks", admin, map[string]any{"url": "https://example.test/hook", "types": []string{"fact.*", "campaign.stop"}}), 201, &ep)
	if ep.ID == "" || len(ep.Secret) < 40 || !ep.Enabled || len(ep.Types) != 2 {
		t.Fatalf("created %+v", ep)
	}
	var got protocol.WebhookEndpoint
	e.wantJSON(e.do("GET", "/v1/tenants/acme/webhooks/"+ep.ID, admin, nil), 200, &got)
	if got.Secret != "" || got.URL != ep.URL {
		t.Fatalf("read %+v: the secret shows or the URL differs", got)
	}
	var l struct{ Items []protocol.WebhookEndpoint }
	e.wantJSON(e.do("GET", "/v1/tenants/acme/webhooks", admin, nil), 200, &l)
	if len(l.Items) != 1 || l.Items[0].Secret != "" {
		t.Fatalf("list %+v", l)
	}
	e.wantJSON(e.do("PUT", "/v1/tenants/acme/webhooks/"+ep.ID, admin, map[string]any{"url": "https://example.test/v2"}), 200, &got)
	if got.URL != "https://example.test/v2" || len(got.Types) != 0 {
		t.Fatalf("put %+v", got)
	}
	e.wantJSON(e.do("POST", "/v1/tenants/acme/webhooks/"+ep.ID+"/rotate-secret", admin, nil), 200, &got)
	if got.Secret == "" || got.Secret == ep.Secret {
		t.Fatalf("rotate %+v", got)
	}
	e.wantJSON(e.do("POST", "/v1/tenants/acme/webhooks/"+ep.ID+"/enable", admin, nil), 200, &got)
	var ds struct{ Items []protocol.WebhookDelivery }
	e.wantJSON(e.do("GET", "/v1/tenants/acme/webhooks/"+ep.ID+"/deliveries?limit=10", admin, nil), 200, &ds)
	if ds.Items == nil || len(ds.Items) != 0 {
		t.Fatalf("deliveries %+v", ds)
	}
	e.wantErr(e.do("GET", "/v1/tenants/acme/webhooks/"+ep.ID+"/deliveries?limit=500", admin, nil), 400, protocol.CodeInvalidInput, "limit")
	e.wantErr(e.do("POST", "/v1/tenants/acme/webhooks/"+ep.ID+"/replay", admin, map[string]any{}), 400, protocol.CodeInvalidInput, "event_id")
	e.wantErr(e.do("POST", "/v1/tenants/acme/webhooks/"+ep.ID+"/replay", admin, map[string]any{"event_id": "evt_none"}), 404, protocol.CodeNotFound, "")
	e.wantErr(e.do("POST", "/v1/tenants/acme/webhooks", admin, map[string]any{"url": "ftp://x"}), 400, protocol.CodeInvalidInput, "url")
	e.wantErr(e.do("POST", "/v1/tenants/acme/webhooks", admin, map[string]any{"url": "https://x/", "secret": "mine"}), 400, protocol.CodeInvalidInput, "secret")
	// The URL guard (the test hub does not allow private receivers).
	e.wantErr(e.do("POST", "/v1/tenants/acme/webhooks", admin, map[string]any{"url": "http://169.254.169.254/latest/meta-data"}), 422, protocol.CodeWebhookURLForbidden, "url")
	e.wantErr(e.do("POST", "/v1/tenants/acme/webhooks", admin, map[string]any{"url": "http://localhost:8080/hook"}), 422, protocol.CodeWebhookURLForbidden, "url")
	e.wantErr(e.do("PUT", "/v1/tenants/acme/webhooks/"+ep.ID, admin, map[string]any{"url": "http://[::1]/hook"}), 422, protocol.CodeWebhookURLForbidden, "url")
	e.wantErr(e.do("GET", "/v1/tenants/other/webhooks/"+ep.ID, e.other, nil), 404, protocol.CodeNotFound, "")
	e.wantErr(e.do("GET", "/v1/tenants/acme/webhooks/"+ep.ID, e.other, nil), 403, protocol.CodeForbidden, "")
	e.wantErr(e.do("GET", "/v1/tenants/acme/webhooks", e.keys[catalog.RoleMarketer], nil), 403, protocol.CodeForbidden, "")
	if r := e.do("DELETE", "/v1/tenants/acme/webhooks/"+ep.ID, admin, nil); r.status != 204 {
		t.Fatalf("delete: %d %s", r.status, r.body)
	}
	e.wantErr(e.do("DELETE", "/v1/tenants/acme/webhooks/"+ep.ID, admin, nil), 404, protocol.CodeNotFound, "")
}

// FuzzWebhookBodies sends arbitrary bodies to the webhook routes that
// read one: never a 5xx, every refusal a typed error with a known code.
func FuzzWebhookBodies(f *testing.F) {
	for _, s := range []struct {
		route uint8
		body  string
	}{
		{0, `{"url":"https://example.test/h","types":["fact.*"]}`},
		{0, `{"url":"http://127.0.0.1:9/h","description":"x","types":["*"]}`},
		{1, `{"url":"https://example.test/h2","types":["conflict.recorded"]}`},
		{2, `{"event_id":"evt_x"}`},
		{2, `{"from":"2026-01-01T00:00:00Z","to":"2026-02-01T00:00:00Z"}`},
		{2, `{}`},
	} {
		f.Add(s.route, []byte(s.body))
	}
	e := newEnv(f, withWebhooks)
	admin := e.keys[catalog.RoleAdmin]
	var ep protocol.WebhookEndpoint
	e.wantJSON(e.do("POST", "/v1/tenants/acme/webhooks", admin, map[string]any{"url": "https://example.test/hook"}), 201, &ep)
	routes := []struct{ method, path string }{
		{"POST", "/v1/tenants/acme/webhooks"}, {"PUT", "/v1/tenants/acme/webhooks/" + ep.ID}, {"POST", "/v1/tenants/acme/webhooks/" + ep.ID + "/replay"},
	}
	f.Fuzz(func(t *testing.T, route uint8, body []byte) {
		rt := routes[int(route)%len(routes)]
		r := e.doT(t, rt.method, rt.path, admin, body)
		if r.status >= 500 {
			t.Fatalf("%s %s: %d %s for %q", rt.method, rt.path, r.status, r.body, body)
		}
		if r.status >= 300 {
			var pe protocol.Error
			if err := json.Unmarshal(r.body, &pe); err != nil || !pe.Code.Known() {
				t.Fatalf("%d, not a typed error: %s", r.status, r.body)
			}
		}
	})
}
