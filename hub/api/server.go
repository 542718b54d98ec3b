// Package api is the hub's HTTP API (gofiber): tenants and their keys,
// agents, campaigns, codes, tokens, customers, signing keys, online
// validation and redemption through the rules engine and the ledger, agent
// snapshots and allowances. It is the only package that imports fiber.
//
// Every route is declared once in routes(): method, path, the roles allowed
// and the handler. Authentication is an API key in "Authorization: Bearer";
// a key of one tenant never reaches another tenant's data. Errors are
// RFC 9457 problems (wire.Problem: type, title, status, detail, instance,
// and our stable code, message and field) with the status of
// Code.HTTPStatus; a known path with another method is answered 405 with
// Allow; internal errors are logged once and answered with a generic
// message. Every key has a rate limit with the usual headers, and
// so has every remote address for requests without a valid key.
//
// The hub (cmd/hub through hub.go) builds a Server with New and serves it
// on its listener:
//
//	srv, err := api.New(api.Config{Catalog: cat, Ledger: led, Logger: log})
//	go srv.Serve(ln)
//	defer srv.Shutdown(ctx)
//
// docs/api.md explains the roles and how the first key is created;
// docs/openapi.yaml (served at /openapi.yaml) lists every route.
package api

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/punchcard/punchcard/hub/allowance"
	"github.com/punchcard/punchcard/hub/distribute"
	"github.com/punchcard/punchcard/hub/manage"
	"github.com/punchcard/punchcard/hub/online"
	"github.com/punchcard/punchcard/hub/reports"
	"github.com/punchcard/punchcard/hub/segments"
	"github.com/punchcard/punchcard/hub/snapshots"
	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/protocol/decide"
	"github.com/punchcard/punchcard/protocol/wire"
	"github.com/punchcard/punchcard/qr"
)

//go:embed openapi.yaml
var openAPI []byte

// OpenAPI returns the OpenAPI document the server serves at /openapi.yaml.
func OpenAPI() []byte { return openAPI }

// Defaults for Config.
const (
	// DefaultRateLimit is Config.RateLimit's default: 300,000 requests per
	// key per minute, 5,000/s, far above what a busy web shop's key needs
	// (the old 600, 10/s, throttled one), while still stopping a runaway
	// client before it starves the others.
	DefaultRateLimit  = 300_000
	DefaultRateWindow = time.Minute //
	// DefaultAnonRateLimit is Config.AnonRateLimit's default: requests
	// per remote address per DefaultRateWindow without a valid key.
	DefaultAnonRateLimit = 120
	DefaultBodyLimit     = 8 << 20 // bytes; a code import of MaxImport codes fits
)

