package manage

import (
	"context"

	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/protocol/snapshot"
)

// TenantCreated is a new tenant with, when asked for, its first admin key
// and that key's secret (shown once).
type TenantCreated struct {
	Tenant      Tenant
	AdminKey    *Key
	AdminSecret string
}

// CreateTenant creates a tenant and, when adminKeyName is set, its first
// admin key. Reason codes: invalid_input, conflict.
func (s *Service) CreateTenant(ctx context.Context, actor Actor, t Tenant, adminKeyName string) (TenantCreated, error) {
	t, err := s.cat.CreateTenant(ctx, actor, t)
	if err != nil {
		return TenantCreated{}, err
	}
	out := TenantCreated{Tenant: t}
	if adminKeyName != "" {
		ak, secret, err := s.cat.CreateKey(ctx, actor, t.ID, RoleAdmin, adminKeyName)
		if err != nil {
			return out, err
		}
		out.AdminKey, out.AdminSecret = &ak, secret
		if out.Tenant, err = s.cat.Tenant(ctx, t.ID); err != nil {
			return out, err
		}
	}
	return out, nil
}

// Tenants lists every tenant.
func (s *Service) Tenants(ctx context.Context) ([]Tenant, error) { return s.cat.Tenants(ctx) }

// Tenant returns one tenant. Reason codes: not_found.
func (s *Service) Tenant(ctx context.Context, id protocol.TenantID) (Tenant, error) {
	return s.cat.Tenant(ctx, id)
}

// Audit lists the tenant's audit entries after the ID after, at most limit
// (MaxListLimit). Reason codes: not_found (the tenant).
func (s *Service) Audit(ctx context.Context, tenant protocol.TenantID, after, limit int64) ([]AuditEntry, error) {
	if _, err := s.cat.Tenant(ctx, tenant); err != nil {
		return nil, err
	}
	return s.cat.Audit(ctx, tenant, after, page(limit))
}

// Conflicts lists the conflicts the ledger recorded for the tenant's
// facts. Reason codes: unavailable (no ledger), not_found (the tenant).
func (s *Service) Conflicts(ctx context.Context, tenant protocol.TenantID, after, limit int64) ([]Conflict, error) {
	if err := s.ledgerTenant(ctx, tenant); err != nil {
		return nil, err
	}
	return s.opts.Ledger.Conflicts(ctx, tenant, after, page(limit))
}

// Quarantine lists the facts of the tenant's tills the ledger could not
// apply and kept, with their bytes as received. Reason codes: unavailable,
// not_found.
func (s *Service) Quarantine(ctx context.Context, tenant protocol.TenantID, after, limit int64) ([]Quarantined, error) {
	if err := s.ledgerTenant(ctx, tenant); err != nil {
		return nil, err
	}
	return s.opts.Ledger.Quarantine(ctx, tenant, after, page(limit))
}

func (s *Service) ledgerTenant(ctx context.Context, tenant protocol.TenantID) error {
	if err := s.needLedger(); err != nil {
		return err
	}
	_, err := s.cat.Tenant(ctx, tenant)
	return err
}

// VerifyLedger recomputes the ledger's balances from its journal. Reason
// codes: unavailable.
func (s *Service) VerifyLedger(ctx context.Context) (Report, error) {
	if err := s.needLedger(); err != nil {
		return Report{}, err
	}
	return s.opts.Ledger.Verify(ctx)
}

// --- API keys ------------------------------------------------------------

// Keys lists the tenant's API keys. Reason codes: not_found.
func (s *Service) Keys(ctx context.Context, tenant protocol.TenantID) ([]Key, error) {
	if _, err := s.cat.Tenant(ctx, tenant); err != nil {
		return nil, err
	}
	return s.cat.Keys(ctx, tenant)
}

