package api

import (
	"context"
	"net/http"

	"github.com/gofiber/fiber/v2"

	"github.com/punchcard/punchcard/hub/manage"
	"github.com/punchcard/punchcard/protocol"
)

// --- webhooks (issue 13, docs/events.md) -------------------------------

// Webhooks is the webhook service the routes call (hub/webhooks).
type Webhooks interface {
	CreateEndpoint(ctx context.Context, tenant protocol.TenantID, in protocol.WebhookEndpointInput) (protocol.WebhookEndpoint, error)
	UpdateEndpoint(ctx context.Context, tenant protocol.TenantID, id string, in protocol.WebhookEndpointInput) (protocol.WebhookEndpoint, error)
	Endpoint(ctx context.Context, tenant protocol.TenantID, id string) (protocol.WebhookEndpoint, error)
	Endpoints(ctx context.Context, tenant protocol.TenantID) ([]protocol.WebhookEndpoint, error)
	DeleteEndpoint(ctx context.Context, tenant protocol.TenantID, id string) error
	RotateSecret(ctx context.Context, tenant protocol.TenantID, id string) (protocol.WebhookEndpoint, error)
	Enable(ctx context.Context, tenant protocol.TenantID, id string) (protocol.WebhookEndpoint, error)
	Deliveries(ctx context.Context, tenant protocol.TenantID, id string, before int64, limit int) ([]protocol.WebhookDelivery, error)
	Replay(ctx context.Context, tenant protocol.TenantID, id string, r protocol.WebhookReplay) (protocol.WebhookReplayResult, error)
}

func (s *Server) webhooks() (Webhooks, error) {
	if s.cfg.Webhooks == nil {
		return nil, protocol.Errorf(protocol.CodeUnavailable, "this hub delivers no webhooks")
	}
	return s.cfg.Webhooks, nil
}

func (s *Server) listWebhooks(c *fiber.Ctx, _ manage.Key) error {
	w, err := s.webhooks()
	if err != nil {
		return err
	}
	es, err := w.Endpoints(c.UserContext(), tenantOf(c))
	if err != nil {
		return err
	}
	return c.JSON(list[protocol.WebhookEndpoint]{es})
}

func (s *Server) createWebhook(c *fiber.Ctx, _ manage.Key) error {
	w, err := s.webhooks()
	if err != nil {
		return err
	}
	var in protocol.WebhookEndpointInput
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	ep, err := w.CreateEndpoint(c.UserContext(), tenantOf(c), in)
	if err != nil {
		return err
	}
	return created(c, ep)
}

// endpointRoute answers a route on one endpoint (the path's webhook id)
// with what op returns for it.
func (s *Server) endpointRoute(op func(w Webhooks, ctx context.Context, t protocol.TenantID, id string) (protocol.WebhookEndpoint, error)) func(*fiber.Ctx, manage.Key) error {
	return func(c *fiber.Ctx, _ manage.Key) error {
		w, err := s.webhooks()
		if err != nil {
			return err
		}
		ep, err := op(w, c.UserContext(), tenantOf(c), c.Params("webhook"))
		if err != nil {
			return err
		}
		return c.JSON(ep)
	}
}

func (s *Server) getWebhook(c *fiber.Ctx, k manage.Key) error {
	return s.endpointRoute(Webhooks.Endpoint)(c, k)
}

func (s *Server) rotateWebhookSecret(c *fiber.Ctx, k manage.Key) error {
	return s.endpointRoute(Webhooks.RotateSecret)(c, k)
}

func (s *Server) enableWebhook(c *fiber.Ctx, k manage.Key) error {
	return s.endpointRoute(Webhooks.Enable)(c, k)
}

func (s *Server) putWebhook(c *fiber.Ctx, k manage.Key) error {
	if _, err := s.webhooks(); err != nil {
		return err
	}
	var in protocol.WebhookEndpointInput
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	return s.endpointRoute(func(w Webhooks, ctx context.Context, t protocol.TenantID, id string) (protocol.WebhookEndpoint, error) {
		return w.UpdateEndpoint(ctx, t, id, in)
	})(c, k)
}

func (s *Server) deleteWebhook(c *fiber.Ctx, _ manage.Key) error {
	w, err := s.webhooks()
	if err != nil {
		return err
	}
	if err := w.DeleteEndpoint(c.UserContext(), tenantOf(c), c.Params("webhook")); err != nil {
		return err
	}
	return c.SendStatus(http.StatusNoContent)
}

func (s *Server) webhookDeliveries(c *fiber.Ctx, _ manage.Key) error {
	w, err := s.webhooks()
	if err != nil {
		return err
	}
	before, err := queryInt(c, "before")
	if err != nil {
		return err
	}
	limit, err := queryInt(c, "limit")
	if err != nil {
		return err
	}
	if limit > 200 {
		return protocol.FieldError("limit", "limit must be at most 200")
	}
	ds, err := w.Deliveries(c.UserContext(), tenantOf(c), c.Params("webhook"), before, int(limit))
	if err != nil {
		return err
	}
	return c.JSON(list[protocol.WebhookDelivery]{ds})
}

func (s *Server) replayWebhook(c *fiber.Ctx, _ manage.Key) error {
	w, err := s.webhooks()
	if err != nil {
		return err
	}
	var r protocol.WebhookReplay
	if err := decodeJSON(c, &r); err != nil {
		return err
	}
	res, err := w.Replay(c.UserContext(), tenantOf(c), c.Params("webhook"), r)
	if err != nil {
		return err
	}
	return c.Status(http.StatusAccepted).JSON(res)
}
