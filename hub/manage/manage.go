// Package manage is the hub's management service: the changes people make
// to a tenant's catalog (tenants, API keys, agents, signing keys,
// campaigns and their kill switch, codes, tokens, customers) and what they
// read back, enriched with the ledger's figures (a campaign's use, a code's
// uses and balance, a customer's points and data export, conflicts,
// quarantine). The HTTP API (hub/api) calls it, and so will the console
// and webhook delivery: none of them keeps business logic of its own.
//
// Storage sits behind two small interfaces declared here, Catalog and
// Ledger, which store/catalog and store/ledger implement today (hub/
// wiring.go checks it) and a PostgreSQL store could implement later. The
// domain types are the catalog store's, named here through aliases, so
// that the adapters above import this package and no store.
//
// Every successful change of a tenant's catalog is reported through
// Options.OnChange with the tenant's new version (the hub announces the
// snapshot to the tenant's agents); a stop, through Options.OnStop (the hub
// recalls the agents' allowances of the campaign).
package manage

import (
	"context"
	"crypto/ed25519"
	"errors"

	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/protocol/catalog"
	"github.com/punchcard/punchcard/protocol/ledger"
	"github.com/punchcard/punchcard/protocol/snapshot"
)

// The domain types the service speaks, as its callers see them.
type (
	Actor           = catalog.Actor
	Key             = catalog.Key
	Role            = catalog.Role
	Tenant          = catalog.Tenant
	Agent           = catalog.Agent
	SigningKeyInfo  = catalog.SigningKeyInfo
	Campaign        = catalog.Campaign
	Code            = catalog.Code
	CodeSpec        = catalog.CodeSpec
	GenerateRequest = catalog.GenerateRequest
	Token           = catalog.Token
	TokenRequest    = catalog.TokenRequest
	Customer        = catalog.Customer
	CustomerData    = catalog.CustomerData
	AuditEntry      = catalog.AuditEntry

	CampaignBalance = ledger.CampaignBalance
	Conflict        = ledger.Conflict
	ConflictKind    = ledger.ConflictKind
	Quarantined     = ledger.Quarantined
	Report          = ledger.Report
	CustomerEntry   = ledger.CustomerEntry
)

// The roles of API keys (catalog.Role).
const (
	RolePlatform = catalog.RolePlatform
	RoleAdmin    = catalog.RoleAdmin
	RoleMarketer = catalog.RoleMarketer
	RoleSupport  = catalog.RoleSupport
	RoleReadOnly = catalog.RoleReadOnly
	RoleAgent    = catalog.RoleAgent
)

// Bounds.
const (
	MaxListLimit      = catalog.MaxListLimit      // items one list answer holds at most
	MaxIdempotencyKey = catalog.MaxIdempotencyKey // characters of an Idempotency-Key
)

// System is the actor of changes the hub makes itself.
var System = catalog.System

// MaskCode hides all but the end of a code or gift card number, for keys
// that may not read them in full.
func MaskCode(s string) string { return catalog.MaskCode(s) }

// MaskAudit masks the codes an audit entry names (MaskCode).
func MaskAudit(e AuditEntry) AuditEntry { return catalog.MaskAudit(e) }

