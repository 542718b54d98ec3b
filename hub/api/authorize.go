package api

import (
	"github.com/gofiber/fiber/v2"

	"github.com/punchcard/punchcard/hub/manage"
	"github.com/punchcard/punchcard/protocol/decide"
)

// authorize answers a till that asks online first (decide.PathAuthorize):
// the online service decides with the till's registered store and holds
// what the decision uses for the till's (agent, txn_id).
func (s *Server) authorize(c *fiber.Ctx, k manage.Key) error {
	if err := s.needLedger(); err != nil {
		return err
	}
	var in decide.AuthorizeRequest
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	ctx := c.UserContext()
	ag, err := s.cat.Agent(ctx, k.Tenant, k.Agent)
	if err != nil {
		return err
	}
	out, err := s.online.Authorize(ctx, k.Tenant, k.Agent, ag.Store, in)
	if err != nil {
		return err
	}
	return c.JSON(out)
}
