package api_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/punchcard/punchcard/hub/api"
	"github.com/punchcard/punchcard/hub/distribute"
	"github.com/punchcard/punchcard/hub/webhooks"
	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/protocol/snapshot"
	"github.com/punchcard/punchcard/store"
	"github.com/punchcard/punchcard/store/catalog"
	"github.com/punchcard/punchcard/store/ledger"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// env is a hub API on a real SQLite file shared by catalog and ledger,
// with tenant "acme" (a key per role) and tenant "other".
type env struct {
	t   testing.TB
	srv *api.Server
	cat *catalog.Catalog
	led *ledger.Ledger
	clk *clock
	log *bytes.Buffer

	platform string
	keys     map[catalog.Role]string // acme keys by role
	other    string                  // admin of tenant "other"
	agent    string                  // agent till-1 of acme
	changes  []uint64                // versions passed to OnChange
	// beforeFacts, when set, runs once when the ledger next looks up a
	// campaign's facts (outside its write lock): a way to make something
	// happen between the hub's decision and the ledger's record.
	beforeFacts atomic.Pointer[func()]
}

// hookedFacts is the catalog as the ledger's Facts, with the env's hook.
type hookedFacts struct {
	*catalog.Catalog
	e *env
}

func (h hookedFacts) CampaignFacts(ctx context.Context, t protocol.TenantID, c protocol.CampaignID) (ledger.CampaignFacts, bool, error) {
	if f := h.e.beforeFacts.Swap(nil); f != nil {
		(*f)()
	}
	return h.Catalog.CampaignFacts(ctx, t, c)
}

func newEnv(t testing.TB, mod ...func(*api.Config)) *env {
	t.Helper()
	return newEnvStore(t, store.Options{Sync: store.SyncNormal}, mod...)
}

// withWebhooks gives newEnv a webhook service over its ledger (River's
// migrations cost every other test too much to open one always).
func withWebhooks(c *api.Config) { c.Webhooks = needWebhooks{} }

type needWebhooks struct{ api.Webhooks }

// newEnvStore is newEnv on a database opened with so.
func newEnvStore(t testing.TB, so store.Options, mod ...func(*api.Config)) *env {
	t.Helper()
	e := openEnv(t, filepath.Join(t.TempDir(), "hub.db"), so, mod...)
	e.bootstrap()
	return e
}

// openEnv is the env's hub on the database file at path, without its
// tenants and keys (bootstrap makes them; a copy of a bootstrapped file
// has them already).
func openEnv(t testing.TB, path string, so store.Options, mod ...func(*api.Config)) *env {
	t.Helper()
	ctx := context.Background()
	db, err := store.Open(ctx, path, so)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	cat, err := catalog.New(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, cat: cat, clk: &clock{t: time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)}, log: &bytes.Buffer{}, keys: map[catalog.Role]string{}}
	cat.Now = e.clk.Now
	if e.led, err = ledger.New(ctx, db, ledger.Options{Facts: hookedFacts{cat, e}, Tiers: cat, Now: e.clk.Now}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.led.Close() })
	var mu sync.Mutex
	cfg := api.Config{
		Catalog: cat, Ledger: e.led, Now: e.clk.Now,
		Distribute: distribute.New(cat, e.led), // no Run: publishes stay running
		Logger:     slog.New(slog.NewTextHandler(lockedWriter{&mu, e.log}, nil)),
		OnChange: func(_ protocol.TenantID, v uint64) {
			mu.Lock()
			defer mu.Unlock()
			e.changes = append(e.changes, v)
		},
	}
	for _, m := range mod {
		m(&cfg)
	}
	if _, ok := cfg.Webhooks.(needWebhooks); ok {
		// The webhook service on its own file, not started: the routes
		// manage endpoints; hub/webhooks and chaos test the deliveries.
		wh, err := webhooks.Open(ctx, filepath.Join(t.TempDir(), "webhooks.db"), webhooks.Options{Sources: map[string]webhooks.Source{"ledger": e.led},
			Replay: map[string]webhooks.ReplaySource{"ledger": e.led}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { wh.Close(context.Background()) })
		cfg.Webhooks = wh
	}
	if e.srv, err = api.New(cfg); err != nil {
		t.Fatal(err)
	}
	return e
}

