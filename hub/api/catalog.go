package api

import (
	"net/http"

	"github.com/gofiber/fiber/v2"

	"github.com/punchcard/punchcard/hub/manage"
	"github.com/punchcard/punchcard/protocol"
)

// --- campaigns -------------------------------------------------------

// campaignResponse is a stored campaign with, when the ledger is there,
// what it has used so far.
type campaignResponse struct {
	manage.Campaign
	Used *campaignUse `json:"used,omitempty"`
}

type campaignUse struct {
	Count          int64 `json:"count"`
	Discount       int64 `json:"discount"`
	OrderValue     int64 `json:"order_value"`
	ReservedCount  int64 `json:"reserved_count"`  // escrowed in agents' allowances
	ReservedAmount int64 `json:"reserved_amount"` // escrowed in agents' allowances
}

func (s *Server) listCampaigns(c *fiber.Ctx, _ manage.Key) error {
	since, err := queryInt(c, "since")
	if err != nil {
		return err
	}
	cps, err := s.mg.Campaigns(c.UserContext(), tenantOf(c), uint64(since))
	if err != nil {
		return err
	}
	return c.JSON(list[manage.Campaign]{cps})
}

func (s *Server) createCampaign(c *fiber.Ctx, k manage.Key) error {
	cp, err := s.mg.CreateCampaign(c.UserContext(), k.Actor(), tenantOf(c), c.Body())
	if err != nil {
		return err
	}
	return created(c, cp)
}

func (s *Server) getCampaign(c *fiber.Ctx, _ manage.Key) error {
	v, err := s.mg.Campaign(c.UserContext(), tenantOf(c), protocol.CampaignID(c.Params("campaign")))
	if err != nil {
		return err
	}
	out := campaignResponse{Campaign: v.Campaign}
	if b := v.Used; b != nil {
		out.Used = &campaignUse{b.Count, b.Discount, b.OrderValue, b.ReservedCount, b.ReservedAmount}
	}
	return c.JSON(out)
}

func (s *Server) updateCampaign(c *fiber.Ctx, k manage.Key) error {
	cp, err := s.mg.UpdateCampaign(c.UserContext(), k.Actor(), tenantOf(c), protocol.CampaignID(c.Params("campaign")), c.Body())
	if err != nil {
		return err
	}
	return c.JSON(cp)
}

func (s *Server) startCampaign(c *fiber.Ctx, k manage.Key) error {
	cp, err := s.mg.StartCampaign(c.UserContext(), k.Actor(), tenantOf(c), protocol.CampaignID(c.Params("campaign")))
	if err != nil {
		return err
	}
	return c.JSON(cp)
}

func (s *Server) stopCampaign(c *fiber.Ctx, k manage.Key) error {
	cp, err := s.mg.StopCampaign(c.UserContext(), k.Actor(), tenantOf(c), protocol.CampaignID(c.Params("campaign")))
	if err != nil {
		return err
	}
	return c.JSON(cp)
}

// --- codes -----------------------------------------------------------

// seesCodes reports whether key k may read gift card numbers and codes of
// limited use in full: the roles that manage codes. Others (support,
// read-only) get them masked (manage.Code.Mask).
func seesCodes(k manage.Key) bool { return hasRole(rolesMarketer, k.Role) }

func (s *Server) listCodes(c *fiber.Ctx, k manage.Key) error {
	limit, err := queryInt(c, "limit")
	if err != nil {
		return err
	}
	cs, err := s.mg.Codes(c.UserContext(), tenantOf(c), protocol.CampaignID(c.Params("campaign")), c.Query("after"), limit)
	if err != nil {
		return err
	}
	if !seesCodes(k) {
		for i := range cs {
			cs[i] = cs[i].Mask()
		}
	}
	return c.JSON(list[manage.Code]{cs})
}

type generateResponse struct {
	Codes []string `json:"codes"`
}

func (s *Server) generateCodes(c *fiber.Ctx, k manage.Key) error {
	var req manage.GenerateRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	out, err := s.mg.GenerateCodes(c.UserContext(), k.Actor(), tenantOf(c), protocol.CampaignID(c.Params("campaign")), req)
	if err != nil {
		return err
	}
	return created(c, generateResponse{out})
}

type importRequest struct {
	Codes []string `json:"codes"`
	manage.CodeSpec
}

