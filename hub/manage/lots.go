package manage

import (
	"context"
	"time"

	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/protocol/ledger"
)

// PointsLot is one of a customer's points lots (ledger.PointsLot).
type PointsLot = ledger.PointsLot

// LotsLedger is what the service reads of a ledger that keeps points as
// lots: a customer's lots still holding points (or a debt).
type LotsLedger interface {
	PointsLots(ctx context.Context, tenant protocol.TenantID, customer protocol.CustomerID) ([]PointsLot, error)
}

// Expiring is how many of a customer's points expire at one instant: the
// "which points expire when" a customer sees.
type Expiring struct {
	At     time.Time `json:"at"`
	Points int64     `json:"points"`
}

// ExpiringOf sums the live lots by expiry, soonest first; points that
// never expire are left out.
func ExpiringOf(lots []PointsLot) []Expiring {
	out := []Expiring{}
	for _, l := range lots {
		if l.ExpiresAt.IsZero() || l.Remaining <= 0 {
			continue
		}
		if n := len(out); n > 0 && out[n-1].At.Equal(l.ExpiresAt) {
			out[n-1].Points += l.Remaining
			continue
		}
		out = append(out, Expiring{At: l.ExpiresAt, Points: l.Remaining})
	}
	return out
}

// customerLots fills h's lots and expiring summary when the ledger keeps
// lots.
func (s *Service) customerLots(ctx context.Context, tenant protocol.TenantID, id protocol.CustomerID, h *History) error {
	ll, ok := s.opts.Ledger.(LotsLedger)
	if !ok {
		return nil
	}
	lots, err := ll.PointsLots(ctx, tenant, id)
	if err != nil {
		return err
	}
	h.Lots, h.Expiring = lots, ExpiringOf(lots)
	return nil
}
