package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/punchcard/punchcard/hub/manage"
	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/protocol/snapshot"
	"github.com/punchcard/punchcard/protocol/wire"
)

// decodeJSON reads the request body strictly: unknown fields, trailing
// data and wrong types are refused with a CodeInvalidInput error naming
// the field.
func decodeJSON(c *fiber.Ctx, v any) error {
	body := c.Body()
	if len(bytes.TrimSpace(body)) == 0 {
		return protocol.FieldError("", "a JSON body is required")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return protocol.FieldError("", "the body has data after its JSON value")
	}
	return nil
}

func jsonError(err error) error {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	var pe *protocol.Error
	switch {
	case errors.As(err, &pe):
		return pe
	case errors.As(err, &se):
		return protocol.FieldError("", "the body is not valid JSON (at byte %d)", se.Offset)
	case errors.As(err, &te):
		return protocol.FieldError(te.Field, "%s must be a JSON %s", te.Field, jsonKind(te.Type.Kind().String()))
	case errors.Is(err, io.ErrUnexpectedEOF):
		return protocol.FieldError("", "the body ends in the middle of its JSON value")
	}
	msg := err.Error()
	if f, ok := strings.CutPrefix(msg, `json: unknown field "`); ok {
		f = strings.TrimSuffix(f, `"`)
		return protocol.FieldError(f, "unknown field %q", f)
	}
	return protocol.FieldError("", "the body cannot be read: %s", strings.TrimPrefix(msg, "json: "))
}

func jsonKind(k string) string {
	switch {
	case strings.HasPrefix(k, "int"), strings.HasPrefix(k, "uint"), strings.HasPrefix(k, "float"):
		return "number"
	case k == "struct", k == "map":
		return "object"
	case k == "slice", k == "array":
		return "array"
	}
	return k
}

func tenantOf(c *fiber.Ctx) protocol.TenantID { return protocol.TenantID(c.Params("tenant")) }

// queryInt reads an optional non-negative integer query parameter.
func queryInt(c *fiber.Ctx, name string) (int64, error) {
	v := c.Query(name)
	if v == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return 0, protocol.FieldError(name, "%s must be a non-negative integer", name)
	}
	return n, nil
}

func created(c *fiber.Ctx, v any) error { return c.Status(http.StatusCreated).JSON(v) }

// list is the envelope of every list answer.
type list[T any] struct {
	Items []T `json:"items"`
}

// --- tenants ---------------------------------------------------------

type tenantRequest struct {
	ID       protocol.TenantID `json:"id"`
	Name     string            `json:"name"`
	Currency protocol.Currency `json:"currency"`
	// AdminKeyName, when set, also creates the tenant's first admin key
	// and returns its secret once.
	AdminKeyName string `json:"admin_key_name,omitempty"`
}

type tenantResponse struct {
	manage.Tenant
	AdminKey    *manage.Key `json:"admin_key,omitempty"`
	AdminSecret string      `json:"admin_secret,omitempty"`
}

func (s *Server) createTenant(c *fiber.Ctx, k manage.Key) error {
	var req tenantRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	t, err := s.mg.CreateTenant(c.UserContext(), k.Actor(), manage.Tenant{ID: req.ID, Name: req.Name, Currency: req.Currency}, req.AdminKeyName)
	if err != nil {
		return err
	}
	return created(c, tenantResponse{Tenant: t.Tenant, AdminKey: t.AdminKey, AdminSecret: t.AdminSecret})
}

func (s *Server) listTenants(c *fiber.Ctx, _ manage.Key) error {
	ts, err := s.mg.Tenants(c.UserContext())
	if err != nil {
		return err
	}
	return c.JSON(list[manage.Tenant]{ts})
}

func (s *Server) getTenant(c *fiber.Ctx, _ manage.Key) error {
	t, err := s.mg.Tenant(c.UserContext(), tenantOf(c))
	if err != nil {
		return err
	}
	return c.JSON(t)
}

func (s *Server) listAudit(c *fiber.Ctx, k manage.Key) error {
	after, err := queryInt(c, "after")
	if err != nil {
		return err
	}
	limit, err := queryInt(c, "limit")
	if err != nil {
		return err
	}
	es, err := s.mg.Audit(c.UserContext(), tenantOf(c), after, limit)
	if err != nil {
		return err
	}
	if !seesCodes(k) {
		for i := range es {
			es[i] = manage.MaskAudit(es[i])
		}
	}
	return c.JSON(list[manage.AuditEntry]{es})
}