type importResponse struct {
	Imported int `json:"imported"`
}

func (s *Server) importCodes(c *fiber.Ctx, k manage.Key) error {
	var req importRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	n, err := s.mg.ImportCodes(c.UserContext(), k.Actor(), tenantOf(c), protocol.CampaignID(c.Params("campaign")), req.Codes, req.CodeSpec)
	if err != nil {
		return err
	}
	return created(c, importResponse{n})
}

// codeResponse is a code with, when the ledger is there, its uses and
// (gift cards) its balance.
type codeResponse struct {
	manage.Code
	Used      *int64 `json:"used,omitempty"`
	Remaining *int64 `json:"remaining_balance,omitempty"`
}

func (s *Server) getCode(c *fiber.Ctx, k manage.Key) error {
	v, err := s.mg.Code(c.UserContext(), tenantOf(c), c.Params("code"))
	if err != nil {
		return err
	}
	out := codeResponse{Code: v.Code, Used: v.Used, Remaining: v.Remaining}
	if !seesCodes(k) {
		out.Code = v.Code.Mask()
	}
	return c.JSON(out)
}

func (s *Server) revokeCode(c *fiber.Ctx, k manage.Key) error {
	cd, err := s.mg.RevokeCode(c.UserContext(), k.Actor(), tenantOf(c), c.Params("code"))
	if err != nil {
		return err
	}
	return c.JSON(cd)
}

// --- tokens ----------------------------------------------------------

type tokenResponse struct {
	manage.Token
	QRURL string `json:"qr_url,omitempty"`
}

func tokenOut(c *fiber.Ctx, t manage.Token, k manage.Key) tokenResponse {
	if k.Role == manage.RoleReadOnly || t.Text == "" {
		// The text is a bearer credential: whoever holds it can redeem.
		// An erased customer's tokens have none left.
		t.Text = ""
		return tokenResponse{Token: t}
	}
	return tokenResponse{Token: t, QRURL: "/v1/tenants/" + c.Params("tenant") + "/tokens/" + string(t.Serial) + "/qr.png"}
}

func (s *Server) issueToken(c *fiber.Ctx, k manage.Key) error {
	var req manage.TokenRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	t, err := s.mg.IssueToken(c.UserContext(), k.Actor(), tenantOf(c), req)
	if err != nil {
		return err
	}
	return created(c, tokenOut(c, t, k))
}

func (s *Server) getToken(c *fiber.Ctx, k manage.Key) error {
	t, err := s.mg.Token(c.UserContext(), tenantOf(c), protocol.CodeID(c.Params("serial")))
	if err != nil {
		return err
	}
	return c.JSON(tokenOut(c, t, k))
}

func (s *Server) tokenQR(c *fiber.Ctx, _ manage.Key) error {
	t, err := s.mg.Token(c.UserContext(), tenantOf(c), protocol.CodeID(c.Params("serial")))
	if err != nil {
		return err
	}
	if t.Text == "" {
		return protocol.Errorf(protocol.CodeConflict, "token %q was erased with its customer's data", t.Serial)
	}
	png, err := s.cfg.QR.PNG(t.Text)
	if err != nil {
		return err
	}
	c.Set(fiber.HeaderContentType, "image/png")
	c.Set(fiber.HeaderCacheControl, "private, no-store")
	return c.Send(png)
}

func (s *Server) revokeToken(c *fiber.Ctx, k manage.Key) error {
	t, err := s.mg.RevokeToken(c.UserContext(), k.Actor(), tenantOf(c), protocol.CodeID(c.Params("serial")))
	if err != nil {
		return err
	}
	return c.JSON(tokenOut(c, t, k))
}

// --- customers -------------------------------------------------------

type customerRequest struct {
	ID         protocol.CustomerID `json:"id"`
	Email      string              `json:"email,omitempty"`
	Name       string              `json:"name,omitempty"`
	Phone      string              `json:"phone,omitempty"`
	Segment    string              `json:"segment,omitempty"`
	Tier       string              `json:"tier,omitempty"`
	Attributes map[string]string   `json:"attributes,omitempty"`
}

func (r customerRequest) customer() manage.Customer {
	return manage.Customer{ID: r.ID, Email: r.Email, Name: r.Name, Phone: r.Phone, Segment: r.Segment, Tier: r.Tier, Attributes: r.Attributes}
}

