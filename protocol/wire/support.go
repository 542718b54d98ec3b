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

// PathRewardAfterSale is the support desk's route for applying a reward
// to a past sale, under /v1/tenants/{t}: once per Idempotency-Key.
const PathRewardAfterSale = "/customers/:customer/rewards-after-sale"

// SaleRef names a recorded sale: a till's transaction (its agent and
// txn_id, as the till's facts carry them), or an online one (agent "hub",
// txn_id the Idempotency-Key it was redeemed or earned under).
type SaleRef struct {
	Agent protocol.AgentID `json:"agent"`
	TxnID string           `json:"txn_id"`
}

// RewardAfterSale is the body of POST …/customers/{c}/rewards-after-sale:
// a code, or an automatic campaign, the customer should have had on a
// past sale. The hub decides it again on the sale as recorded, at the
// sale's time, and records the reward as a new online redemption on the
// sale's order.
type RewardAfterSale struct {
	Sale     SaleRef             `json:"sale"`
	Code     string              `json:"code,omitempty"`
	Campaign protocol.CampaignID `json:"campaign,omitempty"`
	// Order is the sale's lines as on the receipt, when the rewards
	// depend on them: the ledger keeps each sale's total, not its lines.
	// Its subtotal must be the sale's total as recorded. Absent: one
	// line of the recorded total.
	Order *protocol.Order `json:"order,omitempty"`
	// Store gives the store's time zone and group for the decision.
	// Default: the sale's store, in UTC.
	Store *OnlineStore `json:"store,omitempty"`
}

// Validate checks the request from the outside and returns an
// invalid_input error naming the field.
func (r *RewardAfterSale) Validate() error {
	if err := protocol.ValidateID("sale.agent", string(r.Sale.Agent)); err != nil {
		return protocol.WithField("sale.agent", err)
	}
	if r.Sale.TxnID == "" || len(r.Sale.TxnID) > 128 || !utf8.ValidString(r.Sale.TxnID) {
		return protocol.FieldError("sale.txn_id", "the sale's transaction id is 1 to 128 bytes of UTF-8")
	}
	if (r.Code == "") == (r.Campaign == "") {
		return protocol.FieldError("code", "name either a code or a campaign")
	}
	if r.Code != "" && len(r.Code) > 2*protocol.MaxIDLen {
		return protocol.FieldError("code", "a code is at most %d bytes", 2*protocol.MaxIDLen)
	}
	if r.Campaign != "" {
		if err := protocol.ValidateID("campaign", string(r.Campaign)); err != nil {
			return protocol.WithField("campaign", err)
		}
	}
	if r.Order != nil {
		if err := r.Order.Validate(); err != nil {
			return err // names order.…
		}
	}
	if r.Store != nil {
		if err := protocol.ValidateID("store.id", string(r.Store.ID)); err != nil {
			return protocol.WithField("store.id", err)
		}
	}
	return nil
}
