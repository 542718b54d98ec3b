// Package api is the hub's HTTP API (gofiber): tenants and their keys,
// agents, campaigns, codes, tokens, customers, signing keys, online
// validation and redemption through the rules engine and the ledger, agent
// snapshots and allowances. It is the only package that imports fiber.
//
// Every route is declared once in routes(): method, path, the roles allowed
// and the handler. Authentication is an API key in "Authorization: Bearer";
// a key of one tenant never reaches another tenant's data. Errors are
// protocol.Error JSON ({code, message, field}) with the status of
// Code.HTTPStatus; internal errors are logged once and answered with a
// generic message. Every key has a rate limit with the usual headers, and
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
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/punchcard/punchcard/hub/online"
	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/protocol/decide"
	"github.com/punchcard/punchcard/qr"
	"github.com/punchcard/punchcard/store/catalog"
	"github.com/punchcard/punchcard/store/ledger"
)

//go:embed openapi.yaml
var openAPI []byte

// OpenAPI returns the OpenAPI document the server serves at /openapi.yaml.
func OpenAPI() []byte { return openAPI }

// Ledger is what the API needs of the hub's ledger (store/ledger). Online
// redemptions, allowances and verification go through it.
type Ledger interface {
	Redeem(ctx context.Context, r protocol.Redemption) (protocol.Redemption, error)
	// RedeemBasket records an online write all or nothing, with its
	// idempotency record, through the ledger's group-commit writer.
	RedeemBasket(ctx context.Context, b ledger.Basket) ([]protocol.Redemption, bool, error)
	GrantAllowance(ctx context.Context, tenant protocol.TenantID, agent protocol.AgentID, campaign protocol.CampaignID) (protocol.Allowance, error)
	ReturnAllowance(ctx context.Context, ret protocol.Allowance) (protocol.Allowance, error)
	Outstanding(ctx context.Context, tenant protocol.TenantID, agent protocol.AgentID, campaign protocol.CampaignID) (count, amount int64, err error)
	Campaign(ctx context.Context, tenant protocol.TenantID, campaign protocol.CampaignID) (ledger.CampaignBalance, error)
	CodeUses(ctx context.Context, tenant protocol.TenantID, code protocol.CodeID) (int64, error)
	GiftCardSpent(ctx context.Context, tenant protocol.TenantID, code protocol.CodeID) (int64, error)
	CustomerCount(ctx context.Context, tenant protocol.TenantID, customer protocol.CustomerID, campaign protocol.CampaignID) (int64, error)
	Points(ctx context.Context, tenant protocol.TenantID, customer protocol.CustomerID) (int64, error)
	Conflicts(ctx context.Context, tenant protocol.TenantID, after int64, limit int) ([]ledger.Conflict, error)
	Quarantine(ctx context.Context, tenant protocol.TenantID, after int64, limit int) ([]ledger.Quarantined, error)
	Verify(ctx context.Context) (ledger.Report, error)
	// CodeStates and JournalMark put the codes' uses and gift card
	// spending in the agents' snapshots (ledger/snapshotq.go).
	CodeStates(ctx context.Context, tenant protocol.TenantID) (map[protocol.CodeID]ledger.CodeState, error)
	JournalMark(ctx context.Context) (int64, error)
}

var _ Ledger = (*ledger.Ledger)(nil)

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
	Catalog *catalog.Catalog
	// Ledger serves online redemptions, allowances and verification; when
	// nil those routes answer 503 unavailable.
	Ledger Ledger
	// Logger gets one line per internal error; default slog.Default().
	Logger *slog.Logger
	// Now is the clock for online decisions; default time.Now.
	Now func() time.Time
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
	OnChange func(tenant protocol.TenantID, version uint64)
	// OnStop, when set, is called after a campaign is stopped (the kill
	// switch), so the hub can recall the agents' allowances of it
	// (AllowanceRecall over MQTT). It must not block.
	OnStop func(tenant protocol.TenantID, campaign protocol.CampaignID)
	// MaxCodeChanges is how many code-use changes a snapshot delta lists
	// at most; an agent further behind gets a full snapshot. Default
	// ledger.DefaultMaxCodeChanges.
	MaxCodeChanges int
	// BuildMaxAge is how long a built snapshot is kept for the other
	// agents of its store (it is reused only while the ledger's code uses
	// have not changed); default DefaultBuildMaxAge, negative: never.
	BuildMaxAge time.Duration
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
	if c.MaxCodeChanges <= 0 {
		c.MaxCodeChanges = ledger.DefaultMaxCodeChanges
	}
	if c.BuildMaxAge == 0 {
		c.BuildMaxAge = DefaultBuildMaxAge
	}
}

