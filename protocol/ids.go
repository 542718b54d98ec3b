package protocol

import (
	"fmt"
	"strings"
)

// Typed identifiers keep a store ID from being passed where a tenant ID is
// expected. They travel as plain strings in JSON and CBOR.
type (
	TenantID   string // a brand or franchise; the unit of isolation
	StoreID    string // a physical store (or an online channel) of a tenant
	AgentID    string // one agent daemon, usually one POS terminal
	CampaignID string // a campaign: rules, rewards and limits
	CodeID     string // a plain code ("SUMMER10") or a token serial
	CustomerID string // a customer known to the tenant
	KeyID      string // a signing key identifier (COSE kid)
)

// MaxIDLen bounds every identifier. IDs appear in MQTT topic names and
// SQLite keys, so they are short and use a topic-safe alphabet.
const MaxIDLen = 64

// ValidateID reports whether s is a usable identifier: 1 to MaxIDLen
// characters from A-Z, a-z, 0-9, '-', '_' and '.'. The field argument names
// the field in the returned error.
func ValidateID(field, s string) error {
	if s == "" {
		return Errorf(CodeInvalidInput, "%s is required", field)
	}
	if len(s) > MaxIDLen {
		return Errorf(CodeInvalidInput, "%s is longer than %d characters", field, MaxIDLen)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_', c == '.':
		default:
			return Errorf(CodeInvalidInput, "%s contains %q; use letters, digits, '-', '_' or '.'", field, string(rune(c)))
		}
	}
	return nil
}

// RedemptionID identifies a redemption for ever: the agent that made it and
// that agent's sequence number. The hub applies each RedemptionID once.
// Online redemptions made by the hub use the hub's own pseudo-agent ID.
type RedemptionID struct {
	Agent AgentID `json:"agent" cbor:"1,keyasint"`
	Seq   uint64  `json:"seq" cbor:"2,keyasint"`
}

func (id RedemptionID) String() string { return fmt.Sprintf("%s/%d", id.Agent, id.Seq) }

// ReservedIdentities are names no tenant or agent may take, compared
// without regard to case: the hub's own sender and agent ID (HubSender),
// the hub's default MQTT username and client ID, and the topic root.
var ReservedIdentities = []string{string(HubSender), "punchcard", "punchcard-hub"}

// ValidateIdentity is ValidateID for the IDs that name a broker identity,
// tenants and agents: they become MQTT topic levels, the agent's username
// "<tenant>/<agent>" and its client ID, so they are restricted to what
// every supported broker accepts there (the embedded one, Mosquitto, NATS
// 2.15's MQTT, which refuses '.' in client IDs): 1 to MaxIDLen letters,
// digits, '-' and '_', and none of ReservedIdentities. It is checked when
// a tenant is created or an agent registered; IDs registered before this
// rule keep working. It returns CodeInvalidInput with field named.
func ValidateIdentity(field, s string) error {
	if err := ValidateID(field, s); err != nil {
		return err
	}
	if i := strings.IndexByte(s, '.'); i >= 0 {
		return Errorf(CodeInvalidInput, "%s contains %q; use letters, digits, '-' or '_' (it is part of MQTT topics and client IDs)", field, ".")
	}
	for _, r := range ReservedIdentities {
		if strings.EqualFold(s, r) {
			return Errorf(CodeInvalidInput, "%s %q is reserved", field, s)
		}
	}
	return nil
}
