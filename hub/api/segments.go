package api

import (
	"net/http"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/punchcard/punchcard/hub/manage"
	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/protocol/segment"
)

// --- segments from behaviour (issue 12) ----------------------------------

func (s *Server) listSegments(c *fiber.Ctx, _ manage.Key) error {
	ds, err := s.mg.Segments(c.UserContext(), tenantOf(c))
	if err != nil {
		return err
	}
	if ds == nil {
		ds = []segment.Definition{}
	}
	return c.JSON(list[segment.Definition]{ds})
}

func (s *Server) getSegment(c *fiber.Ctx, _ manage.Key) error {
	d, err := s.mg.Segment(c.UserContext(), tenantOf(c), c.Params("segment"))
	if err != nil {
		return err
	}
	return c.JSON(d)
}

func (s *Server) putSegment(c *fiber.Ctx, _ manage.Key) error {
	var d segment.Definition
	if err := decodeJSON(c, &d); err != nil {
		return err
	}
	id := c.Params("segment")
	if d.ID == "" {
		d.ID = id
	}
	if d.ID != id {
		return protocol.FieldError("id", "id must be %q, the segment being put", id)
	}
	created, err := s.mg.PutSegment(c.UserContext(), tenantOf(c), d)
	if err != nil {
		return err
	}
	st := http.StatusOK
	if created {
		st = http.StatusCreated
	}
	return c.Status(st).JSON(d)
}

func (s *Server) deleteSegment(c *fiber.Ctx, _ manage.Key) error {
	if err := s.mg.DeleteSegment(c.UserContext(), tenantOf(c), c.Params("segment")); err != nil {
		return err
	}
	return c.SendStatus(http.StatusNoContent)
}

func (s *Server) customerSegments(c *fiber.Ctx, _ manage.Key) error {
	now := time.Now()
	if s.online != nil && s.online.Now != nil {
		now = s.online.Now()
	}
	out, err := s.mg.SegmentsOf(c.UserContext(), tenantOf(c), protocol.CustomerID(c.Params("customer")), now)
	if err != nil {
		return err
	}
	return c.JSON(out)
}

func (s *Server) customerPurchases(c *fiber.Ctx, _ manage.Key) error {
	limit, err := queryInt(c, "limit")
	if err != nil {
		return err
	}
	ps, err := s.mg.Purchases(c.UserContext(), tenantOf(c), protocol.CustomerID(c.Params("customer")), limit)
	if err != nil {
		return err
	}
	if ps == nil {
		ps = []segment.Purchase{}
	}
	return c.JSON(list[segment.Purchase]{ps})
}
