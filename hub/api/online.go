package api

import (
	"crypto/sha256"
	"errors"

	"github.com/gofiber/fiber/v2"

	"github.com/punchcard/punchcard/hub/manage"
	"github.com/punchcard/punchcard/hub/online"
	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/protocol/wire"
)

// Online channels (web shop, app, support desk) ask the hub what it would
// decide (validate) and then redeem. The handlers here only translate
// between HTTP and the hub's online service (hub/online), which decides
// with the one pipeline the tills use (protocol/decide) and records
// through the ledger.

// MaxRedeemables bounds the redeemables of one online request.
const MaxRedeemables = online.MaxRedeemables

func (s *Server) validate(c *fiber.Ctx, _ manage.Key) error {
	if err := s.needLedger(); err != nil {
		return err
	}
	var in online.Request
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	out, err := s.online.Validate(c.UserContext(), tenantOf(c), in)
	if err != nil {
		return err
	}
	return c.JSON(out)
}

// idemKey reads and checks the Idempotency-Key header and hashes the
// request (method, path, body) it names.
func idemKey(c *fiber.Ctx) (online.Idem, error) {
	key := c.Get("Idempotency-Key")
	if key == "" {
		return online.Idem{}, protocol.FieldError("Idempotency-Key", "the Idempotency-Key header is required")
	}
	if len(key) > online.MaxIdempotencyKey {
		return online.Idem{}, protocol.FieldError("Idempotency-Key", "the Idempotency-Key header is longer than %d characters", online.MaxIdempotencyKey)
	}
	h := sha256.New()
	h.Write([]byte(c.Method() + " " + c.Path() + "\n"))
	h.Write(c.Body())
	return online.Idem{Key: key, Sum: h.Sum(nil)}, nil
}

// write runs one idempotent online write and sends its answer: a replay
// with the header Idempotent-Replayed: true, a busy writer as 503 with
// Retry-After.
func (s *Server) write(c *fiber.Ctx, in any, do func(online.Idem) (online.Answer, error)) error {
	if err := s.needLedger(); err != nil {
		return err
	}
	if err := decodeJSON(c, in); err != nil {
		return err
	}
	idem, err := idemKey(c)
	if err != nil {
		return err
	}
	a, err := do(idem)
	if err != nil {
		if errors.Is(err, online.ErrBusy) {
			c.Set(fiber.HeaderRetryAfter, "1")
		}
		return err
	}
	if a.Replayed {
		c.Set("Idempotent-Replayed", "true")
	}
	c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSON)
	return c.Status(a.Status).Send(a.Body)
}

func (s *Server) redeem(c *fiber.Ctx, _ manage.Key) error {
	var in online.Request
	return s.write(c, &in, func(idem online.Idem) (online.Answer, error) {
		return s.online.Redeem(c.UserContext(), tenantOf(c), idem, in)
	})
}

func (s *Server) rollback(c *fiber.Ctx, _ manage.Key) error {
	var in online.RollbackRequest
	return s.write(c, &in, func(idem online.Idem) (online.Answer, error) {
		return s.online.Rollback(c.UserContext(), tenantOf(c), idem, in)
	})
}

func (s *Server) earn(c *fiber.Ctx, _ manage.Key) error {
	var in online.Request
	return s.write(c, &in, func(idem online.Idem) (online.Answer, error) {
		return s.online.Earn(c.UserContext(), tenantOf(c), idem, in)
	})
}

// customerEvent is POST …/customers/{c}/events (wire.PathCustomerEvents).
func (s *Server) customerEvent(c *fiber.Ctx, _ manage.Key) error {
	var in wire.CustomerEvent
	return s.write(c, &in, func(idem online.Idem) (online.Answer, error) {
		return s.online.Event(c.UserContext(), tenantOf(c), protocol.CustomerID(c.Params("customer")), idem, in)
	})
}
