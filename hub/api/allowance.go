package api

import (
	"github.com/gofiber/fiber/v2"

	"github.com/punchcard/punchcard/hub/manage"
	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/protocol/wire"
)

// The allowance routes translate between HTTP and hub/allowance.

func (s *Server) needAllowances() error {
	if s.allow == nil {
		return protocol.Errorf(protocol.CodeUnavailable, "this hub keeps no allowances")
	}
	return nil
}

// requestAllowance serves POST /v1/agent/allowances
// (wire.AllowanceRequest): a grant, idempotent per request_id.
func (s *Server) requestAllowance(c *fiber.Ctx, k manage.Key) error {
	if err := s.needAllowances(); err != nil {
		return err
	}
	var req wire.AllowanceRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	a, err := s.allow.Grant(c.UserContext(), k.Tenant, k.Agent, req)
	if err != nil {
		return err
	}
	return c.JSON(a)
}

// returnAllowance serves POST /v1/agent/allowances/return
// (wire.AllowanceReturn): unused allowance back to the pool.
func (s *Server) returnAllowance(c *fiber.Ctx, k manage.Key) error {
	if err := s.needAllowances(); err != nil {
		return err
	}
	var req wire.AllowanceReturn
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	a, err := s.allow.Return(c.UserContext(), k.Tenant, k.Agent, req)
	if err != nil {
		return err
	}
	return c.JSON(a)
}

// agentEscrow serves GET /v1/tenants/{t}/agents/{a}/allowances: what the
// till holds of each campaign as the hub sees it.
func (s *Server) agentEscrow(c *fiber.Ctx, _ manage.Key) error {
	if err := s.needAllowances(); err != nil {
		return err
	}
	id := protocol.AgentID(c.Params("agent"))
	if _, err := s.cat.Agent(c.UserContext(), tenantOf(c), id); err != nil {
		return err
	}
	als, err := s.allow.Escrow(c.UserContext(), tenantOf(c), id)
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"agent": id, "allowances": als})
}