// bootstrap makes the platform key, tenants acme (a key per role and
// agent till-1) and other.
func (e *env) bootstrap() {
	t := e.t
	t.Helper()
	var err error
	_, e.platform, _, err = e.cat.Bootstrap(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	var tr struct {
		AdminSecret string `json:"admin_secret"`
	}
	e.wantJSON(e.do("POST", "/v1/tenants", e.platform, map[string]any{"id": "acme", "name": "Acme", "currency": "EUR", "admin_key_name": "first"}), 201, &tr)
	e.keys[catalog.RoleAdmin] = tr.AdminSecret
	e.wantJSON(e.do("POST", "/v1/tenants", e.platform, map[string]any{"id": "other", "name": "Other", "currency": "EUR", "admin_key_name": "first"}), 201, &tr)
	e.other = tr.AdminSecret
	for _, r := range []catalog.Role{catalog.RoleMarketer, catalog.RoleSupport, catalog.RoleReadOnly} {
		var k struct {
			Secret string `json:"secret"`
		}
		e.wantJSON(e.do("POST", "/v1/tenants/acme/keys", e.keys[catalog.RoleAdmin], map[string]any{"role": r}), 201, &k)
		e.keys[r] = k.Secret
	}
	var ag struct {
		Secret string `json:"secret"`
	}
	e.wantJSON(e.do("POST", "/v1/tenants/acme/agents", e.keys[catalog.RoleAdmin], map[string]any{"id": "till-1", "store": map[string]any{"id": "berlin-1", "time_zone": "Europe/Berlin"}}), 201, &ag)
	e.agent = ag.Secret
	e.keys[catalog.RolePlatform] = e.platform
	e.keys[catalog.RoleAgent] = e.agent
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

type resp struct {
	status int
	header http.Header
	body   []byte
}

// do sends one request; body is JSON-encoded unless it is []byte. hdr
// holds extra header name/value pairs.
func (e *env) do(method, path, secret string, body any, hdr ...string) resp {
	e.t.Helper()
	return e.doT(e.t, method, path, secret, body, hdr...)
}

// doT is do reporting to tb (a fuzz target's own *testing.T).
func (e *env) doT(tb testing.TB, method, path, secret string, body any, hdr ...string) resp {
	tb.Helper()
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		r = bytes.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			tb.Fatal(err)
		}
		r = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, path, r)
	if err != nil {
		tb.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if secret != "" {
		req.Header.Set("Authorization", "Bearer "+secret)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := e.srv.Test(req)
	if err != nil {
		tb.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		tb.Fatal(err)
	}
	return resp{res.StatusCode, res.Header, b}
}

func (e *env) wantJSON(r resp, status int, v any) {
	e.t.Helper()
	if r.status != status {
		e.t.Fatalf("status %d, want %d: %s", r.status, status, r.body)
	}
	if v != nil {
		if err := json.Unmarshal(r.body, v); err != nil {
			e.t.Fatalf("%v: %s", err, r.body)
		}
	}
}

// wantErr checks an error answer: status, code and field.
func (e *env) wantErr(r resp, status int, code protocol.Code, field string) {
	e.t.Helper()
	var pe protocol.Error
	if err := json.Unmarshal(r.body, &pe); err != nil {
		e.t.Fatalf("status %d, body not an error: %s", r.status, r.body)
	}
	if r.status != status || pe.Code != code || pe.Field != field {
		e.t.Fatalf("got %d %s field %q (%s), want %d %s field %q", r.status, pe.Code, pe.Field, pe.Message, status, code, field)
	}
	if pe.Message == "" {
		e.t.Fatal("error without a message")
	}
}

func campaignDoc(id, status, reward, limits string) map[string]any {
	var rw, lm any
	json.Unmarshal([]byte(reward), &rw)
	m := map[string]any{"schema": 1, "id": id, "tenant": "acme", "status": status, "currency": "EUR", "reward": rw}
	if limits != "" {
		json.Unmarshal([]byte(limits), &lm)
		m["limits"] = lm
	}
	return m
}

const percent10 = `{"kind":"percent_off","percent_bp":1000}`

func TestHealthAndOpenAPI(t *testing.T) {
	e := newEnv(t)
	t.Run("OK", func(t *testing.T) {
		e.wantJSON(e.do("GET", "/healthz", "", nil), 200, nil)
		r := e.do("GET", "/openapi.yaml", "", nil)
		if r.status != 200 || !bytes.Equal(r.body, api.OpenAPI()) || !strings.HasPrefix(r.header.Get("Content-Type"), "application/yaml") {
			t.Fatalf("openapi: %d %s", r.status, r.header.Get("Content-Type"))
		}
	})
	t.Run("ErrNoRoute", func(t *testing.T) {
		e.wantErr(e.do("GET", "/v2/nothing", e.platform, nil), 404, protocol.CodeNotFound, "")
	})
}

// openAPIOps parses the (generated, regular) OpenAPI YAML into
// "METHOD /path" → x-roles.
func openAPIOps(t *testing.T, doc []byte) map[string][]string {
	t.Helper()
	ops := map[string][]string{}
	var path, op string
	sc := bufio.NewScanner(bytes.NewReader(doc))
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "  /") && strings.HasSuffix(line, ":"):
			path, op = strings.TrimSuffix(strings.TrimSpace(line), ":"), ""
		case path != "" && len(line) > 4 && line[:4] == "    " && line[4] != ' ' && strings.HasSuffix(line, ":"):
			m := strings.TrimSuffix(strings.TrimSpace(line), ":")
			if slices.Contains([]string{"get", "post", "put", "delete", "patch"}, m) {
				op = strings.ToUpper(m) + " " + path
				ops[op] = nil
			}
		case op != "" && strings.HasPrefix(line, "      x-roles: ["):
			inner := strings.TrimSuffix(strings.TrimPrefix(line, "      x-roles: ["), "]")
			for _, r := range strings.Split(inner, ",") {
				if r = strings.Trim(strings.TrimSpace(r), `"`); r != "" {
					ops[op] = append(ops[op], r)
				}
			}
		case line == "components:":
			path, op = "", ""
		}
	}
	return ops
}

