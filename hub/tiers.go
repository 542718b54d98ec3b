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
// committed transaction. The catalog version does not move (customer
// state has its own sequence, hub/snapshots): the catalog's read cache
// reads the tenant's customers again (online decisions see the new tier)
// and the tills take the tier with their next snapshot poll, as a
// customer-state delta, instead of every till of the tenant fetching a
// catalog delta at once.
func (h *Hub) tierChanged(tenant protocol.TenantID, _ uint64) {
	if h.Catalog != nil {
		h.Catalog.CustomerChanged(tenant)
	}
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