func (s *Server) listCustomers(c *fiber.Ctx, _ manage.Key) error {
	limit, err := queryInt(c, "limit")
	if err != nil {
		return err
	}
	cs, err := s.mg.Customers(c.UserContext(), tenantOf(c), c.Query("after"), limit)
	if err != nil {
		return err
	}
	return c.JSON(list[manage.Customer]{cs})
}

func (s *Server) createCustomer(c *fiber.Ctx, k manage.Key) error {
	var req customerRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	cu, err := s.mg.CreateCustomer(c.UserContext(), k.Actor(), tenantOf(c), req.customer())
	if err != nil {
		return err
	}
	return created(c, cu)
}

func (s *Server) getCustomer(c *fiber.Ctx, _ manage.Key) error {
	cu, err := s.mg.Customer(c.UserContext(), tenantOf(c), protocol.CustomerID(c.Params("customer")))
	if err != nil {
		return err
	}
	return c.JSON(cu)
}

func (s *Server) updateCustomer(c *fiber.Ctx, k manage.Key) error {
	var req customerRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	id := protocol.CustomerID(c.Params("customer"))
	if req.ID == "" {
		req.ID = id
	}
	if req.ID != id {
		return protocol.FieldError("id", "id must be %q, the customer being updated", id)
	}
	cu, err := s.mg.UpdateCustomer(c.UserContext(), k.Actor(), tenantOf(c), req.customer())
	if err != nil {
		return err
	}
	return c.JSON(cu)
}

func (s *Server) eraseCustomer(c *fiber.Ctx, k manage.Key) error {
	cu, err := s.mg.EraseCustomer(c.UserContext(), k.Actor(), tenantOf(c), protocol.CustomerID(c.Params("customer")))
	if err != nil {
		return err
	}
	return c.Status(http.StatusOK).JSON(cu)
}

type historyResponse struct {
	Customer manage.Customer     `json:"customer"`
	Points   *int64              `json:"points,omitempty"`
	Tokens   []tokenResponse     `json:"tokens"`
	Changes  []manage.AuditEntry `json:"changes"`
	// Lots and Expiring: which points expire when (issue 12).
	Lots     []manage.PointsLot `json:"lots,omitempty"`
	Expiring []manage.Expiring  `json:"expiring,omitempty"`
	// Activity, Conflicts and Next: one page of the customer's ledger
	// activity, newest first (support.go; ?cursor=&limit=). Tier changes
	// and purchases belong next to them.
	Activity  []manage.HistoryEntry `json:"activity,omitempty"`
	Conflicts []ledgerConflict      `json:"conflicts,omitempty"`
	Next      string                `json:"next_cursor,omitempty"`
}

func (s *Server) customerHistory(c *fiber.Ctx, k manage.Key) error {
	h, err := s.mg.CustomerHistory(c.UserContext(), tenantOf(c), protocol.CustomerID(c.Params("customer")))
	if err != nil {
		return err
	}
	out := historyResponse{Customer: h.Customer, Points: h.Points, Tokens: []tokenResponse{}, Changes: h.Changes, Lots: h.Lots, Expiring: h.Expiring}
	for _, t := range h.Tokens {
		out.Tokens = append(out.Tokens, tokenOut(c, t, k))
	}
	if err := s.activity(c, k, &out); err != nil {
		return err
	}
	return c.JSON(out)
}

// --- tiers -----------------------------------------------------------

func (s *Server) getTierProgram(c *fiber.Ctx, _ manage.Key) error {
	p, err := s.mg.TierProgram(c.UserContext(), tenantOf(c))
	if err != nil {
		return err
	}
	return c.JSON(p)
}

func (s *Server) setTierProgram(c *fiber.Ctx, k manage.Key) error {
	var req manage.TierProgram
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	p, err := s.mg.SetTierProgram(c.UserContext(), k.Actor(), tenantOf(c), req)
	if err != nil {
		return err
	}
	return c.JSON(p)
}

func (s *Server) customerTier(c *fiber.Ctx, _ manage.Key) error {
	st, err := s.mg.CustomerTiers(c.UserContext(), tenantOf(c), protocol.CustomerID(c.Params("customer")))
	if err != nil {
		return err
	}
	return c.JSON(st)
}