// Server is the hub's HTTP API.
type Server struct {
	cfg     Config
	cat     *catalog.Catalog
	app     *fiber.App
	limiter *limiter // per API key
	tenants *limiter // per tenant, all its keys
	anon    *limiter // per remote address, without a valid key

	online *online.Service // validate, redeem, rollback, earn

	mu    sync.Mutex
	snaps map[snapKey]snapEntry // each agent's last snapshot ETag

	builds *buildCache // snapshots built per store, shared by its agents
}

type compiled struct {
	version uint64
	camps   map[protocol.CampaignID]catalog.Campaign
}

// rulesFor returns the tenant's compiled campaigns (the online service's,
// recompiled only when the catalog version moved).
func (s *Server) rulesFor(ctx context.Context, tenant protocol.TenantID) (compiled, error) {
	c, err := s.online.Compiled(ctx, tenant)
	if err != nil {
		return compiled{}, err
	}
	return compiled{version: c.Version, camps: c.Camps}, nil
}

// Log attribute keys.
const (
	logKeyErr    = "err"
	logKeyMethod = "method"
	logKeyPath   = "path"
	logKeyKey    = "key"
	logKeyRed    = "redemption"
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
	s := &Server{cfg: cfg, cat: cfg.Catalog, snaps: map[snapKey]snapEntry{}}
	var led online.Ledger
	if cfg.Ledger != nil {
		led = cfg.Ledger
	}
	s.online = online.New(cfg.Catalog, led)
	s.online.Now, s.online.OnChange = cfg.Now, cfg.OnChange
	s.builds = newBuildCache(cfg.BuildMaxAge)
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
	for _, r := range s.routes() {
		s.app.Add(r.method, r.path, s.wrap(r))
	}
	s.app.Use(func(c *fiber.Ctx) error {
		if err := s.limitAnon(c); err != nil {
			return err
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

// Shutdown stops accepting connections and waits for open requests.
func (s *Server) Shutdown(ctx context.Context) error { return s.app.ShutdownWithContext(ctx) }

// Test runs one request through the server in-process, for tests of other
// packages (cmd/hub, the demo) that do not want a listener.
func (s *Server) Test(req *http.Request) (*http.Response, error) { return s.app.Test(req, -1) }

// Route is one registered route, for documentation and tests.
type Route struct {
	Method string
	Path   string // OpenAPI form: /v1/tenants/{tenant}
	Roles  []catalog.Role
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
	roles   []catalog.Role // nil: public
	changes bool           // a successful call changes the tenant's catalog
	handler func(c *fiber.Ctx, k catalog.Key) error
}

// Role sets used in the route table. The platform role is allowed
// everywhere a tenant admin is.
var (
	rolesAdmin    = []catalog.Role{catalog.RolePlatform, catalog.RoleAdmin}
	rolesMarketer = []catalog.Role{catalog.RolePlatform, catalog.RoleAdmin, catalog.RoleMarketer}
	rolesSupport  = []catalog.Role{catalog.RolePlatform, catalog.RoleAdmin, catalog.RoleMarketer, catalog.RoleSupport}
	rolesRedeem   = []catalog.Role{catalog.RolePlatform, catalog.RoleAdmin, catalog.RoleSupport}
	rolesErase    = []catalog.Role{catalog.RolePlatform, catalog.RoleAdmin, catalog.RoleSupport}
	rolesRead     = []catalog.Role{catalog.RolePlatform, catalog.RoleAdmin, catalog.RoleMarketer, catalog.RoleSupport, catalog.RoleReadOnly}
	rolesPlatform = []catalog.Role{catalog.RolePlatform}
	rolesAgent    = []catalog.Role{catalog.RoleAgent}
)

func (s *Server) routes() []route {
	const t = "/v1/tenants/:tenant"
	return []route{
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

		{method: "POST", path: t + "/validate", roles: rolesRead, handler: s.validate},
		{method: "POST", path: t + "/redeem", roles: rolesRedeem, handler: s.redeem},
		{method: "POST", path: t + "/rollback", roles: rolesRedeem, handler: s.rollback},
		{method: "POST", path: t + "/earn", roles: rolesRedeem, handler: s.earn},

		{method: "GET", path: "/v1/agent/snapshot", roles: rolesAgent, handler: s.agentSnapshot},
		{method: "POST", path: "/v1/agent/allowances", roles: rolesAgent, handler: s.requestAllowance},
		{method: "POST", path: decide.PathAuthorize, roles: rolesAgent, handler: s.authorize},
		{method: "POST", path: "/v1/agent/allowances/return", roles: rolesAgent, handler: s.returnAllowance},
	}
}

// wrap authenticates, rate-limits and authorizes a request before its
// handler runs, and reports catalog changes afterwards.
func (s *Server) wrap(r route) fiber.Handler {
	return func(c *fiber.Ctx) error {
		if r.roles == nil {
			if err := s.limitAnon(c); err != nil {
				return err
			}
			return r.handler(c, catalog.Key{})
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
		if tenant != "" && k.Role != catalog.RolePlatform && k.Tenant != tenant {
			return protocol.Errorf(protocol.CodeForbidden, "this key belongs to another tenant")
		}
		if err := r.handler(c, k); err != nil {
			return err
		}
		if r.changes && tenant != "" && s.cfg.OnChange != nil && c.Response().StatusCode() < 300 {
			if v, err := s.cat.Version(c.UserContext(), tenant); err == nil {
				s.cfg.OnChange(tenant, v)
			}
		}
		return nil
	}
}

func hasRole(roles []catalog.Role, r catalog.Role) bool {
	for _, x := range roles {
		if x == r {
			return true
		}
	}
	return false
}

func (s *Server) authenticate(c *fiber.Ctx) (catalog.Key, error) {
	h := c.Get(fiber.HeaderAuthorization)
	secret, ok := strings.CutPrefix(h, "Bearer ")
	if !ok || secret == "" {
		c.Set(fiber.HeaderWWWAuthenticate, `Bearer realm="punchcard"`)
		return catalog.Key{}, protocol.Errorf(protocol.CodeUnauthenticated, "send an API key as Authorization: Bearer <key>")
	}
	k, err := s.cat.Authenticate(c.UserContext(), strings.TrimSpace(secret))
	if err != nil {
		c.Set(fiber.HeaderWWWAuthenticate, `Bearer realm="punchcard"`)
		return catalog.Key{}, err
	}
	return k, nil
}

// handleError turns any error into the one JSON error shape. Internal
// errors are logged once here, with the route, and answered generically.
func (s *Server) handleError(c *fiber.Ctx, err error) error {
	var fe *fiber.Error
	var pe *protocol.Error
	switch {
	case errors.As(err, &pe):
	case errors.As(err, &fe):
		pe = fiberError(fe)
	case ledger.IsBusy(err):
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
	return c.Status(status).JSON(pe)
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
	}
	if fe.Code >= 500 {
		return protocol.NewError(protocol.CodeInternal)
	}
	return protocol.Errorf(protocol.CodeInvalidInput, "%s", fe.Message)
}

func (s *Server) healthz(c *fiber.Ctx, _ catalog.Key) error {
	if err := s.cat.DB().PingContext(c.UserContext()); err != nil {
		s.cfg.Logger.Error("api: healthz", logKeyErr, err)
		return c.Status(http.StatusServiceUnavailable).JSON(fiber.Map{"status": "unavailable"})
	}
	return c.JSON(fiber.Map{"status": "ok", "protocol": protocol.Version})
}

func (s *Server) openapi(c *fiber.Ctx, _ catalog.Key) error {
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
