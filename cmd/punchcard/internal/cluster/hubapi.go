package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"

	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/protocol/rules"
	"github.com/punchcard/punchcard/protocol/snapshot"
	"github.com/punchcard/punchcard/protocol/wire"
)

// HubAPI is the head office's view of the hub: the HTTP API in docs/api.md.
// Request and answer shapes are declared here, from the documented JSON,
// rather than imported, so the demo reads like any outside client.
type HubAPI struct {
	C *Client
}

// As returns the API with another key.
func (h HubAPI) As(secret string) HubAPI { return HubAPI{C: h.C.WithToken(secret)} }

func tpath(t protocol.TenantID, rest string) string {
	return "/v1/tenants/" + url.PathEscape(string(t)) + rest
}

// Tenant is a brand.
type Tenant struct {
	ID          protocol.TenantID `json:"id"`
	Name        string            `json:"name"`
	Currency    protocol.Currency `json:"currency"`
	Version     uint64            `json:"version"`
	AdminSecret string            `json:"admin_secret,omitempty"`
}

// CreateTenant creates a brand and its first admin key (needs a platform
// key).
func (h HubAPI) CreateTenant(ctx context.Context, id protocol.TenantID, name string, cur protocol.Currency) (Tenant, error) {
	var t Tenant
	err := h.C.Do(ctx, http.MethodPost, "/v1/tenants", map[string]any{"id": id, "name": name, "currency": cur, "admin_key_name": "head office"}, &t)
	return t, err
}

// GetTenant returns a brand with its catalog version.
func (h HubAPI) GetTenant(ctx context.Context, id protocol.TenantID) (Tenant, error) {
	var t Tenant
	err := h.C.Do(ctx, http.MethodGet, tpath(id, ""), nil, &t)
	return t, err
}

// CreateKey makes an API key of a role ("marketer", "support", ...) and
// returns its secret.
func (h HubAPI) CreateKey(ctx context.Context, t protocol.TenantID, role, name string) (string, error) {
	var out struct {
		Secret string `json:"secret"`
	}
	err := h.C.Do(ctx, http.MethodPost, tpath(t, "/keys"), map[string]any{"role": role, "name": name}, &out)
	return out.Secret, err
}

// RegisteredAgent is an agent with its one-time secret.
type RegisteredAgent = wire.AgentCredentials

// RegisterAgent registers a till; env nil takes the hub's default risk
// envelope.
func (h HubAPI) RegisterAgent(ctx context.Context, t protocol.TenantID, id protocol.AgentID, st snapshot.Store, env *snapshot.RiskEnvelope) (RegisteredAgent, error) {
	var a RegisteredAgent
	err := h.C.Do(ctx, http.MethodPost, wire.AgentsPath(t), wire.AgentRegistration{ID: id, Store: st, Envelope: env}, &a)
	return a, err
}

// CreateCampaign creates a campaign (status as given) and returns the
// hub's copy.
func (h HubAPI) CreateCampaign(ctx context.Context, c rules.Campaign) (json.RawMessage, error) {
	var out json.RawMessage
	err := h.C.Do(ctx, http.MethodPost, tpath(c.Tenant, "/campaigns"), c, &out)
	return out, err
}

// StartCampaign switches a campaign on.
func (h HubAPI) StartCampaign(ctx context.Context, t protocol.TenantID, id protocol.CampaignID) error {
	return h.C.Do(ctx, http.MethodPost, tpath(t, "/campaigns/"+url.PathEscape(string(id))+"/start"), map[string]any{}, nil)
}

// StopCampaign is the kill switch.
func (h HubAPI) StopCampaign(ctx context.Context, t protocol.TenantID, id protocol.CampaignID) error {
	return h.C.Do(ctx, http.MethodPost, tpath(t, "/campaigns/"+url.PathEscape(string(id))+"/stop"), map[string]any{}, nil)
}

// CodeSpec is what every code of a batch gets.
type CodeSpec struct {
	Uses    int64              `json:"uses,omitempty"`
	Balance int64              `json:"balance,omitempty"`
	Stores  []protocol.StoreID `json:"stores,omitempty"`
	Group   string             `json:"group,omitempty"`
}

// ImportCodes adds printed codes to a campaign.
func (h HubAPI) ImportCodes(ctx context.Context, t protocol.TenantID, c protocol.CampaignID, printed []string, spec CodeSpec) error {
	body := map[string]any{"codes": printed}
	if spec.Uses != 0 {
		body["uses"] = spec.Uses
	}
	if spec.Balance != 0 {
		body["balance"] = spec.Balance
	}
	if len(spec.Stores) > 0 {
		body["stores"] = spec.Stores
	}
	if spec.Group != "" {
		body["group"] = spec.Group
	}
	return h.C.Do(ctx, http.MethodPost, tpath(t, "/campaigns/"+url.PathEscape(string(c))+"/codes/import"), body, nil)
}