// TestOpenAPICoversRoutes keeps the router, the route table's roles, the
// served document and docs/openapi.yaml from drifting apart.
func TestOpenAPICoversRoutes(t *testing.T) {
	e := newEnv(t)
	docs, err := os.ReadFile(filepath.Join("..", "..", "docs", "openapi.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(docs, api.OpenAPI()) {
		t.Fatal("docs/openapi.yaml differs from hub/api/openapi.yaml: copy one onto the other")
	}
	ops := openAPIOps(t, api.OpenAPI())
	registered := map[string]bool{}
	for _, r := range e.srv.RegisteredRoutes() {
		if r.Path == "/" || r.Method == "USE" {
			continue
		}
		op := r.Method + " " + r.Path
		registered[op] = true
		if _, ok := ops[op]; !ok {
			t.Errorf("route %s is registered but not in the OpenAPI document", op)
		}
	}
	for op := range ops {
		if !registered[op] {
			t.Errorf("the OpenAPI document lists %s, which is not registered", op)
		}
	}
	for _, r := range e.srv.Routes() {
		op := r.Method + " " + r.Path
		var want []string
		for _, x := range r.Roles {
			want = append(want, string(x))
		}
		if !slices.Equal(ops[op], want) {
			t.Errorf("%s: x-roles %v, route table %v", op, ops[op], want)
		}
	}
	if len(registered) < 40 {
		t.Fatalf("only %d routes registered", len(registered))
	}
}

func fillPath(p string) string {
	r := strings.NewReplacer("{tenant}", "acme", "{key}", "key_x", "{agent}", "till-9", "{campaign}", "c1", "{code}", "X1", "{serial}", "T1", "{customer}", "u1")
	return r.Replace(p)
}

// TestRoles sends every route with a key of every role: a role not in the
// route's list gets 403, one in it never gets 401 or 403.
func TestRoles(t *testing.T) {
	e := newEnv(t, withWebhooks)
	roles := []catalog.Role{catalog.RolePlatform, catalog.RoleAdmin, catalog.RoleMarketer, catalog.RoleSupport, catalog.RoleAgent, catalog.RoleReadOnly}
	for _, rt := range e.srv.Routes() {
		if rt.Roles == nil {
			continue
		}
		for _, role := range roles {
			name := fmt.Sprintf("%s %s as %s", rt.Method, rt.Path, role)
			r := e.do(rt.Method, fillPath(rt.Path), e.keys[role], []byte(`{}`))
			if slices.Contains(rt.Roles, role) {
				if r.status == 401 || r.status == 403 || r.status >= 500 {
					t.Errorf("%s: %d %s", name, r.status, r.body)
				}
				continue
			}
			if r.status != 403 {
				t.Errorf("%s: %d, want 403: %s", name, r.status, r.body)
			}
		}
	}
	t.Run("Support", func(t *testing.T) {
		// Support issues "sorry" tokens and redeems, but cannot create campaigns.
		e.wantErr(e.do("POST", "/v1/tenants/acme/campaigns", e.keys[catalog.RoleSupport], campaignDoc("s", "draft", percent10, "")), 403, protocol.CodeForbidden, "")
		e.wantJSON(e.do("POST", "/v1/tenants/acme/campaigns", e.keys[catalog.RoleMarketer], campaignDoc("sorry", "active", percent10, "")), 201, nil)
		e.wantJSON(e.do("POST", "/v1/tenants/acme/tokens", e.keys[catalog.RoleSupport], map[string]any{"campaign": "sorry"}), 201, nil)
	})
	t.Run("ReadOnly", func(t *testing.T) {
		v, _ := e.cat.Version(context.Background(), "acme")
		for _, rt := range e.srv.Routes() {
			if rt.Method != "GET" && slices.Contains(rt.Roles, catalog.RoleReadOnly) && rt.Path != "/v1/tenants/{tenant}/validate" {
				t.Errorf("read-only may %s %s", rt.Method, rt.Path)
			}
		}
		e.wantJSON(e.do("POST", "/v1/tenants/acme/validate", e.keys[catalog.RoleReadOnly], map[string]any{
			"store": map[string]any{"id": "web", "time_zone": "UTC"}, "order": map[string]any{"currency": "EUR", "lines": []any{map[string]any{"sku": "a", "quantity": 1, "unit_price": 100}}},
		}), 200, nil)
		if v2, _ := e.cat.Version(context.Background(), "acme"); v2 != v {
			t.Fatal("read-only validate changed the catalog")
		}
	})
}

func TestAuth(t *testing.T) {
	e := newEnv(t)
	t.Run("ErrNoKey", func(t *testing.T) {
		r := e.do("GET", "/v1/tenants/acme", "", nil)
		e.wantErr(r, 401, protocol.CodeUnauthenticated, "")
		if r.header.Get("WWW-Authenticate") == "" {
			t.Fatal("no WWW-Authenticate")
		}
	})
	t.Run("ErrBadKey", func(t *testing.T) {
		e.wantErr(e.do("GET", "/v1/tenants/acme", "pck_nope", nil), 401, protocol.CodeUnauthenticated, "")
		e.wantErr(e.do("GET", "/v1/tenants/acme", "", nil, "Authorization", "Basic abc"), 401, protocol.CodeUnauthenticated, "")
	})
	t.Run("ErrRevokedKey", func(t *testing.T) {
		var k struct {
			ID     string `json:"id"`
			Secret string `json:"secret"`
		}
		e.wantJSON(e.do("POST", "/v1/tenants/acme/keys", e.keys[catalog.RoleAdmin], map[string]any{"role": "support", "name": "temp"}), 201, &k)
		e.wantJSON(e.do("GET", "/v1/tenants/acme", k.Secret, nil), 200, nil)
		if r := e.do("DELETE", "/v1/tenants/acme/keys/"+k.ID, e.keys[catalog.RoleAdmin], nil); r.status != 204 {
			t.Fatalf("revoke: %d %s", r.status, r.body)
		}
		e.wantErr(e.do("GET", "/v1/tenants/acme", k.Secret, nil), 401, protocol.CodeUnauthenticated, "")
		e.wantErr(e.do("DELETE", "/v1/tenants/acme/keys/"+k.ID, e.keys[catalog.RoleAdmin], nil), 409, protocol.CodeConflict, "")
		e.wantErr(e.do("DELETE", "/v1/tenants/acme/keys/key_nope", e.keys[catalog.RoleAdmin], nil), 404, protocol.CodeNotFound, "")
	})
	t.Run("ErrOtherTenant", func(t *testing.T) {
		e.wantErr(e.do("GET", "/v1/tenants/acme", e.other, nil), 403, protocol.CodeForbidden, "")
		e.wantErr(e.do("GET", "/v1/tenants/acme/campaigns", e.other, nil), 403, protocol.CodeForbidden, "")
		e.wantErr(e.do("POST", "/v1/tenants/acme/customers", e.other, map[string]any{"id": "x"}), 403, protocol.CodeForbidden, "")
	})
	t.Run("Platform", func(t *testing.T) {
		e.wantJSON(e.do("GET", "/v1/tenants/other", e.platform, nil), 200, nil)
		e.wantErr(e.do("GET", "/v1/tenants/nope", e.platform, nil), 404, protocol.CodeNotFound, "")
	})
}

func TestTenantsAndKeys(t *testing.T) {
	e := newEnv(t)
	admin := e.keys[catalog.RoleAdmin]
	t.Run("OK", func(t *testing.T) {
		var l struct {
			Items []catalog.Tenant `json:"items"`
		}
		e.wantJSON(e.do("GET", "/v1/tenants", e.platform, nil), 200, &l)
		if len(l.Items) != 2 {
			t.Fatalf("%+v", l)
		}
		var tn catalog.Tenant
		e.wantJSON(e.do("GET", "/v1/tenants/acme", admin, nil), 200, &tn)
		if tn.Currency != "EUR" || tn.Version < 2 {
			t.Fatalf("%+v", tn)
		}
		var keys struct {
			Items []catalog.Key `json:"items"`
		}
		e.wantJSON(e.do("GET", "/v1/tenants/acme/keys", admin, nil), 200, &keys)
		if len(keys.Items) != 5 { // admin, marketer, support, read-only, agent
			t.Fatalf("%d keys", len(keys.Items))
		}
		if bytes.Contains(e.do("GET", "/v1/tenants/acme/keys", admin, nil).body, []byte(admin)) {
			t.Fatal("a key listing shows a secret")
		}
		var audit struct {
			Items []catalog.AuditEntry `json:"items"`
		}
		e.wantJSON(e.do("GET", "/v1/tenants/acme/audit?limit=2", admin, nil), 200, &audit)
		if len(audit.Items) != 2 || audit.Items[0].Action != "tenant.create" {
			t.Fatalf("%+v", audit.Items)
		}
	})
	t.Run("ErrInvalid", func(t *testing.T) {
		e.wantErr(e.do("POST", "/v1/tenants", e.platform, map[string]any{"id": "x", "name": "X", "currency": "euro"}), 400, protocol.CodeInvalidInput, "currency")
		e.wantErr(e.do("POST", "/v1/tenants", e.platform, map[string]any{"id": "x", "name": "X", "currency": "EUR", "colour": "red"}), 400, protocol.CodeInvalidInput, "colour")
		e.wantErr(e.do("POST", "/v1/tenants", e.platform, map[string]any{"id": 5}), 400, protocol.CodeInvalidInput, "id")
		e.wantErr(e.do("POST", "/v1/tenants", e.platform, []byte(`{"id":`)), 400, protocol.CodeInvalidInput, "")
		e.wantErr(e.do("POST", "/v1/tenants", e.platform, []byte(`{} {}`)), 400, protocol.CodeInvalidInput, "")
		e.wantErr(e.do("POST", "/v1/tenants", e.platform, []byte(``)), 400, protocol.CodeInvalidInput, "")
		e.wantErr(e.do("POST", "/v1/tenants/acme/keys", admin, map[string]any{"role": "owner"}), 400, protocol.CodeInvalidInput, "role")
		e.wantErr(e.do("POST", "/v1/tenants/acme/keys", admin, map[string]any{"role": "platform"}), 400, protocol.CodeInvalidInput, "role")
		e.wantErr(e.do("GET", "/v1/tenants/acme/audit?after=-1", admin, nil), 400, protocol.CodeInvalidInput, "after")
	})
	t.Run("ErrConflict", func(t *testing.T) {
		e.wantErr(e.do("POST", "/v1/tenants", e.platform, map[string]any{"id": "acme", "name": "X", "currency": "EUR"}), 409, protocol.CodeConflict, "id")
	})
}

func TestAgents(t *testing.T) {
	e := newEnv(t)
	admin := e.keys[catalog.RoleAdmin]
	t.Run("OK", func(t *testing.T) {
		var a struct {
			catalog.Agent
			MQTTUsername string `json:"mqtt_username"`
			Secret       string `json:"secret"`
		}
		e.wantJSON(e.do("GET", "/v1/tenants/acme/agents/till-1", e.keys[catalog.RoleReadOnly], nil), 200, &a)
		if a.MQTTUsername != "acme/till-1" || a.Secret != "" || a.Store.TimeZone != "Europe/Berlin" {
			t.Fatalf("%+v", a)
		}
		if ok, err := e.cat.CheckAgentSecret(context.Background(), "acme", "till-1", e.agent); !ok || err != nil {
			t.Fatal("the agent's secret does not pass the broker check")
		}
		e.wantJSON(e.do("POST", "/v1/tenants/acme/agents/till-1/credentials", admin, nil), 200, &a)
		if a.Secret == "" || a.Secret == e.agent {
			t.Fatal("no new secret")
		}
		e.wantErr(e.do("GET", "/v1/agent/snapshot", e.agent, nil), 401, protocol.CodeUnauthenticated, "")
		e.agent = a.Secret
		e.wantJSON(e.do("PUT", "/v1/tenants/acme/agents/till-1/envelope", admin, snapshot.RiskEnvelope{Currency: "EUR", PerRedemption: 1000, Count: 3, MaxStaleSeconds: 60}), 200, &a)
		if a.Envelope.Count != 3 {
			t.Fatalf("%+v", a.Envelope)
		}
		var l struct {
			Items []json.RawMessage `json:"items"`
		}
		e.wantJSON(e.do("GET", "/v1/tenants/acme/agents", admin, nil), 200, &l)
		if len(l.Items) != 1 {
			t.Fatalf("%d agents", len(l.Items))
		}
	})
	t.Run("ErrInvalid", func(t *testing.T) {
		e.wantErr(e.do("POST", "/v1/tenants/acme/agents", admin, map[string]any{"id": "till-2", "store": map[string]any{"id": "s", "time_zone": "Nowhere/Land"}}), 400, protocol.CodeInvalidInput, "store.time_zone")
		e.wantErr(e.do("PUT", "/v1/tenants/acme/agents/till-1/envelope", admin, map[string]any{"count": -7}), 400, protocol.CodeInvalidInput, "envelope.count")
	})
	t.Run("ErrConflict", func(t *testing.T) {
		e.wantErr(e.do("POST", "/v1/tenants/acme/agents", admin, map[string]any{"id": "till-1", "store": map[string]any{"id": "s"}}), 409, protocol.CodeConflict, "id")
	})
	t.Run("HubKey", func(t *testing.T) {
		// Registration answers with the hub's public key, which the agent
		// pins; the same key is readable by admins later.
		var a struct {
			HubKey string `json:"hub_key"`
			Secret string `json:"secret"`
		}
		e.wantJSON(e.do("POST", "/v1/tenants/acme/agents", admin, map[string]any{"id": "till-3", "store": map[string]any{"id": "s"}}), 201, &a)
		pub, err := protocol.ParseHubKey(a.HubKey)
		if err != nil {
			t.Fatalf("hub_key %q: %v", a.HubKey, err)
		}
		want, err := e.cat.HubPublicKey(context.Background())
		if err != nil || !pub.Equal(want) {
			t.Fatalf("hub_key is not the hub's key: %v", err)
		}
		var k struct {
			HubKey string `json:"hub_key"`
		}
		e.wantJSON(e.do("GET", "/v1/hub-key", admin, nil), 200, &k)
		if k.HubKey != a.HubKey {
			t.Fatalf("GET /v1/hub-key = %q, want %q", k.HubKey, a.HubKey)
		}
		e.wantErr(e.do("GET", "/v1/hub-key", e.keys[catalog.RoleReadOnly], nil), 403, protocol.CodeForbidden, "")
	})
	t.Run("ErrReservedOrUnsafeID", func(t *testing.T) {
		for _, id := range []string{"hub", "Hub", "punchcard-hub", "till.1", "$SYS", "till 1", "till/1", "till+", "till#"} {
			e.wantErr(e.do("POST", "/v1/tenants/acme/agents", admin, map[string]any{"id": id, "store": map[string]any{"id": "s"}}), 400, protocol.CodeInvalidInput, "id")
			e.wantErr(e.do("POST", "/v1/tenants", e.platform, map[string]any{"id": id, "name": "X", "currency": "EUR"}), 400, protocol.CodeInvalidInput, "id")
		}
	})
	t.Run("ErrNotFound", func(t *testing.T) {
		e.wantErr(e.do("GET", "/v1/tenants/acme/agents/till-9", admin, nil), 404, protocol.CodeNotFound, "")
		e.wantErr(e.do("POST", "/v1/tenants/acme/agents/till-9/credentials", admin, nil), 404, protocol.CodeNotFound, "")
		e.wantErr(e.do("PUT", "/v1/tenants/acme/agents/till-9/envelope", admin, map[string]any{}), 404, protocol.CodeNotFound, "")
	})
}

func TestCampaigns(t *testing.T) {
	e := newEnv(t)
	mk := e.keys[catalog.RoleMarketer]
	t.Run("OK", func(t *testing.T) {
		before := len(e.changes)
		var cp catalog.Campaign
		e.wantJSON(e.do("POST", "/v1/tenants/acme/campaigns", mk, campaignDoc("summer", "draft", percent10, `{"max_redemptions":10}`)), 201, &cp)
		if cp.Revision != 1 || cp.Rules.Limits.MaxRedemptions != 10 {
			t.Fatalf("%+v", cp)
		}
		if len(e.changes) != before+1 || e.changes[len(e.changes)-1] != cp.Version {
			t.Fatalf("OnChange got %v, want version %d", e.changes[before:], cp.Version)
		}
		e.wantJSON(e.do("PUT", "/v1/tenants/acme/campaigns/summer", mk, campaignDoc("summer", "draft", `{"kind":"amount_off","amount":500}`, "")), 200, &cp)
		if cp.Revision != 2 || cp.Rules.Reward.Amount != 500 {
			t.Fatalf("%+v", cp)
		}
		e.wantJSON(e.do("POST", "/v1/tenants/acme/campaigns/summer/start", mk, nil), 200, &cp)
		if cp.Rules.Status != "active" {
			t.Fatalf("%+v", cp)
		}
		e.wantJSON(e.do("POST", "/v1/tenants/acme/campaigns/summer/stop", mk, nil), 200, &cp)
		if cp.Rules.Status != "stopped" || cp.StoppedAt.IsZero() {
			t.Fatalf("%+v", cp)
		}
		var got struct {
			catalog.Campaign
			Used *struct {
				Count int64 `json:"count"`
			} `json:"used"`
		}
		e.wantJSON(e.do("GET", "/v1/tenants/acme/campaigns/summer", e.keys[catalog.RoleReadOnly], nil), 200, &got)
		if got.Rules.Status != "stopped" || got.Used == nil {
			t.Fatalf("%+v", got)
		}
		var l struct {
			Items []catalog.Campaign `json:"items"`
		}
		e.wantJSON(e.do("GET", "/v1/tenants/acme/campaigns", mk, nil), 200, &l)
		if len(l.Items) != 1 {
			t.Fatalf("%+v", l)
		}
		e.wantJSON(e.do("GET", "/v1/tenants/acme/campaigns?since="+strconv.FormatUint(cp.Version, 10), mk, nil), 200, &l)
		if len(l.Items) != 0 {
			t.Fatalf("since: %+v", l)
		}
	})
	t.Run("ErrFieldPath", func(t *testing.T) {
		e.wantErr(e.do("POST", "/v1/tenants/acme/campaigns", mk, campaignDoc("bad", "draft", `{"kind":"percent_off","percent_bp":12000}`, "")), 400, protocol.CodeInvalidInput, "reward.percent_bp")
		doc := campaignDoc("bad", "draft", percent10, "")
		doc["tenant"] = "other"
		e.wantErr(e.do("POST", "/v1/tenants/acme/campaigns", mk, doc), 400, protocol.CodeInvalidInput, "tenant")
		e.wantErr(e.do("PUT", "/v1/tenants/acme/campaigns/summer", mk, campaignDoc("summer", "active", percent10, "")), 400, protocol.CodeInvalidInput, "status")
	})
	t.Run("ErrConflict", func(t *testing.T) {
		e.wantErr(e.do("POST", "/v1/tenants/acme/campaigns", mk, campaignDoc("summer", "draft", percent10, "")), 409, protocol.CodeConflict, "id")
	})
	t.Run("ErrNotFound", func(t *testing.T) {
		e.wantErr(e.do("GET", "/v1/tenants/acme/campaigns/nope", mk, nil), 404, protocol.CodeNotFound, "")
		e.wantErr(e.do("POST", "/v1/tenants/acme/campaigns/nope/start", mk, nil), 404, protocol.CodeNotFound, "")
		e.wantErr(e.do("POST", "/v1/tenants/acme/campaigns/nope/stop", mk, nil), 404, protocol.CodeNotFound, "")
		e.wantErr(e.do("PUT", "/v1/tenants/acme/campaigns/nope", mk, campaignDoc("nope", "draft", percent10, "")), 404, protocol.CodeNotFound, "")
	})
}

func TestCodes(t *testing.T) {
	e := newEnv(t)
	mk := e.keys[catalog.RoleMarketer]
	e.wantJSON(e.do("POST", "/v1/tenants/acme/campaigns", mk, campaignDoc("summer", "active", percent10, "")), 201, nil)
	e.wantJSON(e.do("POST", "/v1/tenants/acme/campaigns", mk, campaignDoc("gift", "active", `{"kind":"gift_card"}`, "")), 201, nil)
	t.Run("OK", func(t *testing.T) {
		var g struct {
			Codes []string `json:"codes"`
		}
		e.wantJSON(e.do("POST", "/v1/tenants/acme/campaigns/gift/codes/generate", mk, map[string]any{"count": 5, "pattern": "GIFT-####-####", "check": true, "balance": 2500}), 201, &g)
		if len(g.Codes) != 5 || !strings.HasPrefix(g.Codes[0], "GIFT-") {
			t.Fatalf("%+v", g)
		}
		var imp struct {
			Imported int `json:"imported"`
		}
		e.wantJSON(e.do("POST", "/v1/tenants/acme/campaigns/summer/codes/import", mk, map[string]any{"codes": []string{"SUMMER10", "HELLO-5"}, "uses": -1}), 201, &imp)
		if imp.Imported != 2 {
			t.Fatalf("%+v", imp)
		}
		var cd struct {
			catalog.Code
			Used      *int64 `json:"used"`
			Remaining *int64 `json:"remaining_balance"`
		}
		e.wantJSON(e.do("GET", "/v1/tenants/acme/codes/"+g.Codes[0], e.keys[catalog.RoleReadOnly], nil), 200, &cd)
		if cd.Balance != 2500 || cd.Used == nil || *cd.Used != 0 || cd.Remaining == nil || *cd.Remaining != 2500 {
			t.Fatalf("%+v", cd)
		}
		var l struct {
			Items []catalog.Code `json:"items"`
		}
		e.wantJSON(e.do("GET", "/v1/tenants/acme/campaigns/summer/codes?limit=1", mk, nil), 200, &l)
		if len(l.Items) != 1 || l.Items[0].Key != "HELLO5" {
			t.Fatalf("%+v", l)
		}
		e.wantJSON(e.do("POST", "/v1/tenants/acme/codes/hello-5/revoke", mk, nil), 200, &cd)
		if cd.RevokedAt.IsZero() {
			t.Fatal("not revoked")
		}
	})
	t.Run("ErrInvalid", func(t *testing.T) {
		e.wantErr(e.do("POST", "/v1/tenants/acme/campaigns/summer/codes/generate", mk, map[string]any{"count": 0}), 400, protocol.CodeInvalidInput, "count")
		e.wantErr(e.do("POST", "/v1/tenants/acme/campaigns/gift/codes/generate", mk, map[string]any{"count": 1}), 400, protocol.CodeInvalidInput, "balance")
		e.wantErr(e.do("POST", "/v1/tenants/acme/campaigns/summer/codes/import", mk, map[string]any{"codes": []string{"OK1", " "}}), 400, protocol.CodeInvalidInput, "codes[1]")
		e.wantErr(e.do("POST", "/v1/tenants/acme/campaigns/summer/codes/generate", mk, map[string]any{"count": "ten"}), 400, protocol.CodeInvalidInput, "count")
	})
	t.Run("ErrConflict", func(t *testing.T) {
		e.wantErr(e.do("POST", "/v1/tenants/acme/campaigns/summer/codes/import", mk, map[string]any{"codes": []string{"NEW-1", "summer 10"}}), 409, protocol.CodeConflict, "codes[1]")
		e.wantErr(e.do("POST", "/v1/tenants/acme/codes/HELLO5/revoke", mk, nil), 409, protocol.CodeConflict, "")
	})
	t.Run("ErrNotFound", func(t *testing.T) {
		e.wantErr(e.do("GET", "/v1/tenants/acme/codes/NOPE", mk, nil), 404, protocol.CodeNotFound, "")
		e.wantErr(e.do("POST", "/v1/tenants/acme/codes/NOPE/revoke", mk, nil), 404, protocol.CodeNotFound, "")
		e.wantErr(e.do("GET", "/v1/tenants/acme/campaigns/nope/codes", mk, nil), 404, protocol.CodeNotFound, "")
		e.wantErr(e.do("POST", "/v1/tenants/acme/campaigns/nope/codes/generate", mk, map[string]any{"count": 1}), 404, protocol.CodeNotFound, "")
		e.wantErr(e.do("POST", "/v1/tenants/acme/campaigns/nope/codes/import", mk, map[string]any{"codes": []string{"Z1"}}), 404, protocol.CodeNotFound, "")
	})
}

func TestTokens(t *testing.T) {
	e := newEnv(t)
	sup := e.keys[catalog.RoleSupport]
	e.wantJSON(e.do("POST", "/v1/tenants/acme/campaigns", e.keys[catalog.RoleMarketer], campaignDoc("sorry", "active", percent10, "")), 201, nil)
	e.wantJSON(e.do("POST", "/v1/tenants/acme/customers", sup, map[string]any{"id": "c1", "email": "ann@example.com", "tier": "gold"}), 201, nil)
	var tok struct {
		catalog.Token
		QRURL string `json:"qr_url"`
	}
	e.wantJSON(e.do("POST", "/v1/tenants/acme/tokens", sup, map[string]any{"campaign": "sorry", "customer": "c1", "uses": 1}), 201, &tok)
	t.Run("OK", func(t *testing.T) {
		if !strings.HasPrefix(tok.Text, "PC1") || tok.QRURL == "" || tok.Customer != "c1" {
			t.Fatalf("%+v", tok)
		}
		r := e.do("GET", tok.QRURL, sup, nil)
		if r.status != 200 || r.header.Get("Content-Type") != "image/png" {
			t.Fatalf("qr: %d %s", r.status, r.body)
		}
		if zbar, err := exec.LookPath("zbarimg"); err == nil {
			f := filepath.Join(t.TempDir(), "t.png")
			if err := os.WriteFile(f, r.body, 0o600); err != nil {
				t.Fatal(err)
			}
			out, err := exec.Command(zbar, "--raw", "-q", "-Sdisable", "-Sqrcode.enable", f).Output()
			if err != nil {
				t.Fatalf("zbarimg: %v", err)
			}
			if got := strings.TrimSpace(string(out)); got != tok.Text {
				t.Fatalf("QR holds %q, want %q", got, tok.Text)
			}
		} else {
			t.Log("zbarimg not installed: QR content not checked")
		}
		var ro catalog.Token
		e.wantJSON(e.do("GET", "/v1/tenants/acme/tokens/"+string(tok.Serial), e.keys[catalog.RoleReadOnly], nil), 200, &ro)
		if ro.Text != "" || ro.Serial != tok.Serial {
			t.Fatalf("read-only sees the token text: %+v", ro)
		}
		e.wantErr(e.do("GET", tok.QRURL, e.keys[catalog.RoleReadOnly], nil), 403, protocol.CodeForbidden, "")
		e.wantJSON(e.do("POST", "/v1/tenants/acme/tokens/"+string(tok.Serial)+"/revoke", sup, nil), 200, &ro)
		if ro.RevokedAt.IsZero() {
			t.Fatal("not revoked")
		}
	})
	t.Run("ErrInvalid", func(t *testing.T) {
		e.wantErr(e.do("POST", "/v1/tenants/acme/tokens", sup, map[string]any{"campaign": "sorry", "expires": "2020-01-01T00:00:00Z"}), 400, protocol.CodeInvalidInput, "expires")
		e.wantErr(e.do("POST", "/v1/tenants/acme/tokens", sup, map[string]any{"campaign": "sorry", "expires": "soon"}), 400, protocol.CodeInvalidInput, "")
	})
	t.Run("ErrNotFound", func(t *testing.T) {
		e.wantErr(e.do("POST", "/v1/tenants/acme/tokens", sup, map[string]any{"campaign": "nope"}), 404, protocol.CodeNotFound, "campaign")
		e.wantErr(e.do("POST", "/v1/tenants/acme/tokens", sup, map[string]any{"campaign": "sorry", "customer": "nobody"}), 404, protocol.CodeNotFound, "customer")
		e.wantErr(e.do("GET", "/v1/tenants/acme/tokens/TNOPE", sup, nil), 404, protocol.CodeNotFound, "")
		e.wantErr(e.do("GET", "/v1/tenants/acme/tokens/TNOPE/qr.png", sup, nil), 404, protocol.CodeNotFound, "")
		e.wantErr(e.do("POST", "/v1/tenants/acme/tokens/TNOPE/revoke", sup, nil), 404, protocol.CodeNotFound, "")
	})
	t.Run("ErrConflict", func(t *testing.T) {
		e.wantErr(e.do("POST", "/v1/tenants/acme/tokens/"+string(tok.Serial)+"/revoke", sup, nil), 409, protocol.CodeConflict, "")
		e.wantJSON(e.do("POST", "/v1/tenants/acme/campaigns/sorry/stop", e.keys[catalog.RoleMarketer], nil), 200, nil)
		e.wantErr(e.do("POST", "/v1/tenants/acme/tokens", sup, map[string]any{"campaign": "sorry"}), 422, protocol.CodeCampaignStopped, "campaign")
	})
	t.Run("SigningKeys", func(t *testing.T) {
		var info catalog.SigningKeyInfo
		e.wantJSON(e.do("POST", "/v1/tenants/acme/signing-keys/rotate", e.keys[catalog.RoleAdmin], nil), 201, &info)
		var l struct {
			Items []catalog.SigningKeyInfo `json:"items"`
		}
		e.wantJSON(e.do("GET", "/v1/tenants/acme/signing-keys", e.keys[catalog.RoleReadOnly], nil), 200, &l)
		if len(l.Items) != 2 || l.Items[0].KID != info.KID || l.Items[1].NotAfter.IsZero() {
			t.Fatalf("%+v", l.Items)
		}
		e.wantErr(e.do("POST", "/v1/tenants/nope/signing-keys/rotate", e.platform, nil), 404, protocol.CodeNotFound, "")
	})
}

func TestCustomers(t *testing.T) {
	e := newEnv(t)
	sup := e.keys[catalog.RoleSupport]
	t.Run("OK", func(t *testing.T) {
		var cu catalog.Customer
		e.wantJSON(e.do("POST", "/v1/tenants/acme/customers", sup, map[string]any{"id": "c1", "email": "ann@example.com", "name": "Ann", "attributes": map[string]string{"city": "Berlin"}}), 201, &cu)
		e.wantJSON(e.do("PUT", "/v1/tenants/acme/customers/c1", sup, map[string]any{"email": "ann@example.org", "tier": "gold"}), 200, &cu)
		if cu.Tier != "gold" || cu.Email != "ann@example.org" {
			t.Fatalf("%+v", cu)
		}
		e.wantJSON(e.do("GET", "/v1/tenants/acme/customers/c1", e.keys[catalog.RoleReadOnly], nil), 200, &cu)
		var l struct {
			Items []catalog.Customer `json:"items"`
		}
		e.wantJSON(e.do("GET", "/v1/tenants/acme/customers", sup, nil), 200, &l)
		if len(l.Items) != 1 {
			t.Fatalf("%+v", l)
		}
		var erased catalog.Customer
		e.wantJSON(e.do("DELETE", "/v1/tenants/acme/customers/c1", sup, nil), 200, &erased)
		if erased.ErasedAt.IsZero() || erased.Email != "" || erased.ID != "c1" {
			t.Fatalf("%+v", erased)
		}
		var h struct {
			Customer catalog.Customer     `json:"customer"`
			Points   *int64               `json:"points"`
			Changes  []catalog.AuditEntry `json:"changes"`
		}
		r := e.do("GET", "/v1/tenants/acme/customers/c1/history", sup, nil)
		e.wantJSON(r, 200, &h)
		if len(h.Changes) != 3 || h.Points == nil || bytes.Contains(r.body, []byte("ann@")) {
			t.Fatalf("history %s", r.body)
		}
	})
	t.Run("ErrInvalid", func(t *testing.T) {
		e.wantErr(e.do("POST", "/v1/tenants/acme/customers", sup, map[string]any{"id": "c 2"}), 400, protocol.CodeInvalidInput, "id")
		e.wantErr(e.do("PUT", "/v1/tenants/acme/customers/c1", sup, map[string]any{"id": "c2"}), 400, protocol.CodeInvalidInput, "id")
		e.wantErr(e.do("POST", "/v1/tenants/acme/customers", sup, map[string]any{"id": "c3", "attributes": []string{"x"}}), 400, protocol.CodeInvalidInput, "attributes")
	})
	t.Run("ErrConflict", func(t *testing.T) {
		e.wantErr(e.do("POST", "/v1/tenants/acme/customers", sup, map[string]any{"id": "c1"}), 409, protocol.CodeConflict, "id")
		e.wantErr(e.do("PUT", "/v1/tenants/acme/customers/c1", sup, map[string]any{"name": "x"}), 409, protocol.CodeConflict, "")
		e.wantErr(e.do("DELETE", "/v1/tenants/acme/customers/c1", sup, nil), 409, protocol.CodeConflict, "")
	})
	t.Run("ErrNotFound", func(t *testing.T) {
		e.wantErr(e.do("GET", "/v1/tenants/acme/customers/c9", sup, nil), 404, protocol.CodeNotFound, "")
		e.wantErr(e.do("PUT", "/v1/tenants/acme/customers/c9", sup, map[string]any{}), 404, protocol.CodeNotFound, "")
		e.wantErr(e.do("DELETE", "/v1/tenants/acme/customers/c9", sup, nil), 404, protocol.CodeNotFound, "")
		e.wantErr(e.do("GET", "/v1/tenants/acme/customers/c9/history", sup, nil), 404, protocol.CodeNotFound, "")
	})
}
