package ledger

import (
	"time"

	"github.com/punchcard/punchcard/protocol"
)

// PointsLot is points a customer earned together and that expire
// together: one per earn, as the ledger keeps them (issue 12). Burns take
// the lots that expire first; the expiry zeroes a lot at ExpiresAt and
// journals it (EntryPointsExpired). Debt marks the customer's one debt
// lot: what a till's burn took beyond the points there were
// (points_overdrawn) or a rollback of points already spent; it never
// expires, and later earns pay it off first.
type PointsLot struct {
	ID        int64                 `json:"id"`
	Campaign  protocol.CampaignID   `json:"campaign,omitempty"`
	Amount    int64                 `json:"amount"`    // points earned
	Remaining int64                 `json:"remaining"` // points left to spend (negative: a debt)
	Expired   int64                 `json:"expired"`   // points the expiry took
	EarnedAt  time.Time             `json:"earned_at,omitzero"`
	ExpiresAt time.Time             `json:"expires_at,omitzero"` // zero: never
	Source    protocol.RedemptionID `json:"source,omitzero"`     // the earn fact (agent/seq; the hub's for online earns)
	Debt      bool                  `json:"debt,omitempty"`
}

// EntryPointsExpired is the journal entry kind the expiry writes, one per
// lot it zeroes, in the same transaction.
const EntryPointsExpired = "points_expired"
