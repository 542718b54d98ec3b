package hub

import (
	"log/slog"
	"time"

	"github.com/punchcard/punchcard/protocol"
)

// DefaultTierReviewInterval is Options.TierReviewInterval's default.
const DefaultTierReviewInterval = time.Hour

// logLowered is the log attribute key of the tiers a review lowered.
const logLowered = "lowered"

// tierChanged is the ledger's OnTier: a customer's tier changed in a
// committed transaction, which moved the catalog to version v. The
// catalog's read cache takes v at once (online decisions read the new
// tier) and the tenant's tills are told, like any catalog change, so
// their next snapshot delta carries the tier.
func (h *Hub) tierChanged(tenant protocol.TenantID, v uint64) {
	if h.Catalog != nil {
		h.Catalog.Changed(tenant, v)
	}
	h.announce(tenant, v)
}

// runTierReview reviews the tiers that are due (ledger.ReviewTiers: kept
// while the customer qualifies, else lowered) once at start and then
// every interval, until Close. A review is idempotent: a run that
// overlaps another's work, or one after a crash, finds nothing due twice.
func (h *Hub) runTierReview(interval time.Duration) {
	if h.Ledger == nil {
		return
	}
	h.every(interval, func() {
		n, err := h.Ledger.ReviewTiers(h.ctx, time.Now())
		switch {
		case err != nil && h.ctx.Err() == nil:
			h.opts.Logger.Error("hub: tier review", slog.Any(logErr, err))
		case n > 0:
			h.opts.Logger.Info("hub: tiers lowered", slog.Int(logLowered, n))
		}
	})
}
