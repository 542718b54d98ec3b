package hub

import (
	"context"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/punchcard/punchcard/hub/api"
	"github.com/punchcard/punchcard/hub/webhooks"
	"github.com/punchcard/punchcard/protocol"
)

// The event log and webhooks (issue 13, docs/events.md): the ledger and
// the catalog write events in their transactions; the webhook service
// (hub/webhooks, River in WebhooksDBName beside the hub's database)
// delivers them.

// Defaults.
const (
	WebhooksDBName = "webhooks.db"
	// DefaultEventRetention is how long events stay in the logs (and
	// replayable); Options.EventRetention.
	DefaultEventRetention = 30 * 24 * time.Hour
	// DefaultEventPruneInterval is how often the retention job runs.
	DefaultEventPruneInterval = time.Hour
)

// WebhookOptions configure the webhook service (webhooks.Options); zero
// values take its defaults.
type WebhookOptions struct {
	Off         bool          // no webhook service (the routes answer unavailable)
	RetryBase   time.Duration // first retry's wait; webhooks.DefaultRetryBase
	RetryCap    time.Duration // longest wait; webhooks.DefaultRetryCap
	RetryWindow time.Duration // retried at least this long; webhooks.DefaultRetryWindow
	RescueAfter time.Duration // a killed hub's running deliveries run again after; Timeout + 1 min
	Timeout     time.Duration // one delivery; webhooks.DefaultTimeout
}

func (h *Hub) openWebhooks(ctx context.Context) error {
	o := h.opts.Webhooks
	if o.Off {
		return nil
	}
	var err error
	h.Webhooks, err = webhooks.Open(ctx, filepath.Join(h.opts.DataDir, WebhooksDBName), webhooks.Options{
		Sources: map[string]webhooks.Source{"ledger": h.Ledger, "catalog": h.Catalog},
		Replay:  map[string]webhooks.ReplaySource{"ledger": h.Ledger},
		OnDisabled: func(ctx context.Context, tenant protocol.TenantID, typ string, body any) error {
			_, err := h.Ledger.AppendEvent(ctx, tenant, typ, body)
			return err
		},
		RetryBase: o.RetryBase, RetryCap: o.RetryCap, RetryWindow: o.RetryWindow, RescueAfter: o.RescueAfter, Timeout: o.Timeout,
		Retention: h.opts.EventRetention, Logger: h.opts.Logger,
	})
	return err
}

// runEvents starts the webhook service and the retention job of the
// event logs and the delivery log.
func (h *Hub) runEvents() {
	if h.Webhooks != nil {
		if err := h.Webhooks.Start(h.ctx); err != nil {
			h.opts.Logger.Error("hub: webhooks", slog.Any(logErr, err))
		}
	}
	h.every(DefaultEventPruneInterval, func() {
		before := time.Now().Add(-h.opts.EventRetention)
		for {
			n, err := h.Ledger.PruneEvents(h.ctx, before, 10000)
			if err == nil {
				var m int64
				m, err = h.Catalog.PruneEvents(h.ctx, before, 10000)
				n += m
			}
			if err == nil && h.Webhooks != nil {
				var m int64
				m, err = h.Webhooks.Prune(h.ctx)
				n += m
			}
			if err != nil {
				if h.ctx.Err() == nil {
					h.opts.Logger.Error("hub: event retention", slog.Any(logErr, err))
				}
				return
			}
			if n == 0 || h.ctx.Err() != nil {
				return
			}
		}
	})
}

func (h *Hub) closeWebhooks(ctx context.Context) error {
	if h.Webhooks == nil {
		return nil
	}
	return h.Webhooks.Close(ctx)
}

// webhookAPI is the webhook service for the API, nil (not a typed nil)
// without one.
func (h *Hub) webhookAPI() api.Webhooks {
	if h.Webhooks == nil {
		return nil
	}
	return h.Webhooks
}
