package api

import (
	"encoding/base64"

	"github.com/gofiber/fiber/v2"

	"github.com/punchcard/punchcard/hub/manage"
	"github.com/punchcard/punchcard/hub/online"
	"github.com/punchcard/punchcard/protocol"
)

// statementResponse is a points statement with its QR code.
type statementResponse struct {
	online.Statement
	// QRPNG is the statement's QR code, a PNG in standard base64.
	QRPNG string `json:"qr_png"`
}

// pointsStatement is POST …/customers/{c}/points-statement: a signed,
// short-lived statement of the customer's spendable points for their QR
// code (online.Service.IssueStatement). With Accept: image/png the answer
// is the QR code alone, the statement's serial in X-Statement-Serial.
func (s *Server) pointsStatement(c *fiber.Ctx, _ manage.Key) error {
	var req online.StatementRequest
	if len(c.Body()) > 0 {
		if err := decodeJSON(c, &req); err != nil {
			return err
		}
	}
	st, err := s.online.IssueStatement(c.UserContext(), tenantOf(c), protocol.CustomerID(c.Params("customer")), req)
	if err != nil {
		return err
	}
	png, err := s.cfg.QR.PNG(st.Text)
	if err != nil {
		return err
	}
	c.Set(fiber.HeaderCacheControl, "private, no-store")
	if c.Get(fiber.HeaderAccept) == "image/png" {
		c.Set("X-Statement-Serial", string(st.Serial))
		c.Set(fiber.HeaderContentType, "image/png")
		return c.Status(fiber.StatusCreated).Send(png)
	}
	return c.Status(fiber.StatusCreated).JSON(statementResponse{Statement: st, QRPNG: base64.StdEncoding.EncodeToString(png)})
}