// Config configures New. Catalog is required; the rest has defaults.
type Config struct {
	// Manage is the management service the catalog routes call, and
	// Snapshots the service that assembles the agents' snapshots; when nil,
	// New makes them over Catalog and Ledger.
	Manage    *manage.Service
	Snapshots *snapshots.Service
	// Catalog is the catalog store the services are built over.
	Catalog Catalog
	// Ledger serves online redemptions, allowances and verification; when
	// nil those routes answer 503 unavailable.
	Ledger Ledger
	// Logger gets one line per internal error; default slog.Default().
	Logger *slog.Logger
	// Now is the clock for online decisions; default time.Now.
	Now func() time.Time
	// HoldTTL bounds an online-first till's hold (online.Service.HoldTTL);
	// zero: online.DefaultHoldTTL.
	HoldTTL time.Duration
	// StatementMax caps a points statement's points
	// (online.Service.StatementMax); zero: online.DefaultStatementMax.
	StatementMax int64
	// RateLimit is the requests one key may make per RateWindow; default
	// DefaultRateLimit. RateWindow defaults to DefaultRateWindow. The
	// limit is a token bucket: RateLimit at once, then refilled evenly
	// over RateWindow.
	RateLimit  int
	RateWindow time.Duration
	// TenantRateLimit is the requests all keys of one tenant may make
	// together per RateWindow, on top of each key's own; 0 (the default)
	// sets no tenant limit.
	TenantRateLimit int
	// KeyRateLimits and TenantRateLimits override RateLimit for one key
	// (by key ID) and TenantRateLimit for one tenant.
	KeyRateLimits    map[string]int
	TenantRateLimits map[protocol.TenantID]int
	// AnonRateLimit is the requests one remote address may make per
	// RateWindow without a valid API key: public routes, unknown routes
	// and failed authentications. While an address has none left, even a
	// valid key from it is answered 429, so that keys cannot be guessed
	// faster than this. Default DefaultAnonRateLimit.
	AnonRateLimit int
	// BodyLimit bounds request bodies in bytes; default DefaultBodyLimit.
	BodyLimit int
	// QR renders token QR codes; default qr.NewEncoder().
	QR *qr.Encoder
	// OnChange, when set, is called after every successful change of a
	// tenant's catalog with its new version, so the hub can announce the
	// snapshot to the tenant's agents (MQTT, retained). It must not block.
	// The services New makes report their changes to it; the online
	// routes report code uses to it.
	OnChange func(tenant protocol.TenantID, version uint64)
	// OnStop, when set, is called after a campaign is stopped (the kill
	// switch), so the hub can recall the agents' allowances of it
	// (AllowanceRecall over MQTT); for the Manage service New makes. It
	// must not block.
	OnStop func(tenant protocol.TenantID, campaign protocol.CampaignID)
	// MaxCodeChanges and BuildMaxAge configure the Snapshots service New
	// makes (snapshots.Options).
	MaxCodeChanges int
	BuildMaxAge    time.Duration
	// Webhooks serves the webhook routes (webhooks.go); nil: they answer
	// 503 unavailable.
	Webhooks Webhooks
	// Distribute serves the distribution routes (hub/distribute); nil
	// answers them 503 unavailable.
	Distribute *distribute.Service
}

func (c *Config) ensureDefaults() {
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.RateLimit == 0 {
		c.RateLimit = DefaultRateLimit
	}
	if c.AnonRateLimit == 0 {
		c.AnonRateLimit = DefaultAnonRateLimit
	}
	if c.RateWindow == 0 {
		c.RateWindow = DefaultRateWindow
	}
	if c.BodyLimit == 0 {
		c.BodyLimit = DefaultBodyLimit
	}
	if c.QR == nil {
		c.QR = qr.NewEncoder()
	}
}

// Server is the hub's HTTP API.
type Server struct {
	cfg     Config
	mg      *manage.Service
	snap    *snapshots.Service
	cat     Catalog // for the online routes
	app     *fiber.App
	limiter *limiter // per API key
	tenants *limiter // per tenant, all its keys
	anon    *limiter // per remote address, without a valid key

	online *online.Service // validate, redeem, rollback, earn

	allow *allowance.Service // nil without a ledger that keeps allowances

	reports *reports.Service // nil without stores that keep reports (reports.go)

	open  inflight // requests being handled, named by a Shutdown that timed out
	conns conns    // open connections, closed by Shutdown once no handler runs (conns.go)
}

// Log attribute keys.
const (
	logKeyErr    = "err"
	logKeyMethod = "method"
	logKeyPath   = "path"
	logKeyKey    = "key"
	logKeyRed    = "redemption"
	logKeyTenant = "tenant"
	logKeyRows   = "rows"
)

// localKey is where wrap leaves the authenticated key for the error
// handler's log line.
const localKey = "punchcard.key"

