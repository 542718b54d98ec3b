package api

import (
	"strconv"

	"github.com/gofiber/fiber/v2"

	"github.com/punchcard/punchcard/hub/manage"
	"github.com/punchcard/punchcard/hub/online"
	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/protocol/wire"
)

// Support tools (issue 12, item 7): the handlers only translate between
// HTTP and the services (hub/manage for the history and adjustments,
// hub/online for a reward applied after the sale).

// activity fills the history's activity page from the query's cursor and
// limit, when the hub has a ledger; codes masked for the roles that do not
// manage codes (seesCodes).
func (s *Server) activity(c *fiber.Ctx, k manage.Key, out *historyResponse) error {
	if !s.mg.HasLedger() {
		return nil
	}
	limit := 0
	if v := c.Query("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return protocol.FieldError("limit", "limit is 1 to %d", manage.MaxActivityLimit)
		}
		limit = n
	}
	a, err := s.mg.CustomerActivity(c.UserContext(), tenantOf(c), protocol.CustomerID(c.Params("customer")), c.Query("cursor"), limit)
	if err != nil {
		return err
	}
	out.Activity, out.Conflicts, out.Next = a.Entries, conflictsOut(a.Conflicts), a.Next
	if !seesCodes(k) {
		for i := range out.Activity {
			out.Activity[i].Code = protocol.CodeID(manage.MaskCode(string(out.Activity[i].Code)))
		}
		for i := range out.Conflicts {
			out.Conflicts[i].Code = protocol.CodeID(manage.MaskCode(string(out.Conflicts[i].Code)))
		}
	}
	return nil
}

// adjustPoints is POST …/customers/{c}/points-adjustments
// (wire.PathPointsAdjustments).
func (s *Server) adjustPoints(c *fiber.Ctx, k manage.Key) error {
	if err := s.needLedger(); err != nil {
		return err
	}
	var in wire.PointsAdjustment
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	idem, err := idemKey(c)
	if err != nil {
		return err
	}
	a, err := s.mg.AdjustPoints(c.UserContext(), k, tenantOf(c), protocol.CustomerID(c.Params("customer")),
		manage.Idem{Key: idem.Key, Sum: idem.Sum}, in, s.cfg.Now())
	if err != nil {
		return err
	}
	if a.Replayed {
		c.Set("Idempotent-Replayed", "true")
	}
	c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSON)
	return c.Status(a.Status).Send(a.Body)
}

// rewardAfterSale is POST …/customers/{c}/rewards-after-sale
// (wire.PathRewardAfterSale).
func (s *Server) rewardAfterSale(c *fiber.Ctx, _ manage.Key) error {
	var in wire.RewardAfterSale
	return s.write(c, &in, func(idem online.Idem) (online.Answer, error) {
		return s.online.AfterSale(c.UserContext(), tenantOf(c), protocol.CustomerID(c.Params("customer")), idem, in)
	})
}