// ledgerPage reads the after and limit of a list of the tenant's ledger
// rows.
func ledgerPage(c *fiber.Ctx) (after, limit int64, err error) {
	if after, err = queryInt(c, "after"); err != nil {
		return 0, 0, err
	}
	limit, err = queryInt(c, "limit")
	return after, limit, err
}

func (s *Server) listConflicts(c *fiber.Ctx, k manage.Key) error {
	after, limit, err := ledgerPage(c)
	if err != nil {
		return err
	}
	cs, err := s.mg.Conflicts(c.UserContext(), tenantOf(c), after, limit)
	if err != nil {
		return err
	}
	out := conflictsOut(cs)
	if !seesCodes(k) {
		for i := range out {
			out[i].Code = protocol.CodeID(manage.MaskCode(string(out[i].Code)))
		}
	}
	return c.JSON(list[ledgerConflict]{out})
}

// listQuarantine lists the facts of the tenant's tills the ledger could
// not apply and kept in quarantine, with their bytes as received.
func (s *Server) listQuarantine(c *fiber.Ctx, _ manage.Key) error {
	after, limit, err := ledgerPage(c)
	if err != nil {
		return err
	}
	qs, err := s.mg.Quarantine(c.UserContext(), tenantOf(c), after, limit)
	if err != nil {
		return err
	}
	out := make([]quarantinedFact, len(qs))
	for i, q := range qs {
		out[i] = quarantinedFact{ID: q.ID, Redemption: protocol.RedemptionID{Agent: q.Agent, Seq: q.Seq}, Code: q.Code, Field: q.Field,
			Message: q.Message, Raw: q.Raw, At: q.At}
	}
	return c.JSON(list[quarantinedFact]{out})
}

// quarantinedFact is a quarantined fact as the API shows it. Raw is the
// fact's CBOR as the hub received it (base64 in JSON).
type quarantinedFact struct {
	ID         int64                 `json:"id"`
	Redemption protocol.RedemptionID `json:"redemption"`
	Code       protocol.Code         `json:"code"`
	Field      string                `json:"field,omitempty"`
	Message    string                `json:"message"`
	Raw        []byte                `json:"raw"`
	At         time.Time             `json:"received_at"`
}

func (s *Server) verifyLedger(c *fiber.Ctx, _ manage.Key) error {
	r, err := s.mg.VerifyLedger(c.UserContext())
	if err != nil {
		return err
	}
	type diff struct {
		Table   string `json:"table"`
		Key     string `json:"key"`
		Column  string `json:"column"`
		Journal int64  `json:"journal"`
		Balance int64  `json:"balance"`
	}
	out := struct {
		OK      bool   `json:"ok"`
		Entries int64  `json:"entries"`
		Rows    int    `json:"rows"`
		Diffs   []diff `json:"diffs"`
	}{OK: r.OK(), Entries: r.Entries, Rows: r.Rows, Diffs: []diff{}}
	for _, d := range r.Diffs {
		out.Diffs = append(out.Diffs, diff{d.Table, d.Key, d.Column, d.Journal, d.Balance})
	}
	return c.JSON(out)
}

// --- keys ------------------------------------------------------------

type keyRequest struct {
	Role manage.Role `json:"role"`
	Name string      `json:"name,omitempty"`
}

type keyResponse struct {
	manage.Key
	Secret string `json:"secret"`
}

func (s *Server) listKeys(c *fiber.Ctx, _ manage.Key) error {
	ks, err := s.mg.Keys(c.UserContext(), tenantOf(c))
	if err != nil {
		return err
	}
	return c.JSON(list[manage.Key]{ks})
}

func (s *Server) createKey(c *fiber.Ctx, k manage.Key) error {
	var req keyRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	nk, secret, err := s.mg.CreateKey(c.UserContext(), k.Actor(), tenantOf(c), req.Role, req.Name)
	if err != nil {
		return err
	}
	return created(c, keyResponse{nk, secret})
}