// New builds the API. It returns an error when Config.Catalog is nil.
func New(cfg Config) (*Server, error) {
	if cfg.Catalog == nil {
		return nil, errors.New("api: Config.Catalog is required")
	}
	cfg.ensureDefaults()
	s := &Server{cfg: cfg, mg: cfg.Manage, snap: cfg.Snapshots, cat: cfg.Catalog}
	var err error
	if s.mg == nil {
		opts := manage.Options{OnChange: cfg.OnChange, OnStop: cfg.OnStop}
		opts.Ledger, _ = cfg.Ledger.(manage.Ledger)
		if s.mg, err = manage.New(cfg.Catalog, opts); err != nil {
			return nil, err
		}
	}
	if st, ok := cfg.Ledger.(allowance.Store); ok {
		s.allow = allowance.New(st)
	}
	if rl, ok := cfg.Ledger.(reports.Ledger); ok {
		if rc, ok := cfg.Catalog.(reports.Catalog); ok {
			s.reports = reports.New(rl, rc, cfg.Now)
		}
	}
	if s.snap == nil {
		opts := snapshots.Options{Now: cfg.Now, MaxCodeChanges: cfg.MaxCodeChanges, BuildMaxAge: cfg.BuildMaxAge}
		if cfg.Ledger != nil {
			opts.Ledger = cfg.Ledger
		}
		if s.allow != nil {
			opts.Allowances = s.allow
		}
		if s.snap, err = snapshots.New(cfg.Catalog, opts); err != nil {
			return nil, err
		}
	}
	var led online.Ledger
	if cfg.Ledger != nil {
		led = cfg.Ledger
	}
	s.online = online.New(cfg.Catalog, led)
	s.online.Now, s.online.OnChange = cfg.Now, cfg.OnChange
	if cfg.HoldTTL > 0 {
		s.online.HoldTTL = cfg.HoldTTL
	}
	s.online.StatementMax = cfg.StatementMax
	sc, ok1 := cfg.Catalog.(segments.Catalog)
	sl, ok2 := cfg.Ledger.(segments.Ledger)
	if ok1 && ok2 && cfg.Ledger != nil {
		s.online.Segments = segments.New(sc, sl) // segments from behaviour (the stores have them)
	}
	s.limiter = newLimiter(cfg.RateLimit, cfg.RateWindow)
	s.anon = newLimiter(cfg.AnonRateLimit, cfg.RateWindow)
	s.tenants = newLimiter(cfg.TenantRateLimit, cfg.RateWindow)
	s.app = fiber.New(fiber.Config{
		AppName:               "punchcard-hub",
		DisableStartupMessage: true,
		Immutable:             true, // handlers keep strings past the request (logs, maps)
		BodyLimit:             cfg.BodyLimit,
		ErrorHandler:          s.handleError,
		ReadTimeout:           30 * time.Second,
		WriteTimeout:          60 * time.Second,
		IdleTimeout:           120 * time.Second,
	})
	s.app.Server().ConnState = s.conns.track
	for _, r := range s.routes() {
		s.app.Add(r.method, r.path, s.wrap(r))
	}
	s.app.Use(func(c *fiber.Ctx) error {
		if err := s.limitAnon(c); err != nil {
			return err
		}
		if allow := s.allowed(c.Path()); len(allow) > 0 {
			c.Set(fiber.HeaderAllow, wire.AllowHeader(allow))
			return protocol.Errorf(protocol.CodeMethodNotAllowed, "%s is not allowed on %s", c.Method(), c.Path())
		}
		return protocol.Errorf(protocol.CodeNotFound, "no route %s %s", c.Method(), c.Path())
	})
	return s, nil
}

// Serve answers requests on ln until Shutdown. Running out of file
// descriptors does not stop it: it waits until a connection closes.
func (s *Server) Serve(ln net.Listener) error {
	return s.app.Listener(patientListener{Listener: ln, log: s.cfg.Logger})
}

