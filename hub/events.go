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
	// DefaultEventPruneInterval is how often the retention jobs run.
	DefaultEventPruneInterval = time.Hour
	// DefaultIdempotencyRetention is how long the APIs' idempotency
	// records (an answer kept under its Idempotency-Key) are kept;
	// Options.IdempotencyRetention. Three days, as a till keeps a POS
	// request's (agentdb.DefaultIdempotencyRetention): a client retries
	// within seconds or minutes, or after a weekend's outage. An online
	// redeem retried after it is still not recorded twice (the ledger
	// finds its transaction id); other requests run again.
	DefaultIdempotencyRetention = 72 * time.Hour
	// idemPruneBatch is how many idempotency records one statement of the
	// retention job deletes: each is a short write beside the online
	// writer's, not one long one.
	idemPruneBatch = 1000
	// DefaultTillStaleAfter is Options.TillStaleAfter's default: ten
	// heartbeats of an agent (30 s each) missed.
	DefaultTillStaleAfter = 5 * time.Minute
)

// WebhookOptions configure the webhook service (webhooks.Options); zero
// values take its defaults.
type WebhookOptions struct {
	Off bool // no webhook service (the routes answer unavailable)
	// NoWake leaves the relay to its poll alone (every
	// webhooks.DefaultRelayInterval unless RelayInterval): the
	// benchmarks' baseline. By default the ledger's and the catalog's
	// commits that write events wake it (webhooks.Options.Wake) and it
	// polls every webhooks.DefaultWakeRelayInterval for other processes.
	NoWake        bool
	RelayInterval time.Duration // the relay's poll; see NoWake
	RetryBase     time.Duration // first retry's wait; webhooks.DefaultRetryBase
	RetryCap      time.Duration // longest wait; webhooks.DefaultRetryCap
	RetryWindow   time.Duration // retried at least this long; webhooks.DefaultRetryWindow
	RescueAfter   time.Duration // a killed hub's running deliveries run again after; Timeout + 1 min
	Timeout       time.Duration // one delivery; webhooks.DefaultTimeout
	// AllowPrivate lets endpoint URLs name loopback, private, link-local
	// and other internal addresses (webhooks.Options.AllowPrivate, flag
	// -webhook-allow-private): tests, demos, receivers on the hub's own
	// network.
	AllowPrivate bool
}

// relayWake is the webhook relay's wake (webhooks.NewWake): signal is the
// ledger's and the catalog's OnEvents, a no-op without a relay to wake.
type relayWake struct {
	c      <-chan struct{}
	signal func()
}

func (h *Hub) newRelayWake() relayWake {
	if h.opts.Webhooks.Off || h.opts.Webhooks.NoWake {
		return relayWake{}
	}
	c, signal := webhooks.NewWake()
	h.Catalog.OnEvents = signal
	return relayWake{c: c, signal: signal}
}

func (h *Hub) openWebhooks(ctx context.Context) error {
	o := h.opts.Webhooks
	if o.Off {
		return nil
	}
	var err error
	h.Webhooks, err = webhooks.Open(ctx, filepath.Join(h.opts.DataDir, WebhooksDBName), webhooks.Options{
		Sources: map[string]webhooks.Source{"ledger": h.Ledger, "catalog": h.Catalog},
		Replay:  map[string]webhooks.ReplaySource{"ledger": h.Ledger, "catalog": h.Catalog},
		OnDisabled: func(ctx context.Context, tenant protocol.TenantID, typ string, body any) error {
			_, err := h.Ledger.AppendEvent(ctx, tenant, typ, body)
			return err
		},
		Wake: h.wake.c, RelayInterval: o.RelayInterval,
		RetryBase: o.RetryBase, RetryCap: o.RetryCap, RetryWindow: o.RetryWindow, RescueAfter: o.RescueAfter, Timeout: o.Timeout,
		Retention: h.opts.EventRetention, Logger: h.opts.Logger, AllowPrivate: o.AllowPrivate,
	})
	return err
}

// runEvents starts the webhook service and the retention job of the
// event logs and the delivery log.
func (h *Hub) runEvents() {
	h.runTillReview()
	h.runIdempotencyRetention()
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

// runIdempotencyRetention deletes the idempotency records older than
// Options.IdempotencyRetention every DefaultEventPruneInterval, in
// batches of idemPruneBatch.
func (h *Hub) runIdempotencyRetention() {
	h.every(DefaultEventPruneInterval, func() {
		before := time.Now().Add(-h.opts.IdempotencyRetention)
		var total int64
		for h.ctx.Err() == nil {
			n, err := h.Catalog.PruneIdempotency(h.ctx, before, idemPruneBatch)
			if err != nil {
				if h.ctx.Err() == nil {
					h.opts.Logger.Error("hub: idempotency retention", slog.Any(logErr, err))
				}
				return
			}
			total += n
			if n < idemPruneBatch {
				break
			}
		}
		if total > 0 {
			h.opts.Logger.Info("hub: idempotency records pruned", slog.Int64("deleted", total))
		}
	})
}

// runTillReview writes till.stale and till.back events (ledger.ReviewTills)
// every minute, or every TillStaleAfter/4 when that is shorter.
func (h *Hub) runTillReview() {
	after := h.opts.TillStaleAfter
	if after <= 0 {
		return
	}
	h.every(min(time.Minute, max(after/4, 100*time.Millisecond)), func() {
		s, b, err := h.Ledger.ReviewTills(h.ctx, time.Now(), after)
		switch {
		case err != nil && h.ctx.Err() == nil:
			h.opts.Logger.Error("hub: till review", slog.Any(logErr, err))
		case s+b > 0:
			h.opts.Logger.Info("hub: tills stale or back", slog.Int64("stale", s), slog.Int64("back", b))
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
