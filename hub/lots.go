package hub

import (
	"log/slog"
	"time"
)

// DefaultPointsExpiryInterval is Options.PointsExpiryInterval's default.
const DefaultPointsExpiryInterval = time.Hour

// Log attribute keys of the points expiry.
const (
	logLots   = "lots"
	logPoints = "points"
)

// runPointsExpiry expires the points lots that are due (ledger.ExpireLots)
// once at start and then every interval, until Close. A burn never needs
// it to be exact: burns and balances leave out what is due anyway; it
// keeps the journal and the stored balances current.
func (h *Hub) runPointsExpiry(interval time.Duration) {
	if h.Ledger == nil {
		return
	}
	h.every(interval, func() {
		n, p, err := h.Ledger.ExpireLots(h.ctx, time.Now(), 0)
		switch {
		case err != nil && h.ctx.Err() == nil:
			h.opts.Logger.Error("hub: points expiry", slog.Any(logErr, err))
		case n > 0:
			h.opts.Logger.Info("hub: points expired", slog.Int64(logLots, n), slog.Int64(logPoints, p))
		}
	})
}