// Shutdown stops accepting connections and waits for open requests. When
// ctx ends first, its error names the handlers still running.
//
// Once no handler has run for shutdownIdleTicks checks in a row, the
// connections still open are closed (conns.go): they carry no request a
// handler took, and a client whose request was cut off retries it.
func (s *Server) Shutdown(ctx context.Context) error {
	done := make(chan error, 1)
	go func() { done <- s.app.ShutdownWithContext(ctx) }()
	tick := time.NewTicker(shutdownCheck)
	defer tick.Stop()
	idle := 0
	for {
		select {
		case err := <-done:
			if err != nil {
				return fmt.Errorf("api: shutdown: %w: %s", err, s.open.describe())
			}
			return nil
		case <-tick.C:
			if s.open.running() > 0 {
				idle = 0
				continue
			}
			if idle++; idle >= shutdownIdleTicks {
				s.conns.closeAll()
			}
		}
	}
}

// Shutdown's checks for connections no handler uses.
const (
	shutdownCheck     = 100 * time.Millisecond
	shutdownIdleTicks = 5
)

// Test runs one request through the server in-process, for tests of other
// packages (cmd/hub, the demo) that do not want a listener.
func (s *Server) Test(req *http.Request) (*http.Response, error) { return s.app.Test(req, -1) }

// Route is one registered route, for documentation and tests.
type Route struct {
	Method string
	Path   string // OpenAPI form: /v1/tenants/{tenant}
	Roles  []manage.Role
}

// Routes lists every route with the roles allowed on it (empty for public
// routes).
func (s *Server) Routes() []Route {
	var out []Route
	for _, r := range s.routes() {
		out = append(out, Route{Method: r.method, Path: openAPIPath(r.path), Roles: r.roles})
	}
	return out
}

// RegisteredRoutes lists what fiber itself has registered (HEAD routes
// fiber adds for GET left out), so a test can check the OpenAPI document
// against the router rather than against our own table.
func (s *Server) RegisteredRoutes() []Route {
	var out []Route
	for _, r := range s.app.GetRoutes(true) {
		if r.Method == fiber.MethodHead {
			continue
		}
		out = append(out, Route{Method: r.Method, Path: openAPIPath(r.Path)})
	}
	return out
}

// allowed lists the methods of the routes whose path matches p, for the
// Allow header of a 405.
func (s *Server) allowed(p string) []string {
	got := strings.Split(strings.TrimSuffix(p, "/"), "/")
	var out []string
	for _, r := range s.routes() {
		want := strings.Split(r.path, "/")
		if len(want) != len(got) {
			continue
		}
		match := true
		for i, w := range want {
			if got[i] != w && !(strings.HasPrefix(w, ":") && got[i] != "") {
				match = false
				break
			}
		}
		if match {
			out = append(out, r.method)
		}
	}
	return out
}

func openAPIPath(p string) string {
	parts := strings.Split(p, "/")
	for i, s := range parts {
		if strings.HasPrefix(s, ":") {
			parts[i] = "{" + s[1:] + "}"
		}
	}
	return strings.Join(parts, "/")
}

// route is one entry of the route table.
type route struct {
	method  string
	path    string
	roles   []manage.Role // nil: public
	changes bool          // a successful call changes the tenant's catalog (the service reports it)
	handler func(c *fiber.Ctx, k manage.Key) error
}

// Role sets used in the route table. The platform role is allowed
// everywhere a tenant admin is.
var (
	rolesAdmin    = []manage.Role{manage.RolePlatform, manage.RoleAdmin}
	rolesMarketer = []manage.Role{manage.RolePlatform, manage.RoleAdmin, manage.RoleMarketer}
	rolesSupport  = []manage.Role{manage.RolePlatform, manage.RoleAdmin, manage.RoleMarketer, manage.RoleSupport}
	rolesRedeem   = []manage.Role{manage.RolePlatform, manage.RoleAdmin, manage.RoleSupport}
	rolesErase    = []manage.Role{manage.RolePlatform, manage.RoleAdmin, manage.RoleSupport}
	rolesRead     = []manage.Role{manage.RolePlatform, manage.RoleAdmin, manage.RoleMarketer, manage.RoleSupport, manage.RoleReadOnly}
	rolesPlatform = []manage.Role{manage.RolePlatform}
	rolesAgent    = []manage.Role{manage.RoleAgent}
)

