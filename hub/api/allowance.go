package api

import (
	"slices"

	"github.com/gofiber/fiber/v2"

	"github.com/punchcard/punchcard/hub/allowance"
	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/protocol/rules"
	"github.com/punchcard/punchcard/store/catalog"
)

// The allowance routes translate between HTTP and hub/allowance.

func (s *Server) needAllowances() error {
	if s.allow == nil {
		return protocol.Errorf(protocol.CodeUnavailable, "this hub keeps no allowances")
	}
	return nil
}

// allowances is what the agent's snapshot carries of its allowances: for
// every active limited campaign, what the hub counts as outstanding and
// the grants it made (allowance.Service.ForSnapshot).
func (s *Server) allowances(c *fiber.Ctx, k catalog.Key, comp compiled) ([]protocol.Allowance, error) {
	if s.allow == nil {
		return nil, nil
	}
	camps := make([]allowance.Limited, 0, len(comp.camps))
	for id, cp := range comp.camps {
		l := cp.Rules.Limits
		if cp.Rules.Status != rules.StatusActive || (l.MaxRedemptions == 0 && l.MaxDiscount == 0) {
			continue
		}
		camps = append(camps, allowance.Limited{ID: id, Currency: cp.Rules.Currency, Count: l.MaxRedemptions > 0, Amount: l.MaxDiscount > 0})
	}
	slices.SortFunc(camps, func(a, b allowance.Limited) int {
		if a.ID < b.ID {
			return -1
		}
		if a.ID > b.ID {
			return 1
		}
		return 0
	})
	return s.allow.ForSnapshot(c.UserContext(), k.Tenant, k.Agent, camps)
}

// requestAllowance serves POST /v1/agent/allowances
// (protocol.AllowanceRequest): a grant, idempotent per request_id.
func (s *Server) requestAllowance(c *fiber.Ctx, k catalog.Key) error {
	if err := s.needAllowances(); err != nil {
		return err
	}
	var req protocol.AllowanceRequest
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
// (protocol.AllowanceReturn): unused allowance back to the pool.
func (s *Server) returnAllowance(c *fiber.Ctx, k catalog.Key) error {
	if err := s.needAllowances(); err != nil {
		return err
	}
	var req protocol.AllowanceReturn
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
func (s *Server) agentEscrow(c *fiber.Ctx, _ catalog.Key) error {
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
