package api

import (
	"net/url"

	"github.com/gofiber/fiber/v2"

	"github.com/punchcard/punchcard/hub/manage"
	"github.com/punchcard/punchcard/hub/online"
	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/protocol/wire"
)

// Gift card routes (issue 12): sell and top up online, look a balance up
// (hub/online/giftcards.go holds the logic).

// cards returns the catalog and ledger a sale needs, or not_implemented
// when the hub runs without them.
func (s *Server) cards() (online.CardCatalog, online.CardLedger, error) {
	if err := s.needLedger(); err != nil {
		return nil, nil, err
	}
	cat, ok1 := s.cfg.Catalog.(online.CardCatalog)
	led, ok2 := s.cfg.Ledger.(online.CardLedger)
	if !ok1 || !ok2 {
		return nil, nil, protocol.Errorf(protocol.CodeInternal, "gift card sales need the hub's catalog and ledger")
	}
	return cat, led, nil
}

// sellGiftCard is POST …/giftcards.
func (s *Server) sellGiftCard(c *fiber.Ctx, _ manage.Key) error {
	cat, led, err := s.cards()
	if err != nil {
		return err
	}
	var in wire.GiftCardSale
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	out, err := s.online.SellCard(c.UserContext(), tenantOf(c), cat, led, in)
	if err != nil {
		return err
	}
	return c.Status(fiber.StatusCreated).JSON(out)
}

// topUpGiftCard is POST …/giftcards/{code}/topup.
func (s *Server) topUpGiftCard(c *fiber.Ctx, _ manage.Key) error {
	_, led, err := s.cards()
	if err != nil {
		return err
	}
	var in wire.GiftCardTopUp
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	code, err := pathCode(c)
	if err != nil {
		return err
	}
	out, err := s.online.TopUpCard(c.UserContext(), tenantOf(c), led, code, in)
	if err != nil {
		return err
	}
	return c.JSON(out)
}

// cashOutGiftCard is POST …/giftcards/{code}/cashout.
func (s *Server) cashOutGiftCard(c *fiber.Ctx, _ manage.Key) error {
	_, led, err := s.cards()
	if err != nil {
		return err
	}
	var in wire.GiftCardCashOut
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	code, err := pathCode(c)
	if err != nil {
		return err
	}
	out, err := s.online.CashOutCard(c.UserContext(), tenantOf(c), led, code, in)
	if err != nil {
		return err
	}
	return c.JSON(out)
}

// giftCardBalance is GET …/giftcards/{code}.
func (s *Server) giftCardBalance(c *fiber.Ctx, _ manage.Key) error {
	if err := s.needLedger(); err != nil {
		return err
	}
	code, err := pathCode(c)
	if err != nil {
		return err
	}
	out, err := s.online.CardBalance(c.UserContext(), tenantOf(c), code)
	if err != nil {
		return err
	}
	return c.JSON(out)
}

// agentGiftCard is GET /v1/agent/giftcards/{code}: a till's online
// balance lookup, for its own tenant.
func (s *Server) agentGiftCard(c *fiber.Ctx, k manage.Key) error {
	if err := s.needLedger(); err != nil {
		return err
	}
	code, err := pathCode(c)
	if err != nil {
		return err
	}
	out, err := s.online.CardBalance(c.UserContext(), k.Tenant, code)
	if err != nil {
		return err
	}
	return c.JSON(out)
}

func pathCode(c *fiber.Ctx) (string, error) {
	code, err := url.PathUnescape(c.Params("code"))
	if err != nil || code == "" || len(code) > protocol.MaxCodeLen {
		return "", protocol.FieldError("code", "a gift card number of at most %d characters", protocol.MaxCodeLen)
	}
	return code, nil
}