func (s *Server) routes() []route {
	const t = "/v1/tenants/:tenant"
	return append([]route{
		{method: "GET", path: "/healthz", handler: s.healthz},
		{method: "GET", path: "/openapi.yaml", handler: s.openapi},

		{method: "POST", path: "/v1/tenants", roles: rolesPlatform, handler: s.createTenant},
		{method: "GET", path: "/v1/tenants", roles: rolesPlatform, handler: s.listTenants},
		{method: "GET", path: "/v1/ledger/verify", roles: rolesPlatform, handler: s.verifyLedger},
		{method: "GET", path: "/v1/hub-key", roles: rolesAdmin, handler: s.hubKey},
		{method: "GET", path: t, roles: rolesRead, handler: s.getTenant},
		{method: "GET", path: t + "/audit", roles: rolesRead, handler: s.listAudit},
		{method: "GET", path: t + "/conflicts", roles: rolesRead, handler: s.listConflicts},
		{method: "GET", path: t + "/quarantine", roles: rolesRead, handler: s.listQuarantine},

		{method: "GET", path: t + "/keys", roles: rolesAdmin, handler: s.listKeys},
		{method: "POST", path: t + "/keys", roles: rolesAdmin, changes: true, handler: s.createKey},
		{method: "DELETE", path: t + "/keys/:key", roles: rolesAdmin, changes: true, handler: s.revokeKey},

		{method: "GET", path: t + "/agents", roles: rolesRead, handler: s.listAgents},
		{method: "POST", path: t + "/agents", roles: rolesAdmin, changes: true, handler: s.registerAgent},
		{method: "GET", path: t + "/agents/:agent", roles: rolesRead, handler: s.getAgent},
		{method: "GET", path: t + "/agents/:agent/allowances", roles: rolesRead, handler: s.agentEscrow},
		{method: "POST", path: t + "/agents/:agent/credentials", roles: rolesAdmin, changes: true, handler: s.rotateAgentSecret},
		{method: "PUT", path: t + "/agents/:agent/envelope", roles: rolesAdmin, changes: true, handler: s.setEnvelope},

		{method: "GET", path: t + "/signing-keys", roles: rolesRead, handler: s.listSigningKeys},
		{method: "POST", path: t + "/signing-keys/rotate", roles: rolesAdmin, changes: true, handler: s.rotateSigningKey},

		{method: "GET", path: t + "/campaigns", roles: rolesRead, handler: s.listCampaigns},
		{method: "POST", path: t + "/campaigns", roles: rolesMarketer, changes: true, handler: s.createCampaign},
		{method: "GET", path: t + "/campaigns/:campaign", roles: rolesRead, handler: s.getCampaign},
		{method: "PUT", path: t + "/campaigns/:campaign", roles: rolesMarketer, changes: true, handler: s.updateCampaign},
		{method: "POST", path: t + "/campaigns/:campaign/start", roles: rolesMarketer, changes: true, handler: s.startCampaign},
		{method: "POST", path: t + "/campaigns/:campaign/stop", roles: rolesMarketer, changes: true, handler: s.stopCampaign},
		{method: "GET", path: t + "/campaigns/:campaign/codes", roles: rolesRead, handler: s.listCodes},
		{method: "POST", path: t + "/campaigns/:campaign/codes/generate", roles: rolesMarketer, changes: true, handler: s.generateCodes},
		{method: "POST", path: t + "/campaigns/:campaign/codes/import", roles: rolesMarketer, changes: true, handler: s.importCodes},

		{method: "GET", path: t + "/codes/:code", roles: rolesRead, handler: s.getCode},
		{method: "POST", path: t + "/codes/:code/revoke", roles: rolesMarketer, changes: true, handler: s.revokeCode},

		{method: "POST", path: t + "/tokens", roles: rolesSupport, changes: true, handler: s.issueToken},
		{method: "GET", path: t + "/tokens/:serial", roles: rolesRead, handler: s.getToken},
		{method: "GET", path: t + "/tokens/:serial/qr.png", roles: rolesSupport, handler: s.tokenQR},
		{method: "POST", path: t + "/tokens/:serial/revoke", roles: rolesSupport, changes: true, handler: s.revokeToken},

		{method: "GET", path: t + "/customers", roles: rolesRead, handler: s.listCustomers},
		{method: "POST", path: t + "/customers", roles: rolesSupport, changes: true, handler: s.createCustomer},
		{method: "GET", path: t + "/customers/:customer", roles: rolesRead, handler: s.getCustomer},
		{method: "PUT", path: t + "/customers/:customer", roles: rolesSupport, changes: true, handler: s.updateCustomer},
		{method: "DELETE", path: t + "/customers/:customer", roles: rolesErase, changes: true, handler: s.eraseCustomer},
		{method: "GET", path: t + "/customers/:customer/history", roles: rolesRead, handler: s.customerHistory},
		{method: "GET", path: t + "/customers/:customer/export", roles: rolesRead, handler: s.exportCustomer},
		{method: "GET", path: t + "/customers/:customer/segments", roles: rolesRead, handler: s.customerSegments},
		{method: "GET", path: t + "/customers/:customer/purchases", roles: rolesRead, handler: s.customerPurchases},
		{method: "GET", path: t + "/webhooks", roles: rolesAdmin, handler: s.listWebhooks}, // webhooks.go
		{method: "POST", path: t + "/webhooks", roles: rolesAdmin, handler: s.createWebhook},
		{method: "GET", path: t + "/webhooks/:webhook", roles: rolesAdmin, handler: s.getWebhook},
		{method: "PUT", path: t + "/webhooks/:webhook", roles: rolesAdmin, handler: s.putWebhook},
		{method: "DELETE", path: t + "/webhooks/:webhook", roles: rolesAdmin, handler: s.deleteWebhook},
		{method: "POST", path: t + "/webhooks/:webhook/rotate-secret", roles: rolesAdmin, handler: s.rotateWebhookSecret},
		{method: "POST", path: t + "/webhooks/:webhook/enable", roles: rolesAdmin, handler: s.enableWebhook},
		{method: "GET", path: t + "/webhooks/:webhook/deliveries", roles: rolesAdmin, handler: s.webhookDeliveries},
		{method: "POST", path: t + "/webhooks/:webhook/replay", roles: rolesAdmin, handler: s.replayWebhook},
		{method: "GET", path: t + "/segments", roles: rolesRead, handler: s.listSegments},
		{method: "GET", path: t + "/segments/:segment", roles: rolesRead, handler: s.getSegment},
		{method: "PUT", path: t + "/segments/:segment", roles: rolesMarketer, changes: true, handler: s.putSegment},
		{method: "DELETE", path: t + "/segments/:segment", roles: rolesMarketer, changes: true, handler: s.deleteSegment},
		{method: "GET", path: t + "/customers/:customer/tier", roles: rolesRead, handler: s.customerTier},
		{method: "GET", path: t + "/tier-program", roles: rolesRead, handler: s.getTierProgram},
		{method: "PUT", path: t + "/tier-program", roles: rolesMarketer, changes: true, handler: s.setTierProgram},

		{method: "POST", path: t + "/validate", roles: rolesRead, handler: s.validate},
		{method: "POST", path: t + "/redeem", roles: rolesRedeem, handler: s.redeem},
		{method: "POST", path: t + "/rollback", roles: rolesRedeem, handler: s.rollback},
		{method: "POST", path: t + "/earn", roles: rolesRedeem, handler: s.earn},
		{method: "POST", path: t + wire.PathCustomerEvents, roles: rolesRedeem, handler: s.customerEvent},
		{method: "POST", path: t + "/customers/:customer/points-statement", roles: rolesRedeem, handler: s.pointsStatement},
		{method: "POST", path: t + "/customers/:customer/referral-code", roles: rolesRedeem, handler: s.referralCode}, // referrals.go
		{method: "POST", path: t + wire.PathPointsAdjustments, roles: rolesRedeem, handler: s.adjustPoints},
		{method: "POST", path: t + wire.PathRewardAfterSale, roles: rolesRedeem, handler: s.rewardAfterSale},
		{method: "POST", path: t + "/giftcards", roles: rolesRedeem, handler: s.sellGiftCard},                  // giftcards.go
		{method: "POST", path: t + "/giftcards/:code/topup", roles: rolesRedeem, handler: s.topUpGiftCard},     // giftcards.go
		{method: "GET", path: t + "/giftcards/:code", roles: rolesRead, handler: s.giftCardBalance},            // giftcards.go
		{method: "POST", path: t + "/giftcards/:code/cashout", roles: rolesRedeem, handler: s.cashOutGiftCard}, // giftcards.go

		{method: "GET", path: t + "/reports/:name", roles: rolesRead, handler: s.report},                  // reports.go
		{method: "GET", path: t + "/exports/redemptions", roles: rolesRead, handler: s.exportRedemptions}, // reports.go
		{method: "GET", path: t + "/time-zone", roles: rolesRead, handler: s.getTimeZone},                 // reports.go
		{method: "PUT", path: t + "/time-zone", roles: rolesAdmin, handler: s.setTimeZone},                // reports.go

		{method: "GET", path: "/v1/agent/snapshot", roles: rolesAgent, handler: s.agentSnapshot},
		{method: "POST", path: "/v1/agent/allowances", roles: rolesAgent, handler: s.requestAllowance},
		{method: "POST", path: decide.PathAuthorize, roles: rolesAgent, handler: s.authorize},
		{method: "GET", path: wire.PathAgentGiftCard + "/:code", roles: rolesAgent, handler: s.agentGiftCard}, // giftcards.go
		{method: "POST", path: "/v1/agent/allowances/return", roles: rolesAgent, handler: s.returnAllowance},
	}, s.distributionRoutes()...) // distributions.go
}

