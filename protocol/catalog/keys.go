package catalog

import (
	"time"

	"github.com/punchcard/punchcard/protocol"
)

// Role is what an API key may do. The HTTP layer maps routes to the roles
// allowed on them; the catalog only stores the role.
type Role string

// Roles.
const (
	// RolePlatform runs the hub: creates tenants and their first keys. It
	// belongs to no tenant and may act on every tenant.
	RolePlatform Role = "platform"
	// RoleAdmin manages one tenant: keys, agents, signing keys, everything.
	RoleAdmin Role = "admin"
	// RoleMarketer manages campaigns, codes, tokens and customers.
	RoleMarketer Role = "marketer"
	// RoleSupport looks things up, issues "sorry" tokens, edits customers
	// and redeems on a customer's behalf; it cannot create campaigns.
	RoleSupport Role = "support"
	// RoleAgent is an agent daemon: its snapshot and its allowances only.
	RoleAgent Role = "agent"
	// RoleReadOnly reads everything of its tenant and changes nothing.
	RoleReadOnly Role = "read-only"
)

// Valid reports whether r is a role a key can be created with.
func (r Role) Valid() bool {
	switch r {
	case RolePlatform, RoleAdmin, RoleMarketer, RoleSupport, RoleAgent, RoleReadOnly:
		return true
	}
	return false
}

// Key is an API key as stored: never its secret, only the secret's hash.
type Key struct {
	ID        string            `json:"id"`
	Tenant    protocol.TenantID `json:"tenant,omitempty"`
	Role      Role              `json:"role"`
	Name      string            `json:"name,omitempty"`
	Agent     protocol.AgentID  `json:"agent,omitempty"`
	CreatedAt time.Time         `json:"created_at"`
	RevokedAt time.Time         `json:"revoked_at,omitzero"`
}

// Actor returns the actor that the key's changes are audited as.
func (k Key) Actor() Actor { return Actor{Tenant: k.Tenant, KeyID: k.ID, Role: k.Role} }