// CreateKey creates an API key of the tenant and returns its secret, shown
// once. Platform keys are made only by the hub's bootstrap. Reason codes:
// invalid_input, not_found.
func (s *Service) CreateKey(ctx context.Context, actor Actor, tenant protocol.TenantID, role Role, name string) (Key, string, error) {
	if role == RolePlatform {
		return Key{}, "", protocol.FieldError("role", "platform keys are made by the hub's bootstrap, not through a tenant")
	}
	k, secret, err := s.cat.CreateKey(ctx, actor, tenant, role, name)
	if err != nil {
		return Key{}, "", err
	}
	s.changed(ctx, tenant)
	return k, secret, nil
}

// RevokeKey revokes an API key. Reason codes: not_found.
func (s *Service) RevokeKey(ctx context.Context, actor Actor, tenant protocol.TenantID, id string) error {
	if err := s.cat.RevokeKey(ctx, actor, tenant, id); err != nil {
		return err
	}
	s.changed(ctx, tenant)
	return nil
}

// --- agents --------------------------------------------------------------

// Agents lists the tenant's agents. Reason codes: not_found.
func (s *Service) Agents(ctx context.Context, tenant protocol.TenantID) ([]Agent, error) {
	if _, err := s.cat.Tenant(ctx, tenant); err != nil {
		return nil, err
	}
	return s.cat.Agents(ctx, tenant)
}

// Agent returns one agent. Reason codes: not_found.
func (s *Service) Agent(ctx context.Context, tenant protocol.TenantID, id protocol.AgentID) (Agent, error) {
	return s.cat.Agent(ctx, tenant, id)
}

// RegisterAgent registers a till's agent and returns its secret (its API
// key and MQTT password), shown once. Reason codes: invalid_input,
// conflict, not_found.
func (s *Service) RegisterAgent(ctx context.Context, actor Actor, a Agent) (Agent, string, error) {
	a, secret, err := s.cat.RegisterAgent(ctx, actor, a)
	if err != nil {
		return Agent{}, "", err
	}
	s.changed(ctx, a.Tenant)
	return a, secret, nil
}

// RotateAgentSecret gives an agent a new secret, shown once; the old one
// stops working. Reason codes: not_found.
func (s *Service) RotateAgentSecret(ctx context.Context, actor Actor, tenant protocol.TenantID, id protocol.AgentID) (Agent, string, error) {
	secret, err := s.cat.RotateAgentSecret(ctx, actor, tenant, id)
	if err != nil {
		return Agent{}, "", err
	}
	s.changed(ctx, tenant)
	a, err := s.cat.Agent(ctx, tenant, id)
	return a, secret, err
}

// SetEnvelope sets an agent's risk envelope (what it may accept offline).
// Reason codes: invalid_input, not_found.
func (s *Service) SetEnvelope(ctx context.Context, actor Actor, tenant protocol.TenantID, id protocol.AgentID, e snapshot.RiskEnvelope) (Agent, error) {
	a, err := s.cat.SetEnvelope(ctx, actor, tenant, id, e)
	if err != nil {
		return Agent{}, err
	}
	s.changed(ctx, tenant)
	return a, nil
}

// --- signing keys --------------------------------------------------------

// SigningKeys lists the tenant's token signing keys (public parts).
// Reason codes: not_found.
func (s *Service) SigningKeys(ctx context.Context, tenant protocol.TenantID) ([]SigningKeyInfo, error) {
	if _, err := s.cat.Tenant(ctx, tenant); err != nil {
		return nil, err
	}
	return s.cat.SigningKeys(ctx, tenant)
}

// RotateSigningKey makes a new token signing key current. Reason codes:
// not_found.
func (s *Service) RotateSigningKey(ctx context.Context, actor Actor, tenant protocol.TenantID) (SigningKeyInfo, error) {
	info, err := s.cat.RotateSigningKey(ctx, actor, tenant)
	if err != nil {
		return SigningKeyInfo{}, err
	}
	s.changed(ctx, tenant)
	return info, nil
}
