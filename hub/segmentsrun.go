package hub

import (
	"log/slog"
	"time"

	"github.com/punchcard/punchcard/hub/segments"
)

// DefaultSegmentsInterval is Options.SegmentsInterval's default.
const DefaultSegmentsInterval = time.Hour

const logChanged = "changed"

// runSegments recomputes the stored segments of every tenant's customers
// (segments.Service.RunTenant, idempotent) once at start and then every
// interval, until Close: the time-based rules ("no purchase for 90 days",
// "birthday this month") change with the clock, not with a fact. A tenant
// whose segments changed gets its snapshot re-announced.
func (h *Hub) runSegments(interval time.Duration) {
	if h.Ledger == nil || h.Catalog == nil {
		return
	}
	svc := segments.New(h.Catalog, h.Ledger)
	h.every(interval, func() {
		ts, err := h.Catalog.Tenants(h.ctx)
		if err != nil && h.ctx.Err() == nil {
			h.opts.Logger.Error("hub: segments", slog.Any(logErr, err))
		}
		for _, tn := range ts {
			n, err := svc.RunTenant(h.ctx, tn.ID, time.Now())
			switch {
			case err != nil && h.ctx.Err() == nil:
				h.opts.Logger.Error("hub: segments", slog.String(logTenant, string(tn.ID)), slog.Any(logErr, err))
			case n > 0:
				h.opts.Logger.Info("hub: segments changed", slog.String(logTenant, string(tn.ID)), slog.Int(logChanged, n))
				if v, err := h.Catalog.Version(h.ctx, tn.ID); err == nil {
					h.announce(tn.ID, v)
				}
			}
		}
	})
}
