// Package wire is the HTTP contract between agent and hub: the paths of
// the hub's agent routes, their query parameters, headers and media types,
// the JSON bodies that cross, and the one error body both HTTP APIs (the
// hub's and the agent's POS API) answer with (Problem). hub/api serves it,
// agent/uplink and the test harness speak it; neither declares its own
// copy. The MQTT messages are protocol's (messages.go).
package wire

import (
	"net/url"
	"strings"
	"time"

	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/protocol/snapshot"
)

// The hub's agent routes. An agent authenticates with its own key
// (Authorization: Bearer <secret>); the tenant and agent come from the key.
const (
	// PathSnapshot: GET, the agent's snapshot as CBOR (JSON with Accept:
	// application/json); query QuerySince and QueryUses; ETag and
	// If-None-Match; the version in HeaderSnapshotVersion.
	PathSnapshot = "/v1/agent/snapshot"
	// PathAllowances: POST AllowanceRequest, answered with the
	// protocol.Allowance granted.
	PathAllowances = "/v1/agent/allowances"
	// PathAllowanceReturn: POST AllowanceReturn, answered with the
	// protocol.Allowance the agent still holds.
	PathAllowanceReturn = "/v1/agent/allowances/return"
)

// Query parameters and headers of PathSnapshot.
const (
	QuerySince            = "since"     // the catalog version the agent holds; absent or 0: a full snapshot
	QueryUses             = "uses"      // the agent's code-use position (snapshot.Snapshot.Uses)
	QueryCustomers        = "customers" // the agent's customer-state position (snapshot.Snapshot.Customers)
	HeaderSnapshotVersion = "X-Snapshot-Version"
)

// Media types.
const (
	ContentTypeJSON    = "application/json"
	ContentTypeCBOR    = "application/cbor"
	ContentTypeProblem = "application/problem+json" // RFC 9457, every error answer
)

// SnapshotPath is PathSnapshot with the agent's position.
func SnapshotPath(since, uses uint64, hasUses bool) string {
	q := url.Values{}
	if since > 0 {
		q.Set(QuerySince, uitoa(since))
	}
	if hasUses {
		q.Set(QueryUses, uitoa(uses))
	}
	if len(q) == 0 {
		return PathSnapshot
	}
	return PathSnapshot + "?" + q.Encode()
}

// SnapshotPathCustomers is SnapshotPath with the agent's customer-state
// position too (a delta only: since > 0).
func SnapshotPathCustomers(since, uses uint64, hasUses bool, customers uint64) string {
	p := SnapshotPath(since, uses, hasUses)
	if since == 0 {
		return p
	}
	sep := "?"
	if strings.Contains(p, "?") {
		sep = "&"
	}
	return p + sep + QueryCustomers + "=" + uitoa(customers)
}

func uitoa(v uint64) string {
	var b [20]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + v%10)
		v /= 10
		if v == 0 {
			return string(b[i:])
		}
	}
}

// AllowanceRequest asks the hub to top up the agent's allowance of one
// campaign (PathAllowances). RequestID, chosen by the till, makes it
// idempotent: a retry with the same id (after a lost answer) gets the same
// grant back, never a second one.
type AllowanceRequest struct {
	Campaign  protocol.CampaignID `json:"campaign"`
	RequestID string              `json:"request_id,omitempty"`
}

// AllowanceReturn gives unused allowance back to the campaign's pool
// (PathAllowanceReturn). Count and Amount are not negative.
type AllowanceReturn struct {
	Campaign protocol.CampaignID `json:"campaign"`
	Count    int64               `json:"count"`
	Amount   int64               `json:"amount"`
}

// AgentsPath is the tenant's agents route: POST AgentRegistration (an
// admin key) registers a till, answered with AgentCredentials.
func AgentsPath(tenant protocol.TenantID) string {
	return "/v1/tenants/" + url.PathEscape(string(tenant)) + "/agents"
}

// AgentRegistration registers a till's agent.
type AgentRegistration struct {
	ID    protocol.AgentID `json:"id"`
	Store snapshot.Store   `json:"store"`
	// Envelope is what the till may accept offline; nil takes the hub's
	// default in the tenant's currency.
	Envelope *snapshot.RiskEnvelope `json:"envelope,omitempty"`
}

// AgentCredentials is a registered agent as the hub answers it, with, on
// registration and new credentials, what the agent is configured with.
type AgentCredentials struct {
	Tenant    protocol.TenantID     `json:"tenant"`
	ID        protocol.AgentID      `json:"id"`
	Store     snapshot.Store        `json:"store"`
	Envelope  snapshot.RiskEnvelope `json:"envelope"`
	KeyID     string                `json:"key_id"`
	CreatedAt time.Time             `json:"created_at"`
	// Secret is the agent's API key and MQTT password, shown once.
	Secret string `json:"secret,omitempty"`
	// MQTTUsername is what the agent logs in to the broker with
	// (MQTTUsername), and its MQTT client ID.
	MQTTUsername string `json:"mqtt_username"`
	// HubKey is the hub's public key (protocol.FormatHubKey) that the
	// agent pins (-hub-key) to verify every message the hub sends down.
	HubKey string `json:"hub_key,omitempty"`
}

// MQTTUsername is the broker username of an agent: "tenant/agent".
func MQTTUsername(tenant protocol.TenantID, agent protocol.AgentID) string {
	return string(tenant) + "/" + string(agent)
}