func (s *Server) revokeKey(c *fiber.Ctx, k manage.Key) error {
	if err := s.mg.RevokeKey(c.UserContext(), k.Actor(), tenantOf(c), c.Params("key")); err != nil {
		return err
	}
	return c.SendStatus(http.StatusNoContent)
}

// --- agents ----------------------------------------------------------

type agentRequest = wire.AgentRegistration

// agentResponse is an agent as the API answers it (wire.AgentCredentials).
type agentResponse = wire.AgentCredentials

func agentOut(a manage.Agent, secret string) agentResponse {
	return agentResponse{Tenant: a.Tenant, ID: a.ID, Store: a.Store, Envelope: a.Envelope, KeyID: a.KeyID, CreatedAt: a.CreatedAt,
		Secret: secret, MQTTUsername: wire.MQTTUsername(a.Tenant, a.ID)}
}

// withHubKey is agentOut with the hub's public key, for the answers that
// configure an agent (registration, new credentials, one agent).
func (s *Server) withHubKey(c *fiber.Ctx, a manage.Agent, secret string) (agentResponse, error) {
	out := agentOut(a, secret)
	var err error
	out.HubKey, err = s.mg.HubKey(c.UserContext())
	return out, err
}

// hubKeyResponse is GET /v1/hub-key.
type hubKeyResponse struct {
	HubKey string `json:"hub_key"`
}

func (s *Server) hubKey(c *fiber.Ctx, _ manage.Key) error {
	key, err := s.mg.HubKey(c.UserContext())
	if err != nil {
		return err
	}
	return c.JSON(hubKeyResponse{HubKey: key})
}

func (s *Server) listAgents(c *fiber.Ctx, _ manage.Key) error {
	as, err := s.mg.Agents(c.UserContext(), tenantOf(c))
	if err != nil {
		return err
	}
	out := make([]agentResponse, len(as))
	for i, a := range as {
		out[i] = agentOut(a, "")
	}
	return c.JSON(list[agentResponse]{out})
}

func (s *Server) registerAgent(c *fiber.Ctx, k manage.Key) error {
	var req agentRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	a := manage.Agent{Tenant: tenantOf(c), ID: req.ID, Store: req.Store}
	if req.Envelope != nil {
		a.Envelope = *req.Envelope
	}
	a, secret, err := s.mg.RegisterAgent(c.UserContext(), k.Actor(), a)
	if err != nil {
		return err
	}
	out, err := s.withHubKey(c, a, secret)
	if err != nil {
		return err
	}
	return created(c, out)
}

func (s *Server) getAgent(c *fiber.Ctx, _ manage.Key) error {
	a, err := s.mg.Agent(c.UserContext(), tenantOf(c), protocol.AgentID(c.Params("agent")))
	if err != nil {
		return err
	}
	out, err := s.withHubKey(c, a, "")
	if err != nil {
		return err
	}
	return c.JSON(out)
}

func (s *Server) rotateAgentSecret(c *fiber.Ctx, k manage.Key) error {
	a, secret, err := s.mg.RotateAgentSecret(c.UserContext(), k.Actor(), tenantOf(c), protocol.AgentID(c.Params("agent")))
	if err != nil {
		return err
	}
	out, err := s.withHubKey(c, a, secret)
	if err != nil {
		return err
	}
	return c.JSON(out)
}

func (s *Server) setEnvelope(c *fiber.Ctx, k manage.Key) error {
	var e snapshot.RiskEnvelope
	if err := decodeJSON(c, &e); err != nil {
		return err
	}
	a, err := s.mg.SetEnvelope(c.UserContext(), k.Actor(), tenantOf(c), protocol.AgentID(c.Params("agent")), e)
	if err != nil {
		return err
	}
	return c.JSON(agentOut(a, ""))
}

// --- signing keys ----------------------------------------------------

func (s *Server) listSigningKeys(c *fiber.Ctx, _ manage.Key) error {
	ks, err := s.mg.SigningKeys(c.UserContext(), tenantOf(c))
	if err != nil {
		return err
	}
	return c.JSON(list[manage.SigningKeyInfo]{ks})
}

func (s *Server) rotateSigningKey(c *fiber.Ctx, k manage.Key) error {
	info, err := s.mg.RotateSigningKey(c.UserContext(), k.Actor(), tenantOf(c))
	if err != nil {
		return err
	}
	return created(c, info)
}