// GenerateCodes makes count new codes of a pattern and returns them.
func (h HubAPI) GenerateCodes(ctx context.Context, t protocol.TenantID, c protocol.CampaignID, count int, pattern string, spec CodeSpec) ([]string, error) {
	body := map[string]any{"count": count, "pattern": pattern}
	if spec.Uses != 0 {
		body["uses"] = spec.Uses
	}
	if spec.Balance != 0 {
		body["balance"] = spec.Balance
	}
	var raw json.RawMessage
	if err := h.C.Do(ctx, http.MethodPost, tpath(t, "/campaigns/"+url.PathEscape(string(c))+"/codes/generate"), body, &raw); err != nil {
		return nil, err
	}
	return parseCodes(raw)
}

// parseCodes accepts {"codes":[...]} or {"items":[...]} of strings or of
// objects with "code".
func parseCodes(raw json.RawMessage) ([]string, error) {
	var env struct {
		Codes []json.RawMessage `json:"codes"`
		Items []json.RawMessage `json:"items"`
	}
	if err := json.Unmarshal(raw, &env); err != nil {
		return nil, fmt.Errorf("codes answer: %w", err)
	}
	items := append(env.Codes, env.Items...)
	var out []string
	for _, it := range items {
		var s string
		if json.Unmarshal(it, &s) == nil {
			out = append(out, s)
			continue
		}
		var o struct {
			Code string `json:"code"`
		}
		if err := json.Unmarshal(it, &o); err != nil || o.Code == "" {
			return nil, fmt.Errorf("codes answer: unexpected item %s", it)
		}
		out = append(out, o.Code)
	}
	return out, nil
}

// Customer is a customer record.
type Customer struct {
	ID         protocol.CustomerID `json:"id"`
	Name       string              `json:"name,omitempty"`
	Email      string              `json:"email,omitempty"`
	Segment    string              `json:"segment,omitempty"`
	Tier       string              `json:"tier,omitempty"`
	Attributes map[string]string   `json:"attributes,omitempty"`
}

// CreateCustomer creates a customer.
func (h HubAPI) CreateCustomer(ctx context.Context, t protocol.TenantID, c Customer) error {
	return h.C.Do(ctx, http.MethodPost, tpath(t, "/customers"), c, nil)
}

// Conflict is one recorded conflict as the hub reports it.
type Conflict map[string]any

// Conflicts lists a tenant's conflicts.
func (h HubAPI) Conflicts(ctx context.Context, t protocol.TenantID) ([]Conflict, error) {
	var out struct {
		Items []Conflict `json:"items"`
	}
	err := h.C.Do(ctx, http.MethodGet, tpath(t, "/conflicts"), nil, &out)
	return out.Items, err
}

// VerifyResult is the hub's ledger self-check.
type VerifyResult struct {
	OK      bool             `json:"ok"`
	Entries int64            `json:"entries"`
	Rows    int              `json:"rows"`
	Diffs   []map[string]any `json:"diffs"`
}

// VerifyLedger recomputes every balance from the journal (platform key).
func (h HubAPI) VerifyLedger(ctx context.Context) (VerifyResult, error) {
	var v VerifyResult
	err := h.C.Do(ctx, http.MethodGet, "/v1/ledger/verify", nil, &v)
	return v, err
}

// TokenRequest asks for a signed reward token.
type TokenRequest struct {
	Campaign   protocol.CampaignID `json:"campaign"`
	Customer   protocol.CustomerID `json:"customer,omitempty"`
	Uses       uint32              `json:"uses,omitempty"`
	Store      protocol.StoreID    `json:"store,omitempty"`
	StoreGroup string              `json:"store_group,omitempty"`
}

// Token is an issued token: its serial, its text (what the QR code holds)
// and where its QR code PNG is served.
type Token struct {
	Serial   protocol.CodeID     `json:"serial"`
	Campaign protocol.CampaignID `json:"campaign"`
	Customer protocol.CustomerID `json:"customer,omitempty"`
	Uses     int64               `json:"uses"`
	Text     string              `json:"text"`
	QRURL    string              `json:"qr_url,omitempty"`
}