// wrap authenticates, rate-limits and authorizes a request before its
// handler runs. The services report catalog changes themselves.
func (s *Server) wrap(r route) fiber.Handler {
	return func(c *fiber.Ctx) error {
		id := s.open.add(r.method, r.path)
		defer s.open.done(id)
		if r.roles == nil {
			if err := s.limitAnon(c); err != nil {
				return err
			}
			return r.handler(c, manage.Key{})
		}
		if s.anon.empty(c.IP(), s.cfg.Now()) {
			// Answer before looking at the key: otherwise a 429 for a
			// wrong key and a 200 for a right one would still tell.
			return s.limitAnon(c)
		}
		k, err := s.authenticate(c)
		if err != nil {
			if lerr := s.limitAnon(c); lerr != nil {
				return lerr
			}
			return err
		}
		c.Locals(localKey, k.ID)
		if err := s.limitKey(c, k); err != nil {
			return err
		}
		if !hasRole(r.roles, k.Role) {
			return protocol.Errorf(protocol.CodeForbidden, "a %s key cannot do this", k.Role)
		}
		tenant := protocol.TenantID(c.Params("tenant"))
		if tenant != "" && k.Role != manage.RolePlatform && k.Tenant != tenant {
			return protocol.Errorf(protocol.CodeForbidden, "this key belongs to another tenant")
		}
		if err := r.handler(c, k); err != nil {
			return err
		}
		return nil
	}
}

