package api

import (
	"net/http"

	"github.com/gofiber/fiber/v2"

	"github.com/punchcard/punchcard/hub/manage"
	"github.com/punchcard/punchcard/protocol"
)

// referralCodeRequest is the optional body of POST …/referral-code.
type referralCodeRequest struct {
	// Campaign is the referral program; empty = the tenant's only one.
	Campaign protocol.CampaignID `json:"campaign,omitempty"`
}

// referralCode is POST …/customers/{c}/referral-code: the customer's
// referral code, made on the first call (201) and the same one after
// (200).
func (s *Server) referralCode(c *fiber.Ctx, k manage.Key) error {
	var req referralCodeRequest
	if len(c.Body()) > 0 {
		if err := decodeJSON(c, &req); err != nil {
			return err
		}
	}
	out, err := s.mg.ReferralCode(c.UserContext(), k.Actor(), tenantOf(c), protocol.CustomerID(c.Params("customer")), req.Campaign)
	if err != nil {
		return err
	}
	st := http.StatusOK
	if out.Created {
		st = http.StatusCreated
	}
	return c.Status(st).JSON(out)
}