// IssueToken signs a token.
func (h HubAPI) IssueToken(ctx context.Context, t protocol.TenantID, req TokenRequest) (Token, error) {
	var tok Token
	err := h.C.Do(ctx, http.MethodPost, tpath(t, "/tokens"), req, &tok)
	return tok, err
}

// TokenQR fetches a token's QR code as PNG bytes, as the hub renders it for
// an e-mail or the app.
func (h HubAPI) TokenQR(ctx context.Context, t protocol.TenantID, serial protocol.CodeID) ([]byte, error) {
	var png []byte
	err := h.C.Do(ctx, http.MethodGet, tpath(t, "/tokens/"+url.PathEscape(string(serial))+"/qr.png"), nil, &png)
	return png, err
}

// CampaignUse is what a campaign has used of its budget, and what is
// escrowed in the tills' allowances.
type CampaignUse struct {
	Count          int64 `json:"count"`
	Discount       int64 `json:"discount"`
	OrderValue     int64 `json:"order_value"`
	ReservedCount  int64 `json:"reserved_count"`
	ReservedAmount int64 `json:"reserved_amount"`
}

// CampaignState is a stored campaign with its use.
type CampaignState struct {
	Rules   rules.Campaign `json:"rules"`
	Version uint64         `json:"version"`
	Used    *CampaignUse   `json:"used,omitempty"`
}

// Campaign returns a campaign and what it has used.
func (h HubAPI) Campaign(ctx context.Context, t protocol.TenantID, id protocol.CampaignID) (CampaignState, error) {
	var c CampaignState
	err := h.C.Do(ctx, http.MethodGet, tpath(t, "/campaigns/"+url.PathEscape(string(id))), nil, &c)
	return c, err
}

// CodeState is a code with its uses and, for gift cards, what is left.
type CodeState struct {
	Key       protocol.CodeID     `json:"key"`
	Printed   string              `json:"code"`
	Campaign  protocol.CampaignID `json:"campaign"`
	Uses      int64               `json:"uses"`
	Balance   int64               `json:"balance,omitempty"`
	Used      *int64              `json:"used,omitempty"`
	Remaining *int64              `json:"remaining_balance,omitempty"`
}

// Escrow is what a till holds of each campaign as the hub sees it (GET
// /v1/tenants/{t}/agents/{a}/allowances).
func (h HubAPI) Escrow(ctx context.Context, t protocol.TenantID, agent protocol.AgentID) ([]protocol.Allowance, error) {
	var out struct {
		Allowances []protocol.Allowance `json:"allowances"`
	}
	err := h.C.Do(ctx, http.MethodGet, tpath(t, "/agents/"+url.PathEscape(string(agent))+"/allowances"), nil, &out)
	return out.Allowances, err
}

// Code returns a code's state.
func (h HubAPI) Code(ctx context.Context, t protocol.TenantID, code string) (CodeState, error) {
	var c CodeState
	err := h.C.Do(ctx, http.MethodGet, tpath(t, "/codes/"+url.PathEscape(code)), nil, &c)
	return c, err
}

// The web shop's bodies are the online API's (protocol/wire).
type (
	OnlineStore    = wire.OnlineStore
	Presented      = wire.Presented
	OnlineRequest  = wire.OnlineRequest
	OnlineResponse = wire.OnlineResponse
)

// Redeem redeems online (web shop, support desk) under an idempotency key.
func (h HubAPI) Redeem(ctx context.Context, t protocol.TenantID, key string, req OnlineRequest) (OnlineResponse, error) {
	var out OnlineResponse
	err := h.C.DoHeader(ctx, http.MethodPost, tpath(t, "/redeem"), http.Header{"Idempotency-Key": {key}}, req, &out)
	return out, err
}

// CustomerHistory is a customer with their points balance.
type CustomerHistory struct {
	Customer Customer `json:"customer"`
	Points   *int64   `json:"points,omitempty"`
}

// Customer returns a customer's history, with their points.
func (h HubAPI) Customer(ctx context.Context, t protocol.TenantID, id protocol.CustomerID) (CustomerHistory, error) {
	var out CustomerHistory
	err := h.C.Do(ctx, http.MethodGet, tpath(t, "/customers/"+url.PathEscape(string(id))+"/history"), nil, &out)
	return out, err
}

// Validate asks the hub what an online basket gets, without side effects.
func (h HubAPI) Validate(ctx context.Context, t protocol.TenantID, req OnlineRequest) (OnlineResponse, error) {
	var out OnlineResponse
	err := h.C.Do(ctx, http.MethodPost, tpath(t, "/validate"), req, &out)
	return out, err
}
