package wire

import (
	"slices"
	"time"
	"unicode/utf8"

	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/protocol/ledger"
)

// PathPointsAdjustments is the support desk's route for a manual points
// adjustment, under /v1/tenants/{t}: once per Idempotency-Key.
const PathPointsAdjustments = "/customers/:customer/points-adjustments"

// PointsAdjustment is the body of POST …/customers/{c}/points-adjustments.
type PointsAdjustment struct {
	// Points to add (positive: a new lot) or take (negative: from the
	// live lots, soonest expiry first; never beyond the balance).
	Points int64 `json:"points"`
	// Reason is one of ledger.AdjustmentReasons.
	Reason string `json:"reason"`
	// Note says why in words; required with reason "other".
	Note string `json:"note,omitempty"`
	// Reference is the caller's own (a ticket number, an order id).
	Reference string `json:"reference,omitempty"`
	// ExpiresAt is when a positive adjustment's points expire; zero:
	// never. It must lie in the future.
	ExpiresAt time.Time `json:"expires_at,omitzero"`
}

// Validate checks an adjustment from the outside against the hub's clock
// now and returns an invalid_input error naming the field.
func (a *PointsAdjustment) Validate(now time.Time) error {
	switch {
	case a.Points == 0:
		return protocol.FieldError("points", "points to add (positive) or take (negative) are required")
	case a.Points > ledger.MaxAdjustPoints || a.Points < -ledger.MaxAdjustPoints:
		return protocol.FieldError("points", "an adjustment moves at most %d points", ledger.MaxAdjustPoints)
	case a.Reason == "":
		return protocol.FieldError("reason", "a reason is required: one of %v", ledger.AdjustmentReasons)
	case !slices.Contains(ledger.AdjustmentReasons, a.Reason):
		return protocol.FieldError("reason", "unknown reason %q: one of %v", a.Reason, ledger.AdjustmentReasons)
	case a.Reason == ledger.ReasonOther && a.Note == "":
		return protocol.FieldError("note", "reason \"other\" needs a note saying why")
	case len(a.Note) > ledger.MaxAdjustNote || !utf8.ValidString(a.Note):
		return protocol.FieldError("note", "the note is UTF-8 of at most %d bytes", ledger.MaxAdjustNote)
	case len(a.Reference) > ledger.MaxAdjustReference || !utf8.ValidString(a.Reference):
		return protocol.FieldError("reference", "the reference is UTF-8 of at most %d bytes", ledger.MaxAdjustReference)
	case !a.ExpiresAt.IsZero() && a.Points < 0:
		return protocol.FieldError("expires_at", "only points added expire; a negative adjustment takes no expiry")
	case !a.ExpiresAt.IsZero() && !a.ExpiresAt.After(now):
		return protocol.FieldError("expires_at", "the expiry must lie in the future")
	}
	return nil
}