func hasRole(roles []manage.Role, r manage.Role) bool {
	for _, x := range roles {
		if x == r {
			return true
		}
	}
	return false
}

func (s *Server) authenticate(c *fiber.Ctx) (manage.Key, error) {
	h := c.Get(fiber.HeaderAuthorization)
	secret, ok := strings.CutPrefix(h, "Bearer ")
	if !ok || secret == "" {
		c.Set(fiber.HeaderWWWAuthenticate, `Bearer realm="punchcard"`)
		return manage.Key{}, protocol.Errorf(protocol.CodeUnauthenticated, "send an API key as Authorization: Bearer <key>")
	}
	k, err := s.mg.Authenticate(c.UserContext(), strings.TrimSpace(secret))
	if err != nil {
		c.Set(fiber.HeaderWWWAuthenticate, `Bearer realm="punchcard"`)
		return manage.Key{}, err
	}
	return k, nil
}

// handleError turns any error into the one error body of both APIs, an
// RFC 9457 problem (wire.Problem, application/problem+json) with our
// stable code. Internal errors are logged once here, with the route, and
// answered generically.
func (s *Server) handleError(c *fiber.Ctx, err error) error {
	var fe *fiber.Error
	var pe *protocol.Error
	switch {
	case errors.As(err, &pe):
	case errors.As(err, &fe):
		pe = fiberError(fe)
	case isBusy(err):
		// Another writer held the file past every busy timeout: the
		// caller may retry; "database is locked" never reaches it.
		c.Set(fiber.HeaderRetryAfter, "1")
		pe = protocol.NewError(protocol.CodeUnavailable)
	default:
		keyID, _ := c.Locals(localKey).(string)
		s.cfg.Logger.Error("api: internal error", logKeyMethod, c.Method(), logKeyPath, c.Path(), logKeyKey, keyID, logKeyErr, err)
		pe = protocol.NewError(protocol.CodeInternal)
	}
	status := pe.Code.HTTPStatus()
	if fe != nil && pe.Code == protocol.CodeInvalidInput {
		status = fe.Code // 405, 413 and the like keep their own status
	}
	return c.Status(status).JSON(wire.NewProblem(pe, status, c.Path()), wire.ContentTypeProblem)
}

