package catalog

import (
	"time"

	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/protocol/snapshot"
)

// Tenant is a brand or franchise: the unit of isolation.
type Tenant struct {
	ID        protocol.TenantID `json:"id"`
	Name      string            `json:"name"`
	Currency  protocol.Currency `json:"currency"`
	Version   uint64            `json:"version"`
	ChangedAt time.Time         `json:"changed_at"`
	CreatedAt time.Time         `json:"created_at"`
}

// SigningKeyInfo describes a tenant signing key without its private half.
type SigningKeyInfo struct {
	KID       protocol.KeyID `json:"kid"`
	Public    []byte         `json:"public"`
	CreatedAt time.Time      `json:"created_at"`
	RetiredAt time.Time      `json:"retired_at,omitzero"`
	NotAfter  time.Time      `json:"not_after,omitzero"`
}

// Agent is a registered agent daemon: one POS terminal in one store.
type Agent struct {
	Tenant    protocol.TenantID     `json:"tenant"`
	ID        protocol.AgentID      `json:"id"`
	Store     snapshot.Store        `json:"store"`
	Envelope  snapshot.RiskEnvelope `json:"envelope"`
	KeyID     string                `json:"key_id"`
	CreatedAt time.Time             `json:"created_at"`
}