// Catalog is what the service needs of the catalog store. Methods return
// *protocol.Error values with the codes they document in store/catalog
// (not_found, conflict, invalid_input, unauthenticated, …).
type Catalog interface {
	Health(ctx context.Context) error
	Version(ctx context.Context, tenant protocol.TenantID) (uint64, error)
	Authenticate(ctx context.Context, secret string) (Key, error)
	HubPublicKey(ctx context.Context) (ed25519.PublicKey, error)

	CreateTenant(ctx context.Context, actor Actor, t Tenant) (Tenant, error)
	Tenant(ctx context.Context, id protocol.TenantID) (Tenant, error)
	Tenants(ctx context.Context) ([]Tenant, error)
	Audit(ctx context.Context, tenant protocol.TenantID, after int64, limit int) ([]AuditEntry, error)

	Keys(ctx context.Context, tenant protocol.TenantID) ([]Key, error)
	CreateKey(ctx context.Context, actor Actor, tenant protocol.TenantID, role Role, name string) (Key, string, error)
	RevokeKey(ctx context.Context, actor Actor, tenant protocol.TenantID, id string) error

	Agents(ctx context.Context, tenant protocol.TenantID) ([]Agent, error)
	Agent(ctx context.Context, tenant protocol.TenantID, id protocol.AgentID) (Agent, error)
	RegisterAgent(ctx context.Context, actor Actor, a Agent) (Agent, string, error)
	RotateAgentSecret(ctx context.Context, actor Actor, tenant protocol.TenantID, id protocol.AgentID) (string, error)
	SetEnvelope(ctx context.Context, actor Actor, tenant protocol.TenantID, id protocol.AgentID, e snapshot.RiskEnvelope) (Agent, error)

	SigningKeys(ctx context.Context, tenant protocol.TenantID) ([]SigningKeyInfo, error)
	RotateSigningKey(ctx context.Context, actor Actor, tenant protocol.TenantID) (SigningKeyInfo, error)

	Campaigns(ctx context.Context, tenant protocol.TenantID, since uint64) ([]Campaign, error)
	Campaign(ctx context.Context, tenant protocol.TenantID, id protocol.CampaignID) (Campaign, error)
	CreateCampaign(ctx context.Context, actor Actor, tenant protocol.TenantID, doc []byte) (Campaign, error)
	UpdateCampaign(ctx context.Context, actor Actor, tenant protocol.TenantID, id protocol.CampaignID, doc []byte) (Campaign, error)
	StartCampaign(ctx context.Context, actor Actor, tenant protocol.TenantID, id protocol.CampaignID) (Campaign, error)
	StopCampaign(ctx context.Context, actor Actor, tenant protocol.TenantID, id protocol.CampaignID) (Campaign, error)

	Codes(ctx context.Context, tenant protocol.TenantID, campaign protocol.CampaignID, after string, limit int) ([]Code, error)
	Code(ctx context.Context, tenant protocol.TenantID, code string) (Code, error)
	GenerateCodes(ctx context.Context, actor Actor, tenant protocol.TenantID, campaign protocol.CampaignID, req GenerateRequest) ([]string, error)
	ImportCodes(ctx context.Context, actor Actor, tenant protocol.TenantID, campaign protocol.CampaignID, printed []string, spec CodeSpec) (int, error)
	RevokeCode(ctx context.Context, actor Actor, tenant protocol.TenantID, code string) (Code, error)

	IssueToken(ctx context.Context, actor Actor, tenant protocol.TenantID, req TokenRequest) (Token, error)
	Token(ctx context.Context, tenant protocol.TenantID, serial protocol.CodeID) (Token, error)
	RevokeToken(ctx context.Context, actor Actor, tenant protocol.TenantID, serial protocol.CodeID) (Token, error)

	Customers(ctx context.Context, tenant protocol.TenantID, after string, limit int) ([]Customer, error)
	Customer(ctx context.Context, tenant protocol.TenantID, id protocol.CustomerID) (Customer, error)
	CreateCustomer(ctx context.Context, actor Actor, tenant protocol.TenantID, cu Customer) (Customer, error)
	UpdateCustomer(ctx context.Context, actor Actor, tenant protocol.TenantID, cu Customer) (Customer, error)
	EraseCustomer(ctx context.Context, actor Actor, tenant protocol.TenantID, id protocol.CustomerID) (Customer, error)
	CustomerTokens(ctx context.Context, tenant protocol.TenantID, customer protocol.CustomerID, limit int) ([]Token, error)
	CustomerHistory(ctx context.Context, tenant protocol.TenantID, id protocol.CustomerID, limit int) ([]AuditEntry, error)
	CustomerData(ctx context.Context, tenant protocol.TenantID, id protocol.CustomerID) (CustomerData, error)
}