func fiberError(fe *fiber.Error) *protocol.Error {
	switch fe.Code {
	case http.StatusNotFound:
		return protocol.Errorf(protocol.CodeNotFound, "%s", fe.Message)
	case http.StatusRequestEntityTooLarge:
		return protocol.Errorf(protocol.CodeMessageTooLarge, "the request body is too large")
	case http.StatusTooManyRequests:
		return protocol.NewError(protocol.CodeRateLimited)
	case http.StatusUnauthorized:
		return protocol.NewError(protocol.CodeUnauthenticated)
	case http.StatusForbidden:
		return protocol.NewError(protocol.CodeForbidden)
	case http.StatusServiceUnavailable:
		return protocol.NewError(protocol.CodeUnavailable)
	case http.StatusMethodNotAllowed:
		return protocol.NewError(protocol.CodeMethodNotAllowed)
	}
	if fe.Code >= 500 {
		return protocol.NewError(protocol.CodeInternal)
	}
	return protocol.Errorf(protocol.CodeInvalidInput, "%s", fe.Message)
}

func (s *Server) healthz(c *fiber.Ctx, _ manage.Key) error {
	if err := s.mg.Health(c.UserContext()); err != nil {
		s.cfg.Logger.Error("api: healthz", logKeyErr, err)
		return c.Status(http.StatusServiceUnavailable).JSON(fiber.Map{"status": "unavailable"})
	}
	return c.JSON(fiber.Map{"status": "ok", "protocol": protocol.Version})
}

func (s *Server) openapi(c *fiber.Ctx, _ manage.Key) error {
	c.Set(fiber.HeaderContentType, "application/yaml")
	return c.Send(openAPI)
}

// needLedger returns CodeUnavailable when the server runs without a ledger.
func (s *Server) needLedger() error {
	if s.cfg.Ledger == nil {
		return protocol.Errorf(protocol.CodeUnavailable, "the ledger is not available on this hub")
	}
	return nil
}