// Ledger is what the service reads of the ledger store: figures that
// enrich what the catalog holds, and the ledger's own lists.
type Ledger interface {
	Campaign(ctx context.Context, tenant protocol.TenantID, campaign protocol.CampaignID) (CampaignBalance, error)
	CodeUses(ctx context.Context, tenant protocol.TenantID, code protocol.CodeID) (int64, error)
	GiftCardSpent(ctx context.Context, tenant protocol.TenantID, code protocol.CodeID) (int64, error)
	GiftCardLoaded(ctx context.Context, tenant protocol.TenantID, code protocol.CodeID) (int64, error)
	Points(ctx context.Context, tenant protocol.TenantID, customer protocol.CustomerID) (int64, error)
	CustomerEntries(ctx context.Context, tenant protocol.TenantID, customer protocol.CustomerID, after int64, limit int) ([]CustomerEntry, error)
	Conflicts(ctx context.Context, tenant protocol.TenantID, after int64, limit int) ([]Conflict, error)
	Quarantine(ctx context.Context, tenant protocol.TenantID, after int64, limit int) ([]Quarantined, error)
	Verify(ctx context.Context) (Report, error)
}

// Options configure New.
type Options struct {
	// Ledger enriches answers with the ledger's figures; without it (nil)
	// they are left out and the ledger's own lists answer unavailable.
	Ledger Ledger
	// OnChange, when set, is called after every successful change of a
	// tenant's catalog with its new version. It must not block.
	OnChange func(tenant protocol.TenantID, version uint64)
	// OnStop, when set, is called after a campaign is stopped (also when
	// it was stopped already: a repeated recall is harmless and reaches
	// agents that missed the first). It must not block.
	OnStop func(tenant protocol.TenantID, campaign protocol.CampaignID)
}

// Service is the management service. Its methods are safe for concurrent
// use.
type Service struct {
	cat  Catalog
	opts Options
}

// New returns the service over cat.
func New(cat Catalog, opts Options) (*Service, error) {
	if cat == nil {
		return nil, errors.New("manage: a catalog is required")
	}
	return &Service{cat: cat, opts: opts}, nil
}

// HasLedger reports whether the ledger's figures are available.
func (s *Service) HasLedger() bool { return s.opts.Ledger != nil }

// changed reports a successful change of tenant's catalog.
func (s *Service) changed(ctx context.Context, tenant protocol.TenantID) {
	if s.opts.OnChange == nil {
		return
	}
	if v, err := s.cat.Version(ctx, tenant); err == nil {
		s.opts.OnChange(tenant, v)
	}
}

// needLedger returns CodeUnavailable when the service runs without a
// ledger.
func (s *Service) needLedger() error {
	if s.opts.Ledger == nil {
		return protocol.Errorf(protocol.CodeUnavailable, "the ledger is not available on this hub")
	}
	return nil
}

// page clamps a list's limit.
func page(limit int64) int { return int(min(max(limit, 0), MaxListLimit)) }

// Health checks that the catalog's database answers.
func (s *Service) Health(ctx context.Context) error { return s.cat.Health(ctx) }

// Authenticate returns the API key whose secret this is. Reason codes:
// unauthenticated.
func (s *Service) Authenticate(ctx context.Context, secret string) (Key, error) {
	return s.cat.Authenticate(ctx, secret)
}

// Version is the tenant's catalog version.
func (s *Service) Version(ctx context.Context, tenant protocol.TenantID) (uint64, error) {
	return s.cat.Version(ctx, tenant)
}

// HubKey is the hub's public key (protocol.FormatHubKey) that agents pin.
func (s *Service) HubKey(ctx context.Context) (string, error) {
	pub, err := s.cat.HubPublicKey(ctx)
	if err != nil {
		return "", err
	}
	return protocol.FormatHubKey(pub), nil
}

// IsBusy reports a store error that is another writer holding the
// database past every busy timeout: the caller may retry (503 +
// Retry-After at the HTTP API).
func IsBusy(err error) bool { return ledger.IsBusy(err) }
